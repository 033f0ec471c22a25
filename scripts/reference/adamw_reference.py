#!/usr/bin/env python3
"""PyTorch's `torch.optim.AdamW` on a small problem, for train/tests/adamw_torch.rs.

Exact command that produced tests/fixtures/adamw/torch.json (repository root):

    python3 scripts/reference/adamw_reference.py --out tests/fixtures/adamw/torch.json

Requirements: torch (2.15.0 made the fixture; the CPU is enough), numpy.

The problem: three float32 parameters named as Lamina's optimizer groups them, `h.0.mlp.weight`
(a matrix: weight decay), `h.0.mlp.bias` (1-D: none) and `wte.weight` (an embedding table:
none), given as two torch param groups (weight decay on the first only, as nanoGPT does).
Every step gives each parameter a fixed gradient (numpy, seed 14) and a learning rate from
a warm-up/decay list; on some steps the gradients are multiplied by a clipping factor first
(`grad_scale`), on one step the bias has no gradient at all (torch skips it: no moment
update, no decay, and its step count does not advance), and a few entries are tiny (1e-7)
or zero, so that the place of eps (after the bias-corrected square root, as in torch) shows.
Two settings: nanoGPT's (betas 0.9/0.95, eps 1e-8, weight decay 0.1) and torch's defaults
(0.9/0.999, 1e-8, 0.01) with a larger eps (1e-6).

Recorded: the initial values, each step's lr, grad_scale and gradients, the parameters after
every step, and the final `exp_avg` / `exp_avg_sq` (torch's state names, which Lamina's
checkpoint uses too). All numbers are float32 values written as decimal floats that round
back to the same float32.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch

SHAPES = {"h.0.mlp.weight": (3, 4), "h.0.mlp.bias": (4,), "wte.weight": (5, 3)}
DECAYED = ["h.0.mlp.weight"]
LRS = [2e-3, 4e-3, 6e-3, 6e-3, 5e-3, 3e-3, 1e-3]
GRAD_SCALE = [1.0, 1.0, 0.5, 1.0, 0.25, 1.0, 1.0]
# (step, parameter) pairs with no gradient that step.
NO_GRAD = {(3, "h.0.mlp.bias")}
SETTINGS = {
    "nanogpt": {"betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1},
    "torch_default_eps_1e-6": {"betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01},
}


def f32_list(a) -> list:
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


def problem(rng: np.random.Generator) -> tuple[dict, list]:
    init = {n: rng.normal(0.0, 1.0, s).astype(np.float32) for n, s in SHAPES.items()}
    grads = []
    for step in range(len(LRS)):
        g = {}
        for n, s in SHAPES.items():
            if (step, n) in NO_GRAD:
                continue
            v = rng.normal(0.0, 1.0, s).astype(np.float32)
            flat = v.reshape(-1)
            flat[0] *= np.float32(1e-7)  # eps matters here
            flat[-1] = 0.0 if step % 2 else flat[-1]
            g[n] = v
        grads.append(g)
    return init, grads


def run(setting: dict, init: dict, grads: list) -> dict:
    params = {n: torch.tensor(v.copy()) for n, v in init.items()}
    for p in params.values():
        p.requires_grad_(True)
    groups = [
        {"params": [params[n] for n in SHAPES if n in DECAYED], "weight_decay": setting["weight_decay"]},
        {"params": [params[n] for n in SHAPES if n not in DECAYED], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=LRS[0], betas=setting["betas"], eps=setting["eps"],
                            foreach=False, fused=False)
    after = []
    for step, (lr, scale) in enumerate(zip(LRS, GRAD_SCALE)):
        for group in opt.param_groups:
            group["lr"] = lr
        for n, p in params.items():
            p.grad = None if n not in grads[step] else torch.tensor(grads[step][n]) * np.float32(scale)
        opt.step()
        after.append({n: f32_list(p.detach()) for n, p in params.items()})
    state = {}
    for n, p in params.items():
        st = opt.state[p]
        state[f"{n}.exp_avg"] = f32_list(st["exp_avg"])
        state[f"{n}.exp_avg_sq"] = f32_list(st["exp_avg_sq"])
        state[f"{n}.step"] = float(st["step"])
    return {
        "beta1": setting["betas"][0],
        "beta2": setting["betas"][1],
        "eps": setting["eps"],
        "weight_decay": setting["weight_decay"],
        "after_step": after,
        "final_state": state,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    init, grads = problem(np.random.default_rng(14))
    out = {
        "made_by": "scripts/reference/adamw_reference.py (torch.optim.AdamW, float32, foreach=False, torch "
        + torch.__version__ + ")",
        "shapes": {n: list(s) for n, s in SHAPES.items()},
        "decayed": DECAYED,
        "init": {n: f32_list(v) for n, v in init.items()},
        "steps": [
            {"lr": lr, "grad_scale": s, "grads": {n: f32_list(v) for n, v in g.items()}}
            for lr, s, g in zip(LRS, GRAD_SCALE, grads)
        ],
        "settings": {name: run(s, init, grads) for name, s in SETTINGS.items()},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
