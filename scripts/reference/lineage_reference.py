#!/usr/bin/env python3
"""Reference losses, logits and gradients for train-demo's neural lineage
(train/src/lineage/lstm.rs, train/src/lineage/encoder.rs and model/src/gpt.rs) from
PyTorch, an independent implementation: the LSTM is torch.nn.LSTM, the encoder and the
GPT are written from torch.nn.functional (layer_norm, scaled_dot_product_attention,
gelu(approximate="tanh"), cross_entropy(ignore_index=-1)). Writes
tests/fixtures/lineage/torch.json; the Rust test is train/tests/lineage_torch.rs.

Weights are random (float32 values, so Lamina loads them exactly); the reference computes
in float64. Parameter names and layouts are Lamina's:

- LSTM: gates laid out i, f, o, g (PyTorch: i, f, g, o; the script swaps the last two
  blocks both ways), one gate bias (w_ih.bias; PyTorch's bias_hh is zero), w_hh without
  bias, the head a Linear.
- encoder: wte has V + 1 rows (the last is [MASK], input only); logits use rows 0..V
  (the tied head); attention is bidirectional; the loss is scored where targets >= 0.
- gpt: the same block stack, causal, wte with V rows.

    python3 scripts/reference/lineage_reference.py   # needs torch and numpy
"""
import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "lineage" / "torch.json"
rng = np.random.default_rng(20261207)


def rand(*shape, std=0.5, mean=0.0):
    """float32 values, as float64 tensors that require grad."""
    x = (mean + rng.standard_normal(shape) * std).astype(np.float32)
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def flat(t):
    """9 significant digits: float32 values round-trip exactly, float64 ones to 1e-9."""
    return [float(f"{x:.9g}") for x in t.detach().reshape(-1).tolist()]


def swap_go(w, hid):
    """i, f, o, g <-> i, f, g, o along the first dim (its own inverse)."""
    return torch.cat([w[: 2 * hid], w[3 * hid :], w[2 * hid : 3 * hid]])


def lstm_case():
    v, e, hid, b, t = 7, 5, 6, 2, 5
    p = {
        "emb.weight": rand(v, e, std=1.0),
        "w_ih.weight": rand(4 * hid, e),
        "w_ih.bias": rand(4 * hid, std=0.3),
        "w_hh.weight": rand(4 * hid, hid),
        "head.weight": rand(v, hid),
        "head.bias": rand(v, std=0.3),
    }
    ids = rng.integers(0, v, (b, t))
    targets = rng.integers(0, v, (b, t))
    targets[1, -1] = -1  # not scored
    h0, c0 = rand(b, hid, std=0.5), rand(b, hid, std=0.5)
    lstm = torch.nn.LSTM(e, hid, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(swap_go(p["w_ih.weight"], hid))
        lstm.weight_hh_l0.copy_(swap_go(p["w_hh.weight"], hid))
        lstm.bias_ih_l0.copy_(swap_go(p["w_ih.bias"], hid))
        lstm.bias_hh_l0.zero_()
    x = p["emb.weight"][torch.tensor(ids)]  # (B, T, E)
    out, _ = lstm(x, (h0[None].detach(), c0[None].detach()))  # (B, T, H)
    logits = out @ p["head.weight"].T + p["head.bias"]  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, v), torch.tensor(targets).reshape(-1), ignore_index=-1)
    loss.backward()
    grads = {k: t.grad for k, t in p.items() if k not in ("w_ih.weight", "w_hh.weight", "w_ih.bias")}
    grads["w_ih.weight"] = swap_go(lstm.weight_ih_l0.grad, hid)
    grads["w_hh.weight"] = swap_go(lstm.weight_hh_l0.grad, hid)
    # The gate bias is PyTorch's bias_ih + bias_hh: both get the same gradient.
    grads["w_ih.bias"] = swap_go(lstm.bias_ih_l0.grad, hid)
    return {
        "config": {"vocab": v, "embd": e, "hidden": hid},
        "ids": ids.reshape(-1).tolist(),
        "targets": targets.reshape(-1).tolist(),
        "shape": [b, t],
        "h0": flat(h0),
        "c0": flat(c0),
        "params": {k: flat(t) for k, t in p.items()},
        "loss": loss.item(),
        "logits": flat(logits),
        "grads": {k: flat(g) for k, g in grads.items()},
    }


def block_params(prefix, c):
    return {
        f"{prefix}.ln_1.weight": rand(c, std=0.2, mean=1.0),
        f"{prefix}.ln_1.bias": rand(c, std=0.1),
        f"{prefix}.attn.c_attn.weight": rand(3 * c, c, std=0.3),
        f"{prefix}.attn.c_attn.bias": rand(3 * c, std=0.1),
        f"{prefix}.attn.c_proj.weight": rand(c, c, std=0.3),
        f"{prefix}.attn.c_proj.bias": rand(c, std=0.1),
        f"{prefix}.ln_2.weight": rand(c, std=0.2, mean=1.0),
        f"{prefix}.ln_2.bias": rand(c, std=0.1),
        f"{prefix}.mlp.c_fc.weight": rand(4 * c, c, std=0.3),
        f"{prefix}.mlp.c_fc.bias": rand(4 * c, std=0.1),
        f"{prefix}.mlp.c_proj.weight": rand(c, 4 * c, std=0.2),
        f"{prefix}.mlp.c_proj.bias": rand(c, std=0.1),
    }


def transformer(p, ids, n_layer, n_head, vocab, causal):
    """Pre-norm blocks (GPT-2's), logits over the first `vocab` rows of wte."""
    b, t = ids.shape
    c = p["wte.weight"].shape[1]
    d = c // n_head
    x = p["wte.weight"][torch.tensor(ids)] + p["wpe.weight"][:t]  # (B, T, C)
    for i in range(n_layer):
        q = lambda n: p[f"h.{i}.{n}"]  # noqa: E731
        h = F.layer_norm(x, (c,), q("ln_1.weight"), q("ln_1.bias"), eps=1e-5)
        qkv = h @ q("attn.c_attn.weight").T + q("attn.c_attn.bias")  # (B, T, 3C)
        heads = [qkv[..., j * c : (j + 1) * c].reshape(b, t, n_head, d).transpose(1, 2) for j in range(3)]
        y = F.scaled_dot_product_attention(*heads, is_causal=causal)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(b, t, c)
        x = x + y @ q("attn.c_proj.weight").T + q("attn.c_proj.bias")
        h = F.layer_norm(x, (c,), q("ln_2.weight"), q("ln_2.bias"), eps=1e-5)
        h = F.gelu(h @ q("mlp.c_fc.weight").T + q("mlp.c_fc.bias"), approximate="tanh")
        x = x + h @ q("mlp.c_proj.weight").T + q("mlp.c_proj.bias")
    x = F.layer_norm(x, (c,), p["ln_f.weight"], p["ln_f.bias"], eps=1e-5)
    return x @ p["wte.weight"][:vocab].T  # (B, T, V)


def transformer_case(causal):
    v, ctx, n_layer, n_head, c, b, t = 7, 6, 2, 2, 8, 2, 5
    rows = v if causal else v + 1  # the encoder's extra row is [MASK]
    p = {"wte.weight": rand(rows, c), "wpe.weight": rand(ctx, c, std=0.3)}
    for i in range(n_layer):
        p.update(block_params(f"h.{i}", c))
    p["ln_f.weight"] = rand(c, std=0.2, mean=1.0)
    p["ln_f.bias"] = rand(c, std=0.1)
    if causal:
        ids = rng.integers(0, v, (b, t))
        targets = rng.integers(0, v, (b, t))
        targets[0, 2] = -1
    else:
        ids = rng.integers(0, v, (b, t))
        targets = np.full((b, t), -1)
        for r, pos in ((0, 1), (0, 4), (1, 0), (1, 2)):
            targets[r, pos] = ids[r, pos]
            ids[r, pos] = v  # [MASK]
        targets[1, 3] = ids[1, 3]  # chosen but left as it is (BERT's 10%)
    logits = transformer(p, ids, n_layer, n_head, v, causal)
    loss = F.cross_entropy(logits.reshape(-1, v), torch.tensor(targets).reshape(-1), ignore_index=-1)
    loss.backward()
    return {
        "config": {"vocab": v, "ctx": ctx, "n_layer": n_layer, "n_head": n_head, "n_embd": c},
        "ids": ids.reshape(-1).tolist(),
        "targets": targets.reshape(-1).tolist(),
        "shape": [b, t],
        "params": {k: flat(x) for k, x in p.items()},
        "loss": loss.item(),
        "logits": flat(logits),
        "grads": {k: flat(x.grad) for k, x in p.items()},
    }


def main():
    doc = {
        "made_by": f"scripts/reference/lineage_reference.py (torch {torch.__version__}, float64)",
        "lstm": lstm_case(),
        "encoder": transformer_case(causal=False),
        "gpt": transformer_case(causal=True),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
