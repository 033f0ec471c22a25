#!/usr/bin/env python3
"""The tensor types llama.cpp gives for every `lamina quantize` target, for
`model/tests/quant_mix.rs`.

Exact command that produced tests/fixtures/kquant/mix_types.json (repository root, after
`scripts/fetch-model.sh`), with the `llama-quantize` tool of a llama.cpp built from the
sources vendored by llama-cpp-python 0.3.36:

    python3 scripts/reference/mix_types_reference.py --llama-quantize PATH/TO/llama-quantize \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/fixtures/kquant/mix_types.json

Without `--llama-quantize` it calls `llama_model_quantize` through llama-cpp-python
(0.3.36) instead; both give the same file. Requirements: numpy, gguf (0.19).

Three models, each quantized by llama.cpp (no imatrix) to every target: the K mixes
(q4_k / q5_k are `--pure` Q4_K_S / Q5_K_S), the 32-block types (q8_0, q5_1, q5_0, q4_1,
q4_0: llama.cpp's own choice for the head and a tied embedding) and f16 / f32:

- `smollm2`: SmolLM2-135M itself (30 layers, rows of 576 and 1536: the fallbacks), from
  the Q4_1 file with `allow_requantize` (the types do not depend on the input's);
- `tiny256`: an 8-layer llama with 256-wide rows and an untied output head, F16 zeros:
  the mixes without fallbacks;
- `gqa80`: an 80-layer grouped-query llama with 256-wide rows, which llama.cpp takes for
  a 70B (`LLM_TYPE_70B`: attn_v gets Q5_K instead of Q4_K).

For each: the tensor names and dimensions (`ne`), the hyperparameters, and per target
llama.cpp's type for each tensor, in the file's order. Only the GGUF headers are read.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import tempfile

import numpy as np
from gguf import GGUFReader, GGUFWriter

TARGETS = [("q4_k", 14, True), ("q5_k", 16, True), ("q6_k", 18, False), ("q4_k_s", 14, False),
           ("q4_k_m", 15, False), ("q5_k_s", 16, False), ("q5_k_m", 17, False), ("q8_0", 7, False),
           ("q5_1", 9, False), ("q5_0", 8, False), ("q4_1", 3, False), ("q4_0", 2, False),
           ("f16", 1, False), ("f32", 0, False)]

LLAMA_QUANTIZE = None  # path of llama.cpp's llama-quantize, when given

_LOG_CB = None


def quiet_llama() -> None:
    if LLAMA_QUANTIZE:
        return
    import llama_cpp

    global _LOG_CB
    _LOG_CB = llama_cpp.llama_log_callback(lambda level, text, data: None)
    llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p(0))


def quantize(src: str, dst: str, ftype: int, pure: bool) -> None:
    if LLAMA_QUANTIZE:
        import subprocess

        cmd = [LLAMA_QUANTIZE, "--allow-requantize"] + (["--pure"] if pure else []) + [src, dst, str(ftype), "2"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return
    import llama_cpp

    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype, p.pure, p.nthread, p.allow_requantize = ftype, pure, 2, True
    assert llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) == 0, src


def synthetic(path: str, layers: int, dim: int, heads: int, kv_heads: int, ffn: int, vocab: int, tied: bool) -> None:
    w = GGUFWriter(path, "llama")
    w.add_block_count(layers)
    w.add_context_length(256)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(1)
    kv = dim // heads * kv_heads
    z = lambda *s: np.zeros(s, dtype=np.float16)  # noqa: E731
    w.add_tensor("token_embd.weight", z(vocab, dim))
    for i in range(layers):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(dim, dtype=np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", z(dim, dim))
        w.add_tensor(f"blk.{i}.attn_k.weight", z(kv, dim))
        w.add_tensor(f"blk.{i}.attn_v.weight", z(kv, dim))
        w.add_tensor(f"blk.{i}.attn_output.weight", z(dim, dim))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(dim, dtype=np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", z(ffn, dim))
        w.add_tensor(f"blk.{i}.ffn_up.weight", z(ffn, dim))
        w.add_tensor(f"blk.{i}.ffn_down.weight", z(dim, ffn))
    w.add_tensor("output_norm.weight", np.ones(dim, dtype=np.float32))
    if not tied:
        w.add_tensor("output.weight", z(vocab, dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def field(r: GGUFReader, key: str):
    return r.fields[key].contents()


def case(src: str, tmp: str) -> dict:
    r = GGUFReader(src)
    tensors = [(t.name, [int(d) for d in t.shape]) for t in r.tensors]
    out = {
        "arch": field(r, "general.architecture"),
        "n_layer": int(field(r, "llama.block_count")),
        "n_head": int(field(r, "llama.attention.head_count")),
        "n_head_kv": int(field(r, "llama.attention.head_count_kv")),
        "tensors": tensors,
        "types": {},
    }
    for name, ftype, pure in TARGETS:
        dst = os.path.join(tmp, f"{name}.gguf")
        quantize(src, dst, ftype, pure)
        by_name = {t.name: t.tensor_type.name for t in GGUFReader(dst).tensors}
        out["types"][name] = [by_name[n] for n, _ in tensors]
        os.remove(dst)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--llama-quantize", help="llama.cpp's llama-quantize (else llama-cpp-python)")
    args = ap.parse_args()
    global LLAMA_QUANTIZE
    LLAMA_QUANTIZE = args.llama_quantize
    quiet_llama()
    cases = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases["smollm2"] = case(args.model, tmp)
        for name, shape in [("tiny256", (8, 256, 4, 4, 512, 512, False)), ("gqa80", (80, 256, 4, 2, 256, 256, True))]:
            src = os.path.join(tmp, f"{name}.gguf")
            synthetic(src, *shape)
            cases[name] = case(src, tmp)
            print(name, {t: sorted(set(v)) for t, v in cases[name]["types"].items()})
    with open(args.out, "w") as f:
        made_by = "scripts/reference/mix_types_reference.py (llama.cpp of llama-cpp-python 0.3.36)"
        json.dump({"made_by": made_by, "cases": cases},
                  f, separators=(",", ":"))
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
