#!/usr/bin/env python3
"""A tiny random GPT-2 as a GGUF file, and its logits from an independent numpy forward
pass: the fixture for Lamina's GPT-2 loader and architecture (tests/fixtures/gpt2-tiny/).

Command that produced the committed fixture (from the repository root):

    python3 scripts/reference/gpt2_tiny_reference.py --out tests/fixtures/gpt2-tiny

Requires numpy and gguf (pip). The GGUF uses llama.cpp's `gpt2` tensor names and keys;
matrices are stored F16 (half the size) and norms/biases F32, and the reference
computes in float64 from the stored (rounded) values.
GPT-2: x = wte[ids] + wpe[pos]; per block x += attn(ln_1(x)); x += mlp(ln_2(x)) with
tanh-GELU; logits = ln_f(x) @ wte^T (tied head).
"""

import argparse
import json
import os

import numpy as np
from gguf import GGUFWriter

VOCAB, CTX, N_LAYER, N_HEAD, C = 64, 16, 2, 4, 32
FFN = 4 * C
EPS = 1e-5


def weights(seed=20261129):
    rng = np.random.default_rng(seed)
    w = {}

    def mat(name, rows, cols, std=0.2):
        # Stored as F16; the reference uses the rounded values.
        w[name] = (rng.standard_normal((rows, cols)) * std).astype(np.float16)

    def vec(name, n, mean=0.0, std=0.1):
        w[name] = (mean + rng.standard_normal(n) * std).astype(np.float32)

    mat("token_embd.weight", VOCAB, C, 0.5)
    mat("position_embd.weight", CTX, C, 0.2)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        vec(p + "attn_norm.weight", C, 1.0)
        vec(p + "attn_norm.bias", C)
        mat(p + "attn_qkv.weight", 3 * C, C)
        vec(p + "attn_qkv.bias", 3 * C)
        mat(p + "attn_output.weight", C, C)
        vec(p + "attn_output.bias", C)
        vec(p + "ffn_norm.weight", C, 1.0)
        vec(p + "ffn_norm.bias", C)
        mat(p + "ffn_up.weight", FFN, C)
        vec(p + "ffn_up.bias", FFN)
        mat(p + "ffn_down.weight", C, FFN)
        vec(p + "ffn_down.bias", C)
    vec("output_norm.weight", C, 1.0)
    vec("output_norm.bias", C)
    return w


def layer_norm(x, g, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + EPS) * g + b


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def forward(w, ids):
    f = {k: v.astype(np.float64) for k, v in w.items()}
    t = len(ids)
    x = f["token_embd.weight"][ids] + f["position_embd.weight"][:t]
    d = C // N_HEAD
    mask = np.triu(np.full((t, t), -np.inf), 1)
    for i in range(N_LAYER):
        p = f"blk.{i}."
        h = layer_norm(x, f[p + "attn_norm.weight"], f[p + "attn_norm.bias"])
        qkv = h @ f[p + "attn_qkv.weight"].T + f[p + "attn_qkv.bias"]
        q, k, v = (qkv[:, j * C:(j + 1) * C].reshape(t, N_HEAD, d).transpose(1, 0, 2) for j in range(3))
        s = q @ k.transpose(0, 2, 1) / np.sqrt(d) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        a = (s / s.sum(-1, keepdims=True)) @ v
        a = a.transpose(1, 0, 2).reshape(t, C)
        x = x + a @ f[p + "attn_output.weight"].T + f[p + "attn_output.bias"]
        h = layer_norm(x, f[p + "ffn_norm.weight"], f[p + "ffn_norm.bias"])
        h = gelu_tanh(h @ f[p + "ffn_up.weight"].T + f[p + "ffn_up.bias"])
        x = x + h @ f[p + "ffn_down.weight"].T + f[p + "ffn_down.bias"]
    x = layer_norm(x, f["output_norm.weight"], f["output_norm.bias"])
    return x @ f["token_embd.weight"].T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/gpt2-tiny")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    w = weights()
    path = os.path.join(args.out, "gpt2-tiny.gguf")
    wr = GGUFWriter(path, "gpt2")
    wr.add_context_length(CTX)
    wr.add_embedding_length(C)
    wr.add_feed_forward_length(FFN)
    wr.add_block_count(N_LAYER)
    wr.add_head_count(N_HEAD)
    wr.add_layer_norm_eps(EPS)
    for name, t in w.items():
        wr.add_tensor(name, t)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()

    ids = [3, 17, 42, 5, 63, 0, 8, 8, 21, 34, 55, 1]
    logits = forward(w, ids)
    greedy, seq = [], list(ids[:4])
    for _ in range(CTX - 4):
        nxt = int(np.argmax(forward(w, seq)[-1]))
        greedy.append(nxt)
        seq.append(nxt)
    out = {
        "method": "numpy float64 forward of the GGUF's stored values (F16 matrices, F32 vectors); GPT-2 with tanh GELU, tied head",
        "command": "python3 scripts/reference/gpt2_tiny_reference.py --out tests/fixtures/gpt2-tiny",
        "ids": ids,
        "logits": [[round(float(v), 6) for v in row] for row in logits],
        "greedy_prompt": ids[:4],
        "greedy": greedy,
    }
    with open(os.path.join(args.out, "reference.json"), "w") as fh:
        json.dump(out, fh)
    print(path, os.path.getsize(path), "bytes; greedy", greedy)


if __name__ == "__main__":
    main()
