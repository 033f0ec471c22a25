#!/usr/bin/env python3
"""Golden blocks for Lamina's 32-element quantizers (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), made
by llama.cpp itself.

Exact command that produced tests/fixtures/kquant/legacy.gguf (repository root), with
the shared libraries and tools of a llama.cpp built from the sources vendored by
llama-cpp-python 0.3.36 (`libggml-base.so` there is built without FMA: check with
`objdump -d libggml-base.so | grep -c vfmadd`, which must print 0):

    python3 scripts/reference/legacy_quant_reference.py --lib-dir PATH/TO/llama.cpp/build/bin \\
        --out tests/fixtures/kquant/legacy.gguf

Requirements: numpy, gguf (0.19).

What it does:

1. Takes the rows of tests/fixtures/kquant/kquant.gguf (`input`: Gaussian rows, outliers,
   zero and constant blocks, subnormal and huge scales, integer ties, real SmolLM2 rows)
   and adds rows aimed at the 32-element formats (a block whose largest magnitude is
   negative, one whose maximum is positive, exact halves, a block of one repeated value).
2. Quantizes them with ggml's `ggml_quantize_chunk` (no importance matrix, so it runs
   `quantize_row_q*_ref`) through ctypes, and decodes every type's blocks with ggml's
   `dequantize_row_*`.
3. Cross-checks that path against llama.cpp's model quantizer: the rows become the token
   embedding of a one-layer F32 llama GGUF that `llama-quantize --pure` quantizes to each
   type, and the embedding's bytes must equal step 2's. The script fails otherwise.
4. Writes one small GGUF: `input` (F32), per type its blocks (`q4_0`, ...) and ggml's
   decoding (`q4_0.dequant`, F32). `model/tests/kquant_reference.rs` reads it, no Python.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kquant_reference import COLS, tiny_llama  # noqa: E402

# name -> (ggml type, bytes per 32-block, llama_ftype for llama-quantize --pure, decoder)
TYPES = {
    "q4_0": (T.Q4_0, 18, 2, "dequantize_row_q4_0"),
    "q4_1": (T.Q4_1, 20, 3, "dequantize_row_q4_1"),
    "q5_0": (T.Q5_0, 22, 8, "dequantize_row_q5_0"),
    "q5_1": (T.Q5_1, 24, 9, "dequantize_row_q5_1"),
    "q8_0": (T.Q8_0, 34, 7, "dequantize_row_q8_0"),
}


def ggml_base(lib_dir: str):
    lib = ctypes.CDLL(os.path.join(lib_dir, "libggml-base.so"))
    f = lib.ggml_quantize_chunk
    f.restype = ctypes.c_size_t
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                  ctypes.c_int64, ctypes.c_void_p]
    for _, _, _, dec in TYPES.values():
        d = getattr(lib, dec)
        d.restype = None
        d.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return lib


def quantize(lib, ty: T, block_bytes: int, x: np.ndarray) -> bytes:
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    out = np.zeros(rows * cols // 32 * block_bytes, dtype=np.uint8)
    n = lib.ggml_quantize_chunk(int(ty), x.ctypes.data, out.ctypes.data, 0, rows, cols, None)
    assert n == out.size, (n, out.size)
    return out.tobytes()


def decode(lib, decoder: str, blocks: bytes, n: int) -> np.ndarray:
    src = np.frombuffer(blocks, dtype=np.uint8).copy()
    out = np.zeros(n, dtype=np.float32)
    getattr(lib, decoder)(src.ctypes.data, out.ctypes.data, n)
    return out


def extra_rows(rng: np.random.Generator) -> list[np.ndarray]:
    """Rows for the 32-element formats' sign and rounding rules."""
    r = rng.normal(0, 1.0, COLS)
    for b in range(0, COLS, 64):
        r[b + 5] = -9.0  # the block's largest magnitude is negative (Q4_0/Q5_0 keep its sign)
        r[b + 32 + 7] = 9.0  # and in the next block, positive
    rows = [r]
    rows.append(np.tile(np.arange(-8, 8, 0.5), COLS // 32))  # exact halves: rounding ties
    r = np.full(COLS, 0.3)
    r[::2] = -0.3  # two values per block
    rows.append(r)
    rows.append(np.full(COLS, -2.5))  # one repeated negative value
    return [x.astype(np.float32) for x in rows]


def llama_quantize(tool: str, src: str, dst: str, ftype: int) -> None:
    subprocess.run([tool, "--pure", src, dst, str(ftype), "2"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib-dir", required=True, help="directory with libggml-base.so and llama-quantize")
    ap.add_argument("--kquant", default="tests/fixtures/kquant/kquant.gguf", help="the rows to start from")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    base = next(t for t in GGUFReader(args.kquant).tensors if t.name == "input")
    x = np.asarray(base.data, dtype=np.float32).reshape(-1, COLS)
    x = np.concatenate([x, np.stack(extra_rows(np.random.default_rng(20250101)))])
    lib = ggml_base(args.lib_dir)
    blocks = {name: quantize(lib, ty, nb, x) for name, (ty, nb, _, _) in TYPES.items()}

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny-f32.gguf")
        tiny_llama(src, x)
        for name, (ty, _, ftype, _) in TYPES.items():
            dst = os.path.join(tmp, f"tiny-{name}.gguf")
            llama_quantize(os.path.join(args.lib_dir, "llama-quantize"), src, dst, ftype)
            t = next(t for t in GGUFReader(dst).tensors if t.name == "token_embd.weight")
            assert t.tensor_type == ty, (name, t.tensor_type)
            if bytes(t.data.tobytes()) != blocks[name]:
                sys.exit(f"{name}: llama-quantize and ggml_quantize_chunk disagree")
            print(f"{name}: llama-quantize --pure == ggml_quantize_chunk ({len(blocks[name])} bytes)")

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    w = GGUFWriter(args.out, "lamina-legacy-quant-fixture")
    w.add_string("fixture.made_by", "scripts/reference/legacy_quant_reference.py: ggml_quantize_chunk and "
                 "dequantize_row_* of llama.cpp (llama-cpp-python 0.3.36's), equal to llama-quantize --pure")
    w.add_uint32("fixture.rows", x.shape[0])
    w.add_uint32("fixture.cols", x.shape[1])
    w.add_tensor("input", x)
    for name, (ty, _, _, dec) in TYPES.items():
        raw = np.frombuffer(blocks[name], dtype=np.uint8).reshape(x.shape[0], -1)
        w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=ty)
        w.add_tensor(f"{name}.dequant", decode(lib, dec, blocks[name], x.size).reshape(x.shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, {x.shape[0]} rows of {x.shape[1]})")


if __name__ == "__main__":
    main()
