#!/usr/bin/env python3
"""Data-parallel fine-tuning speed: `lamina finetune` as one process and as N MPI ranks
(`mpirun -np N`), the same global batch, measured in one run (issue 21; the figures go to
docs/SCALING.md).

    cargo build --release -p lamina-cli --features mpi
    python3 benches/finetune_ranks.py                     # 2 interleaved rounds, LoRA, batch 4 x 128
    python3 benches/finetune_ranks.py --method full --batch 2 --rounds 3

Configurations, alternated round by round so a change of machine load hits each:
* `1x1`: one process, 1 thread (the per-core baseline);
* `1xT`: one process, `--threads T` (T = the cores; default 2);
* `Nx1`: `mpirun -np N` processes, 1 thread each (lamina's default under mpirun on one
  machine: the cores divided by the local ranks).
Each runs SmolLM2-135M-Instruct (f32 weights) on a generated JSONL of `{"text"}` lines
longer than `--seq` tokens, so every sequence is exactly `--seq` tokens; tokens/s per step
comes from rank 0's metrics.jsonl (the global batch over rank 0's step time, which
includes the wait for the other ranks and the all-reduce); the first `--warmup` steps are
dropped. The summary gives each configuration's median over rounds, the ratios, the CPU
model and the load average before and after (this machine is shared: record it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from lora_vs_peft import text_data  # noqa: E402  (the same generated text as the PEFT comparison)

MPI_ENV = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


def cpu_model() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def finetune_cmd(args, data: str, out: str) -> list[str]:
    steps = args.warmup + args.steps
    cmd = [
        "finetune", "--data", data, "--val-fraction", "0", "--out", out, "--method", args.method,
        "--rank", "8", "--lora-dropout", "0", "--targets", "all", "--batch", str(args.batch),
        "--max-len", str(args.seq), "--steps", str(steps), "--lr", "2e-4", "--warmup", "0",
        "--schedule", "constant", "--save-every", "0", "--keep", "1",
    ]
    return cmd + (["--model", args.model] if args.model else [])


def run(args, config: str, data: str, out: str) -> dict:
    ranks, threads = (int(x) for x in config.split("x"))
    cmd = [args.lamina] + (["--threads", str(threads)] if ranks == 1 else []) + finetune_cmd(args, data, out)
    if ranks > 1:
        cmd = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "none"] + cmd
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **MPI_ENV})
    if done.returncode != 0:
        sys.exit(f"{config}: lamina finetune failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    timed = [m for m in lines if "tokens_per_s" in m][args.warmup :]
    tokens = args.batch * args.seq
    seconds = sum(tokens / m["tokens_per_s"] for m in timed)
    return {"tokens_per_s": tokens * len(timed) / seconds, "step_s": [round(tokens / m["tokens_per_s"], 2) for m in timed]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--lamina", default=os.path.join(target, "release", "lamina"), help="built with --features mpi")
    ap.add_argument("--model", help="GGUF (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--method", default="lora", choices=["lora", "qlora", "full"])
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="threads of the one-process run")
    ap.add_argument("--batch", type=int, default=4, help="global micro-batch (split between the ranks)")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not os.path.exists(args.lamina):
        sys.exit(f"{args.lamina} not found: cargo build --release -p lamina-cli --features mpi (or pass --lamina)")

    configs = ["1x1", f"1x{args.threads}", f"{args.ranks}x1"]
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {c: [] for c in configs}
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "text.jsonl")
        text_data(data, max(8, 2 * args.batch * (args.warmup + args.steps)), max(400, 2 * args.seq), seed=0)
        for r in range(args.rounds):
            for c in configs:
                res = run(args, c, data, os.path.join(tmp, f"{c}-{r}"))
                results[c].append(res)
                print(f"round {r + 1}/{args.rounds} {c}: {res['tokens_per_s']:.1f} tok/s, steps {res['step_s']} s "
                      f"(load {os.getloadavg()[0]:.2f})", file=sys.stderr)
    load_after = os.getloadavg()
    median = {c: statistics.median(x["tokens_per_s"] for x in results[c]) for c in configs}
    print(f"{args.method}, SmolLM2-135M f32, global batch {args.batch} x seq {args.seq}, {args.steps} timed steps "
          f"after {args.warmup}, {args.rounds} interleaved rounds; {cpu_model()}; "
          f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("| processes x threads | tokens/s (median) | vs 1x1 |\n|---|---:|---:|")
    for c in configs:
        print(f"| {c} | {median[c]:.1f} | {median[c] / median['1x1']:.2f} |")
    print(json.dumps({"bench": "finetune_ranks", "method": args.method, "batch": args.batch, "seq": args.seq,
                      "median_tokens_per_s": median, "rounds": results,
                      "loadavg": [round(load_before[0], 2), round(load_after[0], 2)], "cpu": cpu_model()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
