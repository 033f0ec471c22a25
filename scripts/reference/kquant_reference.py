#!/usr/bin/env python3
"""Golden blocks for Lamina's K-quant quantizers, made by llama.cpp itself.

Exact command that produced tests/fixtures/kquant/kquant.gguf (from the repository
root, after `scripts/fetch-model.sh`):

    python3 scripts/reference/kquant_reference.py \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/fixtures/kquant/kquant.gguf

Requirements: numpy, gguf (0.19), llama-cpp-python (0.3.36 was used; it ships
llama.cpp's libggml-base.so and libllama.so).

What it does:

1. Builds rows of floats (512 per row, two Q*_K super-blocks): Gaussian rows at the
   scale of real weights, rows with outliers, all-positive / all-negative blocks, an
   all-zero and a constant block, tiny and huge magnitudes, and real SmolLM2 rows
   (the Q4_1 file's ffn_down / Q8_0 embedding, dequantized, first 512 columns).
2. Quantizes them to Q4_K, Q5_K and Q6_K with ggml's `ggml_quantize_chunk` (no
   importance matrix, so it runs `quantize_row_q*_K_ref`), called through ctypes on the
   libggml-base.so that llama-cpp-python ships, and decodes the Q5_K blocks with ggml's
   `dequantize_row_q5_K` (Lamina's Q5_K decoder is new).
3. Cross-checks that path against llama.cpp's model quantizer: the rows become the
   token embedding of a one-layer F32 llama GGUF, `llama_model_quantize` quantizes it
   with `pure` set (every matrix the mix's base type: Q4_K_S -> Q4_K, Q5_K_S -> Q5_K,
   Q6_K), and the token embedding's bytes must equal step 2's. The script fails
   otherwise.
4. Writes one small GGUF: `input` (F32 rows), `q4_k`, `q5_k`, `q6_k` (the blocks, as
   their GGML types) and `q5_k.dequant` (F32). The Rust test
   `model/tests/kquant_reference.rs` reads it with no Python.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFWriter
from gguf.quants import dequantize

COLS = 512
TYPES = {  # name -> (ggml type, llama_ftype used with `pure`)
    "q4_k": (T.Q4_K, 14),  # LLAMA_FTYPE_MOSTLY_Q4_K_S
    "q5_k": (T.Q5_K, 16),  # LLAMA_FTYPE_MOSTLY_Q5_K_S
    "q6_k": (T.Q6_K, 18),  # LLAMA_FTYPE_MOSTLY_Q6_K
}
BLOCK_BYTES = {T.Q4_K: 144, T.Q5_K: 176, T.Q6_K: 210}


def lib_dir() -> str:
    import llama_cpp

    return os.path.join(os.path.dirname(llama_cpp.__file__), "lib")


def ggml_base():
    lib = ctypes.CDLL(os.path.join(lib_dir(), "libggml-base.so"))
    f = lib.ggml_quantize_chunk
    f.restype = ctypes.c_size_t
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                  ctypes.c_int64, ctypes.c_void_p]
    d = lib.dequantize_row_q5_K
    d.restype = None
    d.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return lib


def quantize(lib, ty: T, x: np.ndarray) -> bytes:
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, cols = x.shape
    out = np.zeros(rows * cols // 256 * BLOCK_BYTES[ty], dtype=np.uint8)
    n = lib.ggml_quantize_chunk(int(ty), x.ctypes.data, out.ctypes.data, 0, rows, cols, None)
    assert n == out.size, (n, out.size)
    return out.tobytes()


def dequantize_q5_k(lib, blocks: bytes, n: int) -> np.ndarray:
    src = np.frombuffer(blocks, dtype=np.uint8).copy()
    out = np.zeros(n, dtype=np.float32)
    lib.dequantize_row_q5_K(src.ctypes.data, out.ctypes.data, n)
    return out


def synthetic_rows(rng: np.random.Generator) -> list[np.ndarray]:
    rows = [rng.normal(0, 0.02, COLS) for _ in range(4)]  # the scale of real weights
    r = rng.normal(0, 1.0, COLS)
    r[rng.choice(COLS, 6, replace=False)] *= 25.0  # outliers
    rows.append(r)
    rows.append(np.concatenate([rng.uniform(0, 1, 256), -rng.uniform(0, 1, 256)]))  # one sign per block
    r = np.zeros(COLS)
    r[256:] = 0.5  # an all-zero block, then a constant one
    rows.append(r)
    r = rng.normal(0, 1.0, COLS)
    r[:32] = 0.0  # one zero sub-block inside a normal block
    r[300:316] = 1e-3  # a near-constant Q6_K sub-block
    rows.append(r)
    rows.append(rng.normal(0, 1e-6, COLS))  # scales in f16's subnormal range
    rows.append(rng.normal(0, 300.0, COLS))  # large values
    rows.append(np.round(rng.normal(0, 4.0, COLS)))  # integers: many exact rounding ties
    return [r.astype(np.float32) for r in rows]


def smollm2_rows(path: str) -> list[np.ndarray]:
    r = GGUFReader(path)
    by_name = {t.name: t for t in r.tensors}
    rows = []
    for name, picks in [("blk.0.ffn_down.weight", [0, 1]), ("blk.17.ffn_down.weight", [100]),
                        ("blk.29.attn_v.weight", [3]), ("token_embd.weight", [1, 4093])]:
        t = by_name[name]
        w = dequantize(t.data, t.tensor_type).reshape(-1, int(t.shape[0]))
        rows.extend(w[i, :COLS].astype(np.float32) for i in picks)
    return rows


def tiny_llama(path: str, embd: np.ndarray) -> None:
    """A one-layer F32 llama whose token embedding is `embd` (vocab x COLS)."""
    vocab, dim = embd.shape
    w = GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(dim)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(0)
    zeros = np.zeros((dim, dim), dtype=np.float32)
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output_norm.weight", np.ones(dim, dtype=np.float32))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(dim, dtype=np.float32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(dim, dtype=np.float32))
    for p in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]:
        w.add_tensor(f"blk.0.{p}.weight", zeros)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_cpp_quantize(src: str, dst: str, ftype: int) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.pure = True
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"llama_model_quantize failed ({rc})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="SmolLM2-135M-Instruct.Q4_1.gguf (real rows)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    rng = np.random.default_rng(20240607)
    x = np.stack(synthetic_rows(rng) + smollm2_rows(args.model))
    lib = ggml_base()
    blocks = {name: quantize(lib, ty, x) for name, (ty, _) in TYPES.items()}

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "tiny-f32.gguf")
        tiny_llama(src, x)
        for name, (ty, ftype) in TYPES.items():
            dst = os.path.join(tmp, f"tiny-{name}.gguf")
            llama_cpp_quantize(src, dst, ftype)
            t = next(t for t in GGUFReader(dst).tensors if t.name == "token_embd.weight")
            assert t.tensor_type == ty, (name, t.tensor_type)
            if bytes(t.data.tobytes()) != blocks[name]:
                sys.exit(f"{name}: llama_model_quantize and ggml_quantize_chunk disagree")
            print(f"{name}: llama_model_quantize == ggml_quantize_chunk ({len(blocks[name])} bytes)")

    dq = dequantize_q5_k(lib, blocks["q5_k"], x.size).reshape(x.shape)
    # gguf-py's own decoder is a third opinion on the Q5_K layout.
    assert np.array_equal(dq, dequantize(np.frombuffer(blocks["q5_k"], np.uint8).reshape(x.shape[0], -1), T.Q5_K))

    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    w = GGUFWriter(args.out, "lamina-kquant-fixture")
    w.add_string("fixture.made_by", "scripts/reference/kquant_reference.py: ggml_quantize_chunk "
                 "(llama-cpp-python 0.3.36), equal to llama_model_quantize --pure")
    w.add_uint32("fixture.rows", x.shape[0])
    w.add_uint32("fixture.cols", x.shape[1])
    w.add_tensor("input", x)
    for name, (ty, _) in TYPES.items():
        raw = np.frombuffer(blocks[name], dtype=np.uint8).reshape(x.shape[0], -1)
        w.add_tensor(name, raw, raw_shape=raw.shape, raw_dtype=ty)
    w.add_tensor("q5_k.dequant", dq.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, {x.shape[0]} rows of {x.shape[1]})")


if __name__ == "__main__":
    main()
