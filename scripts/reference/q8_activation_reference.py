#!/usr/bin/env python3
"""Golden 8-bit activation groups and quantized dot products, made by llama.cpp itself.

Exact command that produced tests/fixtures/q8/llama_cpp_q8.txt (repository root), with
the shared libraries of a llama.cpp built from the sources vendored by llama-cpp-python
0.3.36 (`libggml-base.so`, `libggml-cpu.so`):

    python3 scripts/reference/q8_activation_reference.py --lib-dir PATH/TO/llama.cpp/build/bin \\
        --out tests/fixtures/q8/llama_cpp_q8.txt

Requirements: numpy.

What it does (all through ctypes, no Python re-implementation of any format):

1. Activation rows of 128 floats: Gaussian, Gaussian with outliers, tiny magnitudes, and
   a row of special groups (all zero, constant, all positive, and exact rounding ties:
   with max |x| = 127 the scale is 1, so x = k + 0.5 lands on a tie).
2. Quantizes them with ggml's `quantize_row_q8_1_ref` (the reference of the Q8_1 format
   llama.cpp multiplies Q4_1/Q5_1 weights with): per group of 32, d = fp16(max|x| / 127),
   codes round(x / d) (C's `roundf`, ties away from zero), s = fp16(d * sum(codes)).
3. Weight rows quantized with `quantize_row_q4_1_ref` and `quantize_row_q8_0_ref`, and
   every (weight row, activation row) dot product from ggml's generic kernels
   `ggml_vec_dot_q4_1_q8_1_generic` and `ggml_vec_dot_q8_0_q8_0_generic` (the latter with
   activations from `quantize_row_q8_0_ref`, as llama.cpp does for Q8_0 weights).
4. Writes a text file (one record per line, floats as IEEE bit patterns in hex) that
   `tensor/src/cpu/qmatmul/tests.rs` reads with no Python.
"""

from __future__ import annotations

import argparse
import ctypes
import os

import numpy as np

COLS = 128
Q4_1_BYTES, Q8_0_BYTES, Q8_1_BYTES = 20, 34, 36


def libs(lib_dir: str):
    base = ctypes.CDLL(os.path.join(lib_dir, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(os.path.join(lib_dir, "libggml-cpu.so"))
    cpu.ggml_cpu_init()  # fills the fp16 -> fp32 table the kernels read the scales through
    for name in ("quantize_row_q8_1_ref", "quantize_row_q4_1_ref", "quantize_row_q8_0_ref"):
        f = getattr(base, name)
        f.restype = None
        f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    for name in ("ggml_vec_dot_q4_1_q8_1_generic", "ggml_vec_dot_q8_0_q8_0_generic"):
        f = getattr(cpu, name)
        f.restype = None
        f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                      ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return base, cpu


def quantize(base, fn: str, block_bytes: int, x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(x.size // 32 * block_bytes, dtype=np.uint8)
    getattr(base, fn)(x.ctypes.data, out.ctypes.data, x.size)
    return out


def dot(cpu, fn: str, w: np.ndarray, a: np.ndarray) -> np.float32:
    s = np.zeros(1, dtype=np.float32)
    getattr(cpu, fn)(COLS, s.ctypes.data, 0, w.ctypes.data, 0, a.ctypes.data, 0, 1)
    return s[0]


def activations(rng: np.random.Generator) -> np.ndarray:
    rows = [rng.normal(0, 1, COLS), rng.normal(0, 1, COLS), rng.normal(0, 1e-3, COLS)]
    rows[1][5], rows[1][40], rows[1][100] = 9.0, -12.0, 30.0
    special = np.zeros(COLS)
    special[32:64] = -0.75  # constant
    special[64:96] = rng.uniform(0.1, 2.0, 32)  # all positive
    ties = np.arange(32) - 15.5  # k + 0.5: ties once the scale is 1
    ties[0] = 127.0
    special[96:128] = ties
    rows.append(special)
    return np.stack(rows).astype(np.float32)


def f32_hex(v: float) -> str:
    return f"{np.float32(v).view(np.uint32):08x}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib-dir", required=True, help="directory with libggml-base.so and libggml-cpu.so")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    base, cpu = libs(args.lib_dir)
    rng = np.random.default_rng(20261207)
    x = activations(rng)
    w = (rng.normal(0, 0.05, (3, COLS)) + rng.normal(0, 0.02, (3, 1))).astype(np.float32)

    lines = [
        "# Made by scripts/reference/q8_activation_reference.py from llama.cpp's reference kernels",
        "# (llama-cpp-python 0.3.36's sources). Floats as IEEE bit patterns in hex.",
        "# x ROW: activations; q8_1 ROW GROUP D_F16 S_F16 CODES[32]: quantize_row_q8_1_ref;",
        "# w TYPE ROW BLOCK_BYTES: weights from quantize_row_<type>_ref;",
        "# dot TYPE WROW XROW F32: ggml_vec_dot_q4_1_q8_1_generic / ggml_vec_dot_q8_0_q8_0_generic.",
        f"cols {COLS}",
    ]
    for r, row in enumerate(x):
        lines.append(f"x {r} " + " ".join(f32_hex(v) for v in row))
    for r, row in enumerate(x):
        blocks = quantize(base, "quantize_row_q8_1_ref", Q8_1_BYTES, row).reshape(-1, Q8_1_BYTES)
        for g, b in enumerate(blocks):
            d, s = b[0:2].view(np.uint16)[0], b[2:4].view(np.uint16)[0]
            codes = " ".join(str(c) for c in b[4:].view(np.int8))
            lines.append(f"q8_1 {r} {g} {d:04x} {s:04x} {codes}")
    for ty, fn, nb, dot_fn, act_fn, act_nb in (
        ("q4_1", "quantize_row_q4_1_ref", Q4_1_BYTES, "ggml_vec_dot_q4_1_q8_1_generic", "quantize_row_q8_1_ref", Q8_1_BYTES),
        ("q8_0", "quantize_row_q8_0_ref", Q8_0_BYTES, "ggml_vec_dot_q8_0_q8_0_generic", "quantize_row_q8_0_ref", Q8_0_BYTES),
    ):
        wq = [quantize(base, fn, nb, row) for row in w]
        for i, b in enumerate(wq):
            lines.append(f"w {ty} {i} " + b.tobytes().hex())
        for i, b in enumerate(wq):
            for j, row in enumerate(x):
                a = quantize(base, act_fn, act_nb, row)
                lines.append(f"dot {ty} {i} {j} {f32_hex(dot(cpu, dot_fn, b, a))}")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out} ({len(lines)} lines)")


if __name__ == "__main__":
    main()
