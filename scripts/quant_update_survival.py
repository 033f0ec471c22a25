"""How much of a fine-tune's weight update a quantization keeps (dev-only analysis).

    python3 scripts/quant_update_survival.py START.gguf TRAINED.gguf QUANTIZED.gguf

START is the model before training, TRAINED after (F16/F32), QUANTIZED the trained model
quantized. For every matrix: the update d = trained - start relative to the start's norm,
its RMS against the quantized format's step ((max - min) / 15 per 32 weights, Q4_1's),
the share of weights moved by more than half a step, the rounding error |Q - trained|
against |d|, and the share of d that survives, (Q - start) . d / |d|^2 (1: all of it;
0: the quantized model is the start plus noise). Reads GGUF with gguf-py (numpy).
"""
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def matrices(path):
    out = {}
    for t in GGUFReader(path).tensors:
        if len(t.shape) >= 2 and t.shape[1] > 1:
            out[t.name] = dequantize(np.asarray(t.data), t.tensor_type).astype(np.float64).reshape(-1)
    return out


def main(start_path, trained_path, quant_path):
    start, trained, quant = matrices(start_path), matrices(trained_path), matrices(quant_path)
    print(f"{'tensor':28} {'|d|/|w|':>8} {'rms d/step':>10} {'>step/2':>8} {'|Q-w1|/|d|':>10} {'kept':>6}")
    totals = {"all": np.zeros(4), "blocks (blk.*)": np.zeros(4)}
    for name in sorted(start):
        w0, w1, q = start[name], trained[name], quant[name]
        d = w1 - w0
        blocks = w1.reshape(-1, 32)
        step = (blocks.max(1) - blocks.min(1)) / 15.0
        moved_half = (np.abs(d.reshape(-1, 32)) > step[:, None] / 2).mean()
        kept = np.dot(q - w0, d) / max(np.dot(d, d), 1e-30)
        print(f"{name:28} {np.linalg.norm(d) / np.linalg.norm(w0):8.4f} "
              f"{np.sqrt((d ** 2).mean()) / step.mean():10.3f} {moved_half:8.4f} "
              f"{np.linalg.norm(q - w1) / np.linalg.norm(d):10.3f} {kept:6.3f}")
        sums = [d @ d, w0 @ w0, (q - w1) @ (q - w1), (q - w0) @ d]
        totals["all"] += sums
        if name.startswith("blk."):
            totals["blocks (blk.*)"] += sums
    for what, t in totals.items():
        print(f"{what}: |d|/|w| {np.sqrt(t[1] and t[0] / t[1]):.4f}; |Q-w1|/|d| {np.sqrt(t[2] / t[0]):.3f}; "
              f"kept {t[3] / t[0]:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
