#!/usr/bin/env python3
"""`lamina quantize` against llama.cpp's own quantizer, on a whole model (dev-only check).

Exact commands used for docs/QUANTIZATION.md (from the repository root, SmolLM2 fetched):

    cargo build --release -p lamina-cli
    target/release/lamina quantize models/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/kq/smollm2-f16.gguf \
        --type f16 --allow-requantize
    python3 scripts/reference/quantize_llamacpp_check.py --lamina target/release/lamina \
        --base /tmp/kq/smollm2-f16.gguf --work /tmp/kq

Requirements: numpy, gguf (0.19), llama-cpp-python (0.3.36 was used).

For every K target (q4_k and q5_k are llama.cpp's `--pure` Q4_K_S / Q5_K_S; q4_k_s,
q4_k_m, q5_k_s, q5_k_m, q6_k its mixes) it:

1. quantizes the base GGUF with llama.cpp (`llama_model_quantize`, no imatrix) and with
   `lamina quantize`, and compares the two files tensor by tensor: the type each tensor
   got, and its bytes; and `general.file_type`;
2. loads Lamina's file in llama.cpp and decodes a chat prompt greedily, beside llama.cpp's
   file (the same text is expected where the bytes are the same).

Then it writes the base model as a Hugging Face directory (config.json, F16
model.safetensors with q/k in transformers' split-halves layout, tokenizer.json and
tokenizer_config.json rebuilt from the GGUF tokenizer), runs `lamina quantize DIR --type
q4_k_m`, and checks that file against the GGUF route (same tensor bytes, same tokenizer
arrays and special ids), and that llama.cpp loads and runs it.

Exit status 1 if anything differs.

`--perplexity FILE...` instead prints llama.cpp's perplexity of each file on
data/corpus.txt, 4 chunks of 128 (llama-perplexity's method, as `lamina perplexity
--chunk 128 --chunks 4` computes it), to set beside Lamina's.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import struct
import subprocess
import sys

import numpy as np
from gguf import GGUFReader

TARGETS = [  # (lamina --type, llama_ftype, pure)
    ("q4_k", 14, True),
    ("q5_k", 16, True),
    ("q6_k", 18, False),
    ("q4_k_s", 14, False),
    ("q4_k_m", 15, False),
    ("q5_k_s", 16, False),
    ("q5_k_m", 17, False),
]
PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"

_LOG_CB = None


def quiet_llama() -> None:
    import llama_cpp

    global _LOG_CB
    _LOG_CB = llama_cpp.llama_log_callback(lambda level, text, data: None)
    llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p(0))


def llama_cpp_quantize(src: str, dst: str, ftype: int, pure: bool) -> None:
    import llama_cpp

    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype, p.pure, p.nthread = ftype, pure, 2
    if llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(p)) != 0:
        sys.exit(f"llama_model_quantize failed on {src}")


def greedy(path: str, n: int = 32) -> str:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, n_ctx=256, n_threads=2, verbose=False)
    out = llm(PROMPT, max_tokens=n, temperature=0.0, top_k=1)
    return out["choices"][0]["text"]


def llama_cpp_perplexity(path: str, corpus: str, n_ctx: int = 128, n_chunks: int = 4) -> float:
    """llama-perplexity's method: chunks from an empty cache, second half scored."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, logits_all=True, n_threads=2, verbose=False)
    with open(corpus, "rb") as f:
        toks = llm.tokenize(f.read(), add_bos=False, special=False)
    first, nll, count = n_ctx // 2, 0.0, 0
    for c in range(min(n_chunks, len(toks) // n_ctx)):
        ids = toks[c * n_ctx:(c + 1) * n_ctx]
        llm.reset()
        llm.eval(ids)
        logits = np.array(llm.scores[:n_ctx], dtype=np.float64)
        for p in range(first, n_ctx - 1):
            row = logits[p] - logits[p].max()
            nll -= row[ids[p + 1]] - np.log(np.exp(row).sum())
            count += 1
    return float(np.exp(nll / count))


def tensors(path: str) -> dict:
    return {t.name: t for t in GGUFReader(path).tensors}


def field(r: GGUFReader, key: str):
    f = r.fields.get(key)
    if f is None:
        return None
    return f.contents()


def compare(a: str, b: str) -> tuple[list[str], int, int]:
    """(type differences, tensors with equal bytes, tensors)."""
    ta, tb = tensors(a), tensors(b)
    diffs, same = [], 0
    if set(ta) != set(tb):
        diffs.append(f"tensor names differ: {sorted(set(ta) ^ set(tb))[:5]}")
    for name in sorted(set(ta) & set(tb)):
        x, y = ta[name], tb[name]
        if x.tensor_type != y.tensor_type:
            diffs.append(f"{name}: {x.tensor_type.name} vs {y.tensor_type.name}")
        elif x.data.tobytes() == y.data.tobytes():
            same += 1
    return diffs, same, len(ta)


def type_counts(path: str) -> dict:
    counts: dict = {}
    for t in tensors(path).values():
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return dict(sorted(counts.items()))


# ---- the base model as a Hugging Face directory ------------------------------------------

HF_NAMES = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
            "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj", "ffn_norm": "post_attention_layernorm",
            "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}


def hf_name(g: str) -> str:
    fixed = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
             "output.weight": "lm_head.weight"}
    if g in fixed:
        return fixed[g]
    _, layer, module, suffix = g.split(".")
    return f"model.layers.{layer}.{HF_NAMES[module]}.{suffix}"


def split_halves(w: np.ndarray, heads: int) -> np.ndarray:
    """GGUF's interleaved q/k rows -> transformers' split halves (the converter's inverse)."""
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_safetensors(path: str, named: list[tuple[str, np.ndarray]]) -> None:
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name, a in named:
        dtype = {np.float16: "F16", np.float32: "F32"}[a.dtype.type]
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_hf_dir(base: str, out: str) -> None:
    r = GGUFReader(base)
    os.makedirs(out, exist_ok=True)
    n_head = int(field(r, "llama.attention.head_count"))
    n_kv = int(field(r, "llama.attention.head_count_kv"))
    named = []
    for t in r.tensors:
        a = np.array(t.data).reshape([int(d) for d in reversed(t.shape)])
        if a.dtype == np.float32 and a.ndim == 2:
            a = a.astype(np.float16)
        if ".attn_q." in t.name:
            a = split_halves(a, n_head)
        elif ".attn_k." in t.name:
            a = split_halves(a, n_kv)
        named.append((hf_name(t.name), a))
    write_safetensors(os.path.join(out, "model.safetensors"), named)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": int(field(r, "llama.embedding_length")),
        "intermediate_size": int(field(r, "llama.feed_forward_length")),
        "num_hidden_layers": int(field(r, "llama.block_count")),
        "num_attention_heads": n_head, "num_key_value_heads": n_kv,
        "rms_norm_eps": float(field(r, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(field(r, "llama.rope.freq_base")),
        "max_position_embeddings": int(field(r, "llama.context_length")),
        "vocab_size": int(field(r, "llama.vocab_size")), "tie_word_embeddings": True, "torch_dtype": "float16",
        "bos_token_id": int(field(r, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(field(r, "tokenizer.ggml.eos_token_id")),
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    tokens = list(field(r, "tokenizer.ggml.tokens"))
    types = list(field(r, "tokenizer.ggml.token_type"))
    merges = list(field(r, "tokenizer.ggml.merges"))
    control = [i for i, ty in enumerate(types) if ty == 3]
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": i, "content": tokens[i], "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i in control],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens) if i not in control}, "merges": merges},
    }
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    tc = {"add_prefix_space": False, "add_bos_token": bool(field(r, "tokenizer.ggml.add_bos_token")),
          "bos_token": tokens[int(field(r, "tokenizer.ggml.bos_token_id"))],
          "eos_token": tokens[int(field(r, "tokenizer.ggml.eos_token_id"))],
          "unk_token": tokens[int(field(r, "tokenizer.ggml.unknown_token_id"))],
          "pad_token": tokens[int(field(r, "tokenizer.ggml.padding_token_id"))],
          "chat_template": str(field(r, "tokenizer.chat_template")), "tokenizer_class": "GPT2Tokenizer"}
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, ensure_ascii=False, indent=1)


def lamina_quantize(lamina: str, src: str, dst: str, ty: str) -> dict:
    out = subprocess.run([lamina, "quantize", src, dst, "--type", ty, "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lamina", help="the lamina binary")
    ap.add_argument("--base", help="F16/F32 GGUF to quantize")
    ap.add_argument("--work", help="directory for the outputs")
    ap.add_argument("--perplexity", nargs="+", metavar="FILE", help="only print llama.cpp's perplexity of FILEs")
    args = ap.parse_args()
    quiet_llama()
    if args.perplexity:
        corpus = os.path.join(os.path.dirname(__file__), "..", "..", "data", "corpus.txt")
        for f in args.perplexity:
            print(f"{f}: llama.cpp perplexity (4 x 128) {llama_cpp_perplexity(f, corpus):.4f}")
        return
    if not (args.lamina and args.base and args.work):
        ap.error("--lamina, --base and --work are required")
    os.makedirs(args.work, exist_ok=True)
    ok = True
    rows = []
    for name, ftype, pure in TARGETS:
        ours, theirs = (os.path.join(args.work, f"{who}-{name}.gguf") for who in ("lamina", "llamacpp"))
        llama_cpp_quantize(args.base, theirs, ftype, pure)
        rep = lamina_quantize(args.lamina, args.base, ours, name)
        diffs, same, n = compare(ours, theirs)
        ft = (field(GGUFReader(ours), "general.file_type"), field(GGUFReader(theirs), "general.file_type"))
        text_ours, text_theirs = greedy(ours), greedy(theirs)
        good = not diffs and same == n and ft[0] == ft[1] and text_ours == text_theirs
        ok &= good
        rows.append(name)
        print(f"{name}: {'OK' if good else 'DIFFERENT'}; types {'equal' if not diffs else diffs[:5]}; "
              f"{same}/{n} tensors byte-identical; file_type {ft[0]} vs llama.cpp {ft[1]}; "
              f"{os.path.getsize(ours) / 2**20:.2f} MiB, {rep['bits_per_weight_out']:.3f} bits/weight; "
              f"types {type_counts(ours)}")
        print(f"    llama.cpp on Lamina's file: {text_ours!r}")
        if text_ours != text_theirs:
            print(f"    llama.cpp on its own file:  {text_theirs!r}")

    hf = os.path.join(args.work, "smollm2-hf")
    write_hf_dir(args.base, hf)
    from_hf = os.path.join(args.work, "lamina-hf-q4_k_m.gguf")
    lamina_quantize(args.lamina, hf, from_hf, "q4_k_m")
    diffs, same, n = compare(from_hf, os.path.join(args.work, "lamina-q4_k_m.gguf"))
    a, b = GGUFReader(from_hf), GGUFReader(args.base)
    tok_keys = ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id",
                "tokenizer.ggml.padding_token_id", "tokenizer.chat_template"]
    tok_diff = [k for k in tok_keys if field(a, k) != field(b, k)]
    text = greedy(from_hf)
    good = not diffs and same == n and not tok_diff and text == greedy(os.path.join(args.work, "lamina-q4_k_m.gguf"))
    ok &= good
    print(f"HF dir -> q4_k_m: {'OK' if good else 'DIFFERENT'}; {same}/{n} tensors byte-identical to the GGUF route; "
          f"tokenizer keys differing: {tok_diff or 'none'}; pre {field(a, 'tokenizer.ggml.pre')!r}")
    print(f"    llama.cpp on it: {text!r}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
