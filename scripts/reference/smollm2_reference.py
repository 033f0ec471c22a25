#!/usr/bin/env python3
"""Independent float64 reference for SmolLM2-135M-Instruct (Q4_1 GGUF), and the
fixture generator for tests/fixtures/smollm2/.

Exact command that produced the committed fixtures (from the repository root,
after `scripts/fetch-model.sh`):

    python3 scripts/reference/smollm2_reference.py \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/fixtures/smollm2

Requirements: numpy, gguf (0.19) for the reference itself; llama-cpp-python for
tokenization (the token ids are recorded in the fixtures, so the Rust tests need
no Python) and for the cross-check against llama.cpp's own logits.

The model is implemented here from the GGUF/ggml format description, not from
llama.cpp's code:

* Dequantization (ggml block formats, 32 elements per block):
  - Q4_1: f16 d, f16 m, 16 bytes qs; element j < 16 is the low nibble of
    qs[j], element j >= 16 the high nibble of qs[j-16]; x = d*q + m.
  - Q8_0: f16 d, 32 x int8 q; x = d*q.
  - F32, F16: as is.
  A GGUF tensor with ne = [ne0, ne1] (gguf's `shape`, ne0 first, ne0
  contiguous) is an (ne1 rows, ne0 columns) matrix W applied as y = W x.
* LLaMA forward, all in float64: token_embd (Q8_0; also the output head, as the
  file has no output.weight), 30 blocks of
      h = x + Wo · attn(rope(Wq·n), rope(Wk·n), Wv·n),   n = rmsnorm(x)*attn_norm
      x = h + Wdown · (silu(Wgate·m) * (Wup·m)),         m = rmsnorm(h)*ffn_norm
  then rmsnorm * output_norm and logits = token_embd · h.
  RMSNorm: x / sqrt(mean(x^2) + eps), eps from llama.attention.layer_norm_rms_epsilon.
  Attention: 9 query heads, 3 KV heads (query head h uses KV head h // 3), head
  dim 64, scale 1/sqrt(64), causal softmax.
* RoPE ("normal"/interleaved convention, the one llama.cpp uses for the llama
  architecture): within each head of 64, the pairs (x[2i], x[2i+1]),
  i = 0..31, are rotated by the angle pos * base^(-2i/64), base =
  llama.rope.freq_base (100000):
      x'[2i]   = x[2i]*cos - x[2i+1]*sin
      x'[2i+1] = x[2i]*sin + x[2i+1]*cos
  The q/k weights in a llama GGUF are already stored permuted (by the HF->GGUF
  converter) for this convention, so they are used exactly as stored. The
  script also evaluates the other ("NeoX", halves (x[i], x[i+32])) convention
  and records how far it is from llama.cpp, to document that it is wrong for
  this file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType

# --------------------------------------------------------------------------
# Dequantization


def dequant_q4_1(raw: np.ndarray, n: int) -> np.ndarray:
    """raw: uint8 bytes, n elements -> float64 (n,)"""
    blocks = raw.reshape(-1, 20)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float64)  # (nb,1)
    m = blocks[:, 2:4].copy().view(np.float16).astype(np.float64)
    qs = blocks[:, 4:20]
    lo = (qs & 0x0F).astype(np.float64)
    hi = (qs >> 4).astype(np.float64)
    q = np.concatenate([lo, hi], axis=1)  # (nb, 32): j<16 low nibbles, j>=16 high
    out = d * q + m
    assert out.size == n
    return out.reshape(-1)


def dequant_q8_0(raw: np.ndarray, n: int) -> np.ndarray:
    blocks = raw.reshape(-1, 34)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float64)
    q = blocks[:, 2:34].copy().view(np.int8).astype(np.float64)
    out = d * q
    assert out.size == n
    return out.reshape(-1)


def dequant_tensor(t) -> np.ndarray:
    """Returns the tensor as float64 with numpy shape reversed(ne) (rows, cols)."""
    ne = [int(x) for x in t.shape]
    n = int(np.prod(ne))
    shape = tuple(reversed(ne))
    tt = t.tensor_type
    if tt == GGMLQuantizationType.F32:
        return np.asarray(t.data, dtype=np.float32).astype(np.float64).reshape(shape)
    if tt == GGMLQuantizationType.F16:
        return np.asarray(t.data, dtype=np.float16).astype(np.float64).reshape(shape)
    raw = np.ascontiguousarray(t.data, dtype=np.uint8).reshape(-1)
    if tt == GGMLQuantizationType.Q4_1:
        return dequant_q4_1(raw, n).reshape(shape)
    if tt == GGMLQuantizationType.Q8_0:
        return dequant_q8_0(raw, n).reshape(shape)
    raise NotImplementedError(f"{t.name}: {tt.name}")


# --------------------------------------------------------------------------
# Model


def field(reader: GGUFReader, key: str):
    f = reader.fields[key]
    return f.contents()


class Model:
    def __init__(self, path: str, check_dequant: bool = True):
        r = GGUFReader(path)
        self.reader = r
        assert field(r, "general.architecture") == "llama"
        self.n_layer = int(field(r, "llama.block_count"))
        self.n_embd = int(field(r, "llama.embedding_length"))
        self.n_ff = int(field(r, "llama.feed_forward_length"))
        self.n_head = int(field(r, "llama.attention.head_count"))
        self.n_head_kv = int(field(r, "llama.attention.head_count_kv"))
        self.eps = float(field(r, "llama.attention.layer_norm_rms_epsilon"))
        self.rope_base = float(field(r, "llama.rope.freq_base"))
        self.head_dim = self.n_embd // self.n_head
        self.n_rot = int(field(r, "llama.rope.dimension_count"))
        assert self.n_rot == self.head_dim
        self.eos = int(field(r, "tokenizer.ggml.eos_token_id"))
        self.bos = int(field(r, "tokenizer.ggml.bos_token_id"))
        self.add_bos = bool(field(r, "tokenizer.ggml.add_bos_token"))
        self.tokens = list(field(r, "tokenizer.ggml.tokens"))
        self.token_type = list(field(r, "tokenizer.ggml.token_type"))
        self.w = {}
        self.types = {}
        for t in r.tensors:
            self.w[t.name] = dequant_tensor(t)
            self.types[t.name] = t.tensor_type.name
        if check_dequant:
            # Cross-check our dequantizers against gguf-py's own (a second
            # implementation of the same spec) on one tensor of each type.
            from gguf.quants import dequantize

            seen = set()
            for t in r.tensors:
                if t.tensor_type in seen:
                    continue
                seen.add(t.tensor_type)
                ref = dequantize(t.data, t.tensor_type).astype(np.float64)
                mine = self.w[t.name]
                assert ref.shape == mine.shape, (t.name, ref.shape, mine.shape)
                err = np.max(np.abs(ref - mine))
                assert err <= 1e-6 * max(1.0, np.max(np.abs(ref))), (t.name, err)
        assert "output.weight" not in self.w  # tied head
        self.out_w = self.w["token_embd.weight"]  # (n_vocab, n_embd)
        self.n_vocab = self.out_w.shape[0]
        self.meta = dict(
            n_layer=self.n_layer, n_embd=self.n_embd, n_ff=self.n_ff,
            n_head=self.n_head, n_head_kv=self.n_head_kv, head_dim=self.head_dim,
            rms_eps=self.eps, rope_freq_base=self.rope_base, n_vocab=self.n_vocab,
        )

    # ---- pieces

    def rmsnorm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos, mode="norm"):
        """x: (T, n_heads, head_dim); pos: (T,) absolute positions."""
        hd = self.head_dim
        inv = self.rope_base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)  # (hd/2,)
        ang = pos[:, None].astype(np.float64) * inv[None, :]  # (T, hd/2)
        c = np.cos(ang)[:, None, :]
        s = np.sin(ang)[:, None, :]
        if mode == "norm":
            x0 = x[..., 0::2]
            x1 = x[..., 1::2]
            out = np.empty_like(x)
            out[..., 0::2] = x0 * c - x1 * s
            out[..., 1::2] = x0 * s + x1 * c
            return out
        if mode == "neox":
            h = hd // 2
            x0 = x[..., :h]
            x1 = x[..., h:]
            return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)
        raise ValueError(mode)

    def new_cache(self):
        return [dict(k=np.zeros((0, self.n_head_kv, self.head_dim)),
                     v=np.zeros((0, self.n_head_kv, self.head_dim)))
                for _ in range(self.n_layer)]

    def forward(self, tokens, cache=None, rope_mode="norm", all_logits=True):
        """Runs `tokens` after whatever is in `cache` (appended to it).
        Returns logits (T, n_vocab) (or (1, n_vocab) for the last position)."""
        if cache is None:
            cache = self.new_cache()
        tokens = np.asarray(tokens, dtype=np.int64)
        T = len(tokens)
        p0 = cache[0]["k"].shape[0]
        pos = np.arange(p0, p0 + T)
        nh, nkv, hd = self.n_head, self.n_head_kv, self.head_dim
        grp = nh // nkv
        x = self.w["token_embd.weight"][tokens]  # (T, n_embd)
        for il in range(self.n_layer):
            p = f"blk.{il}."
            n = self.rmsnorm(x, self.w[p + "attn_norm.weight"])
            q = (n @ self.w[p + "attn_q.weight"].T).reshape(T, nh, hd)
            k = (n @ self.w[p + "attn_k.weight"].T).reshape(T, nkv, hd)
            v = (n @ self.w[p + "attn_v.weight"].T).reshape(T, nkv, hd)
            q = self.rope(q, pos, rope_mode)
            k = self.rope(k, pos, rope_mode)
            c = cache[il]
            c["k"] = np.concatenate([c["k"], k], axis=0)
            c["v"] = np.concatenate([c["v"], v], axis=0)
            K, V = c["k"], c["v"]  # (S, nkv, hd)
            S = K.shape[0]
            kpos = np.arange(S)
            mask = kpos[None, :] > pos[:, None]  # (T, S): future keys
            att = np.empty((T, nh, hd))
            for h in range(nh):
                kh = h // grp
                sc = (q[:, h, :] @ K[:, kh, :].T) / math.sqrt(hd)  # (T, S)
                sc[mask] = -np.inf
                sc = sc - sc.max(axis=1, keepdims=True)
                e = np.exp(sc)
                e /= e.sum(axis=1, keepdims=True)
                att[:, h, :] = e @ V[:, kh, :]
            x = x + att.reshape(T, nh * hd) @ self.w[p + "attn_output.weight"].T
            m = self.rmsnorm(x, self.w[p + "ffn_norm.weight"])
            g = m @ self.w[p + "ffn_gate.weight"].T
            u = m @ self.w[p + "ffn_up.weight"].T
            a = g / (1.0 + np.exp(-g)) * u
            x = x + a @ self.w[p + "ffn_down.weight"].T
        if not all_logits:
            x = x[-1:]
        h = self.rmsnorm(x, self.w["output_norm.weight"])
        return h @ self.out_w.T

    def greedy(self, prompt, n_new, rope_mode="norm"):
        cache = self.new_cache()
        logits = self.forward(prompt, cache, rope_mode, all_logits=False)
        out = []
        for i in range(n_new):
            t = int(np.argmax(logits[-1]))
            out.append(t)
            if i + 1 < n_new:
                logits = self.forward([t], cache, rope_mode, all_logits=False)
        return out

    # ---- GPT-2 byte-level detokenization from the GGUF vocabulary

    def detokenize(self, ids) -> str:
        bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
            + list(range(ord("®"), ord("ÿ") + 1))
        cs = bs[:]
        k = 0
        for b in range(256):
            if b not in bs:
                bs.append(b)
                cs.append(256 + k)
                k += 1
        u2b = {chr(c): b for b, c in zip(bs, cs)}
        out = bytearray()
        for i in ids:
            tok = self.tokens[i]
            if self.token_type[i] in (3, 4):  # control / user-defined: literal text
                out += tok.encode("utf-8")
            else:
                out += bytes(u2b[ch] for ch in tok)
        return out.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------
# helpers


def log_softmax64(logits):
    z = np.asarray(logits, dtype=np.float64)
    mx = z.max(axis=-1, keepdims=True)
    return z - mx - np.log(np.exp(z - mx).sum(axis=-1, keepdims=True))


def top5(row):
    idx = np.argsort(-row, kind="stable")[:5]
    return [[int(i), round(float(row[i]), 5)] for i in idx]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


CHAT_PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"

LOGIT_PROMPTS = [
    ("chatml", CHAT_PROMPT),
    ("english", "The quick brown fox jumps over the lazy dog. It was a sunny day, and the"),
    ("code", "def fibonacci(n):\n    if n < 2:\n        return n\n    return"),
    ("one_token", "The"),
    ("story", "Once upon a time, there was a little"),
]

GREEDY_PROMPTS = [
    ("chatml", CHAT_PROMPT),
    ("english", "The capital of France is"),
    ("code", "def fibonacci(n):\n    if n < 2:\n        return n\n    return"),
]

TOKEN_TEXTS = [
    ("english", "The quick brown fox jumps over the lazy dog."),
    ("code", "fn main() {\n    let x: Vec<u32> = (0..10).map(|i| i * i).collect();\n    println!(\"{:?}\", x);\n}\n"),
    ("whitespace", "a  b   c\n\n\td"),
    ("digits", "12345 3.14159"),
    ("emoji", "Hello 👋🏽 world 🚀"),
    ("chinese", "大语言模型是一种"),
    ("special", "<|im_start|>user\nhi<|im_end|>"),
    ("empty", ""),
    ("contractions", "I'm sure they'll say it's fine, isn't it? We've DONE it'S"),
    ("long_mixed", "In 1905, Albert Einstein published four papers (the \"annus mirabilis\"); "
                   "E = mc² appeared in one of them.  Today, models like GPT-4 process "
                   "~100,000 tokens/s — café, naïve, Straße, Ωmega, 東京, 😀!\n"
                   "    for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }\n\t\tdone.\r\n"),
]


def write_f32_gguf(src: str, dst: str):
    """Copies `src` with every tensor dequantized to F32 (same metadata), for the
    structural cross-check against llama.cpp without any quantized arithmetic."""
    from gguf import GGUFWriter, GGUFValueType
    from gguf.quants import dequantize

    r = GGUFReader(src)
    w = GGUFWriter(dst, str(field(r, "general.architecture")))
    skip = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture",
            "general.file_type"}
    for k, f in r.fields.items():
        if k in skip:
            continue
        if f.types[0] == GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[-1])
        else:
            w.add_key_value(k, f.contents(), f.types[0])
    w.add_file_type(0)  # ALL_F32
    for t in r.tensors:
        w.add_tensor(t.name, dequantize(t.data, t.tensor_type).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


class LlamaCpp:
    """Thin wrapper over llama_cpp.Llama: logits of a fresh sequence, greedy loop."""

    def __init__(self, path, threads, f32_kv=False):
        import llama_cpp

        kw = dict(type_k=0, type_v=0) if f32_kv else {}  # 0 = GGML_TYPE_F32
        self.llm = llama_cpp.Llama(model_path=path, n_ctx=512, logits_all=True,
                                   n_threads=threads, n_threads_batch=threads, seed=0,
                                   flash_attn=False, verbose=False, **kw)

    def tokenize(self, text: bytes, special=True):
        return [int(t) for t in self.llm.tokenize(text, add_bos=False, special=special)]

    def detokenize(self, ids):
        return self.llm.detokenize(ids, special=True).decode("utf-8", errors="replace")

    def logits(self, tokens):
        self.llm.reset()  # eval() then drops the KV cache from position 0
        self.llm.eval(tokens)
        return np.array(self.llm.scores[: len(tokens)], dtype=np.float64)

    def greedy(self, prompt, n_new):
        self.llm.reset()
        self.llm.eval(prompt)
        out = []
        for i in range(n_new):
            t = int(np.argmax(self.llm.scores[self.llm.n_tokens - 1]))
            out.append(t)
            if i + 1 < n_new:
                self.llm.eval([t])
        return out


def agreeing_prefix(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default="tests/fixtures/smollm2")
    ap.add_argument("--corpus", default="data/corpus.txt")
    ap.add_argument("--n-ctx", type=int, default=128)
    ap.add_argument("--n-chunks", type=int, default=4)
    ap.add_argument("--n-greedy", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-f32-check", action="store_true",
                    help="skip the llama.cpp run on an F32 copy of the weights")
    args = ap.parse_args()

    import tempfile

    import llama_cpp  # tokenization + cross-check

    t0 = time.time()
    model_sha = sha256_file(args.model)
    model = Model(args.model)
    print(f"loaded + dequantized in {time.time() - t0:.1f}s: {model.meta}")
    os.makedirs(args.out, exist_ok=True)

    lc = LlamaCpp(args.model, args.threads)
    tmpdir = None
    lc32 = None
    if not args.no_f32_check:
        tmpdir = tempfile.TemporaryDirectory()
        f32_path = os.path.join(tmpdir.name, "f32.gguf")
        write_f32_gguf(args.model, f32_path)
        lc32 = LlamaCpp(f32_path, args.threads, f32_kv=True)
        print(f"wrote F32 copy for the llama.cpp structural check ({time.time() - t0:.1f}s)")

    def tok(text, special=True):
        return lc.tokenize(text.encode("utf-8"), special=special)

    common = dict(
        model=os.path.basename(args.model), model_sha256=model_sha,
        generator="scripts/reference/smollm2_reference.py",
        llama_cpp_python_version=llama_cpp.__version__,
    )
    lc_desc = ("'llama_cpp': llama.cpp on the same Q4_1 file (llama-cpp-python "
               f"{llama_cpp.__version__}, CPU, {args.threads} threads, default f16 KV "
               "cache, no flash attention); it quantizes the activations to q8_1 (q8_0 "
               "for the Q8_0 output head) for the quantized dot products, so it is "
               "not bit-comparable with the reference. 'llama_cpp_f32': llama.cpp on "
               "a copy of the file with every tensor dequantized to F32 and an F32 KV "
               "cache, i.e. the same weights with no quantized arithmetic: this "
               "checks the reference's structure (RoPE convention, GQA, norms) and "
               "should agree to ~1e-4.")

    # ---------------- tokens.json
    tok_cases = []
    for name, text in TOKEN_TEXTS:
        tok_cases.append(dict(name=name, text=text, ids=tok(text)))
    voc = llama_cpp.Llama(model_path=args.model, vocab_only=True, verbose=False)
    for c in tok_cases:  # a vocab-only instance tokenizes identically
        assert [int(t) for t in voc.tokenize(c["text"].encode("utf-8"), add_bos=False,
                                             special=True)] == c["ids"], c["name"]
        assert model.detokenize(c["ids"]) == c["text"], c["name"]
    del voc
    write_json(os.path.join(args.out, "tokens.json"), dict(
        **common,
        method="llama.cpp's tokenizer: llama_cpp.Llama(model_path, vocab_only=True)"
               ".tokenize(text.encode('utf-8'), add_bos=False, special=True). Special "
               "tokens written in the text (<|im_start|>, <|im_end|>, ...) are parsed "
               "as single control tokens; no BOS (the GGUF has "
               "tokenizer.ggml.add_bos_token=false). tokenizer.ggml.model='gpt2' "
               "(byte-level BPE with the GGUF's merges), tokenizer.ggml.pre='smollm' "
               "(llama.cpp LLAMA_VOCAB_PRE_TYPE_SMOLLM), whose pre-tokenizer applies "
               "the regexes below in sequence (each splits the pieces produced by "
               "the previous one). Every case also decodes back to its text.",
        pre_tokenizer_regexes=[
            "\\p{N}",
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)",
        ],
        cases=tok_cases,
    ))

    # ---------------- logits.json
    logit_cases = []
    rope_check = {}
    for name, text in LOGIT_PROMPTS:
        ids = tok(text)
        if name == "one_token":
            assert len(ids) == 1, ids
        t1 = time.time()
        ref = model.forward(ids, all_logits=False)[-1]
        lq = lc.logits(ids)[-1]
        t5, lt5 = top5(ref), top5(lq)
        diff = float(np.max(np.abs(ref - lq)))
        case = dict(
            name=name, text=text, ids=ids, top5=t5,
            max=round(float(ref.max()), 5), mean=round(float(ref.mean()), 6),
            llama_cpp=dict(
                top5=lt5, max=round(float(lq.max()), 5), mean=round(float(lq.mean()), 6),
                max_abs_diff=round(diff, 5),
                mean_abs_diff=round(float(np.mean(np.abs(ref - lq))), 5),
                top5_ids_agree=[a[0] for a in t5] == [b[0] for b in lt5],
                argmax_agrees=t5[0][0] == lt5[0][0],
            ),
        )
        if lc32 is not None:
            l32 = lc32.logits(ids)[-1]
            case["llama_cpp_f32"] = dict(
                max_abs_diff=float(f"{np.max(np.abs(ref - l32)):.3g}"),
                top5_ids_agree=[a[0] for a in t5] == [b[0] for b in top5(l32)],
            )
        if name in ("chatml", "english"):
            neox = model.forward(ids, rope_mode="neox", all_logits=False)[-1]
            rope_check[name] = dict(
                norm_interleaved_vs_llama_cpp_max_abs_diff=round(diff, 5),
                neox_halves_vs_llama_cpp_max_abs_diff=round(float(np.max(np.abs(neox - lq))), 5),
                neox_halves_top5=top5(neox),
            )
        logit_cases.append(case)
        print(f"logits {name}: {len(ids)} tokens, {time.time() - t1:.1f}s, top5 {t5}, "
              f"llama.cpp {lt5}, max|diff| {diff:.4f}"
              + (f", f32 {case['llama_cpp_f32']['max_abs_diff']}" if lc32 else ""))
    write_json(os.path.join(args.out, "logits.json"), dict(
        **common,
        method="Reference: numpy float64 forward pass over the weights dequantized to "
               "float64 (Q4_1/Q8_0/F32 -> f64), no activation quantization, f64 KV; "
               "RoPE in the 'normal' (interleaved pairs) convention with the q/k "
               "weights used as stored. For each prompt (ids = llama.cpp tokenization, "
               "no BOS, run from position 0): top5 = the 5 largest (token id, logit) "
               "at the last position; max/mean = of the full last-position logit "
               "vector. max_abs_diff = max over the vocabulary of |reference - other| "
               "at the last position. " + lc_desc + " rope_check: the same with the "
               "other RoPE convention (NeoX, rotating (x[i], x[i+32])), which is wrong "
               "for this file.",
        model_meta=model.meta,
        llama_cpp_max_abs_diff_over_prompts=max(c["llama_cpp"]["max_abs_diff"] for c in logit_cases),
        llama_cpp_f32_max_abs_diff_over_prompts=(
            max(c["llama_cpp_f32"]["max_abs_diff"] for c in logit_cases) if lc32 else None),
        rope_check=rope_check,
        cases=logit_cases,
    ))

    # ---------------- greedy.json
    greedy_cases = []
    for name, text in GREEDY_PROMPTS:
        ids = tok(text)
        t1 = time.time()
        g = model.greedy(ids, args.n_greedy)
        lg = lc.greedy(ids, args.n_greedy)
        text_g = model.detokenize(g)
        assert text_g == lc.detokenize(g)
        case = dict(
            name=name, prompt=text, prompt_ids=ids, ids=g, text=text_g,
            eos_at=[i for i, t in enumerate(g) if t == model.eos],
            llama_cpp=dict(ids=lg, text=lc.detokenize(lg), identical=g == lg,
                           agreeing_prefix_len=agreeing_prefix(g, lg)),
        )
        if lc32 is not None:
            l32 = lc32.greedy(ids, args.n_greedy)
            case["llama_cpp_f32"] = dict(identical=g == l32,
                                         agreeing_prefix_len=agreeing_prefix(g, l32))
        greedy_cases.append(case)
        print(f"greedy {name}: {time.time() - t1:.1f}s, llama.cpp agrees "
              f"{case['llama_cpp']['agreeing_prefix_len']}/{len(g)}"
              + (f", f32 {case['llama_cpp_f32']['agreeing_prefix_len']}" if lc32 else "")
              + f": {text_g!r}")
    write_json(os.path.join(args.out, "greedy.json"), dict(
        **common,
        method=f"Greedy decoding with the float64 reference and a KV cache: run the "
               f"prompt ids (llama.cpp tokenization, no BOS) from position 0, then "
               f"{args.n_greedy} times take the argmax of the last logits (lowest id "
               f"on ties) and feed it back. No EOS stopping: eos_at lists the indices "
               f"where EOS (id {model.eos}) was produced. 'text' = byte-level BPE "
               f"decoding of ids, special tokens rendered. The same loop with "
               f"llama.cpp's logits: " + lc_desc + " A Q4_1 llama.cpp run "
               f"diverges from the reference once two candidates are within its "
               f"activation-quantization noise (agreeing_prefix_len).",
        n_new=args.n_greedy,
        cases=greedy_cases,
    ))

    # ---------------- perplexity.json
    with open(args.corpus, "rb") as f:
        corpus = f.read()
    ctoks = lc.tokenize(corpus, special=False)
    n_ctx = args.n_ctx
    first = n_ctx // 2
    n_chunk = min(args.n_chunks, len(ctoks) // n_ctx)
    pos = np.arange(first, n_ctx - 1)
    chunks = []
    tot = {"ref": 0.0, "lc": 0.0, "lc32": 0.0}
    count = 0

    def chunk_nll(logits, ids):
        lp = log_softmax64(logits)
        return float(-lp[pos, np.asarray(ids)[pos + 1]].sum())

    def ppl_entry(nll, n):
        return dict(mean_nll=round(nll / n, 6), ppl=round(math.exp(nll / n), 5))

    for c in range(n_chunk):
        t1 = time.time()
        ids = ctoks[c * n_ctx:(c + 1) * n_ctx]
        n = len(pos)
        nll = {"ref": chunk_nll(model.forward(ids), ids), "lc": chunk_nll(lc.logits(ids), ids)}
        if lc32 is not None:
            nll["lc32"] = chunk_nll(lc32.logits(ids), ids)
        for k, v in nll.items():
            tot[k] += v
        count += n
        entry = dict(chunk=c, first_token_index=c * n_ctx, n_scored=n, **ppl_entry(nll["ref"], n),
                     llama_cpp=ppl_entry(nll["lc"], n))
        if lc32 is not None:
            entry["llama_cpp_f32"] = ppl_entry(nll["lc32"], n)
        chunks.append(entry)
        print(f"ppl chunk {c}: {time.time() - t1:.1f}s ref {entry['ppl']} "
              f"llama.cpp {entry['llama_cpp']['ppl']}"
              + (f" f32 {entry['llama_cpp_f32']['ppl']}" if lc32 else ""))
    result = dict(
        **common,
        method="llama-perplexity's method (tools/perplexity/perplexity.cpp, "
               "perplexity()): tokenize the whole file (its bytes as is; add_special "
               "is true but the GGUF has add_bos_token=false, so no BOS; special "
               "tokens not parsed); n_chunk = min(n_chunks, n_tokens / n_ctx) "
               "consecutive non-overlapping chunks of n_ctx tokens, chunk c = tokens "
               "[c*n_ctx, (c+1)*n_ctx); each chunk is evaluated alone from an empty "
               "KV cache (positions 0..n_ctx-1); with first = n_ctx/2, the logits at "
               "positions first .. n_ctx-2 are scored against the tokens at positions "
               "first+1 .. n_ctx-1 (n_ctx - 1 - first tokens per chunk), NLL = "
               "-log_softmax(logits)[next token]. mean_nll = total NLL / total scored "
               "tokens over all chunks; ppl = exp(mean_nll) (llama-perplexity's "
               "'Final estimate'). Per-chunk entries are each chunk's own mean. "
               "Reference: float64 logits. " + lc_desc + " Log-softmax of llama.cpp's "
               "f32 logits taken in f64.",
        text_path=args.corpus, text_sha256=hashlib.sha256(corpus).hexdigest(),
        text_n_tokens=len(ctoks), text_first_16_ids=ctoks[:16],
        n_ctx=n_ctx, n_chunks=n_chunk, first=first, n_scored=count,
        **ppl_entry(tot["ref"], count),
        llama_cpp=ppl_entry(tot["lc"], count),
    )
    if lc32 is not None:
        result["llama_cpp_f32"] = ppl_entry(tot["lc32"], count)
    result["chunks"] = chunks
    write_json(os.path.join(args.out, "perplexity.json"), result)
    if tmpdir is not None:
        del lc32
        tmpdir.cleanup()
    print(f"total {time.time() - t0:.1f}s")


if __name__ == "__main__":
    main()
