#!/usr/bin/env python3
"""LoRA training speed, Lamina against PyTorch + PEFT, measured in one run (issue 6's
speed target; the figures go to docs/PERF.md, "Fine-tuning speed").

    cargo build --release -p lamina-cli
    python3 benches/lora_vs_peft.py                    # 3 interleaved rounds, batch 1 x 256, 2 threads
    python3 benches/lora_vs_peft.py --batch 4 --rounds 5 --peft-model /tmp/smollm2-f32

Both sides train the same thing: SmolLM2-135M-Instruct with its weights in f32
(Lamina dequantizes the Q4_1 GGUF at load, `--method lora`; transformers dequantizes the
same GGUF), a LoRA of rank 8, alpha 16, dropout 0.05 on q, k, v, o, gate, up and down of
every layer, sequences of exactly `--seq` tokens with every position scored, AdamW at
lr 2e-4 without weight decay, gradient clipping to norm 1, `--threads` threads.

* Lamina: `lamina finetune --data D --max-len SEQ` on a generated JSONL of `{"text"}`
  lines that are each longer than SEQ tokens, so every sequence is truncated to SEQ.
  tokens/s per step comes from the run's metrics.jsonl (a step's time covers batching,
  forward, backward, clipping and the optimizer); the first `--warmup` steps are
  dropped. The run's peak RSS is the child's maximum resident set.
* PyTorch: benches/peft_lora_bench.py --json (random token ids; the content does not
  change the cost), with the same warm-up and step counts.

The two alternate, `--rounds` times, so that a change of machine load hits both; the
summary gives each side's median tokens/s over rounds and the ratio of the medians.
Start on an idle machine (`uptime`): the load average is recorded in the JSON output.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORDS = (
    "the of and to in is was for on that with as by at from his her an are were which this "
    "be or had it not but have they one all their new been has would who more she there "
    "time year first after also two when into other only over many most some such these "
    "river mountain city people school music history country world family village station"
).split()


def text_data(path: str, lines: int, words: int, seed: int) -> None:
    """Lines of random English words, each far longer than the sequence length."""
    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(lines):
            f.write(json.dumps({"text": " ".join(rng.choice(WORDS) for _ in range(words))}) + "\n")


def lamina_round(args, data: str, out: str) -> dict:
    steps = args.warmup + args.steps
    cmd = [
        args.lamina, "finetune", "--data", data, "--val-fraction", "0", "--out", out,
        "--method", "lora", "--rank", "8", "--alpha", "16", "--lora-dropout", "0.05", "--targets", "all",
        "--batch", str(args.batch), "--max-len", str(args.seq), "--steps", str(steps),
        "--lr", "2e-4", "--warmup", "0", "--schedule", "constant", "--weight-decay", "0", "--clip", "1",
        "--threads", str(args.threads), "--save-every", "0", "--keep", "1",
    ]
    if args.model:
        cmd += ["--model", args.model]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if run.returncode != 0:
        sys.exit(f"lamina finetune failed ({run.returncode}):\n{run.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    train = [m for m in lines if "tokens_per_s" in m]
    timed = train[args.warmup :]
    tokens = args.batch * args.seq
    seconds = sum(tokens / m["tokens_per_s"] for m in timed)
    return {
        "tokens_per_s": tokens * len(timed) / seconds,
        "step_s": [round(tokens / m["tokens_per_s"], 3) for m in timed],
        "loss_first_last": [round(train[0]["loss"], 4), round(train[-1]["loss"], 4)],
        # ru_maxrss of children is the largest of any child so far: only a new maximum is this run's.
        "peak_rss_mib": round(peak / 1024, 1) if peak > before else None,
        "wall_s": round(wall, 1),
    }


def peft_round(args) -> dict:
    cmd = [
        sys.executable, os.path.join(HERE, "peft_lora_bench.py"), "--json",
        "--threads", str(args.threads), "--batch", str(args.batch), "--seq", str(args.seq),
        "--warmup", str(args.warmup), "--steps", str(args.steps),
    ]
    if args.peft_model:
        cmd += ["--model", args.peft_model]
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        sys.exit(f"peft_lora_bench.py failed ({run.returncode}):\n{run.stderr[-3000:]}")
    r = json.loads(run.stdout.strip().splitlines()[-1])
    keep = ("tokens_per_s", "step_s", "loss_first_last", "train_peak_rss_mib", "peak_rss_mib", "torch", "peft")
    return {k: r[k] for k in keep}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lamina", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "lamina"))
    ap.add_argument("--model", help="GGUF for lamina (default: its embedded default, SmolLM2-135M-Instruct)")
    ap.add_argument("--peft-model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"),
                    help="what transformers loads: the GGUF, or a saved f32 copy of it (faster)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="also print one JSON object with every round")
    args = ap.parse_args()
    if not os.path.exists(args.lamina):
        sys.exit(f"{args.lamina} not found: run `cargo build --release -p lamina-cli` (or pass --lamina)")

    load = os.getloadavg()
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "text.jsonl")
        # ~3 tokens per word at worst, so 400 words is > 256 tokens; enough lines for every step.
        text_data(data, max(8, 2 * args.batch * (args.warmup + args.steps)), max(400, 2 * args.seq), seed=0)
        for r in range(args.rounds):
            lam = lamina_round(args, data, os.path.join(tmp, f"run{r}"))
            pt = peft_round(args)
            rounds.append({"lamina": lam, "pytorch_peft": pt, "loadavg": [round(x, 2) for x in os.getloadavg()]})
            print(
                f"round {r + 1}/{args.rounds}: lamina {lam['tokens_per_s']:.1f} tok/s, "
                f"PyTorch+PEFT {pt['tokens_per_s']:.1f} tok/s (load {os.getloadavg()[0]:.2f})",
                file=sys.stderr,
            )

    lam = statistics.median(r["lamina"]["tokens_per_s"] for r in rounds)
    pt = statistics.median(r["pytorch_peft"]["tokens_per_s"] for r in rounds)
    lam_rss = max((r["lamina"]["peak_rss_mib"] or 0) for r in rounds)
    pt_rss = max(r["pytorch_peft"]["peak_rss_mib"] for r in rounds)
    print(f"LoRA r8 on all 7 projections, SmolLM2-135M f32, batch {args.batch} x seq {args.seq}, "
          f"{args.threads} threads, {args.steps} timed steps after {args.warmup}, {args.rounds} interleaved rounds")
    print(f"  lamina finetune     {lam:7.1f} tokens/s (median)  peak RSS {lam_rss:.0f} MiB")
    print(f"  PyTorch + PEFT      {pt:7.1f} tokens/s (median)  peak RSS {pt_rss:.0f} MiB "
          f"(torch {rounds[0]['pytorch_peft']['torch']}, peft {rounds[0]['pytorch_peft']['peft']})")
    print(f"  ratio lamina / PyTorch: {lam / pt:.2f}   (load average at start {load[0]:.2f})")
    if args.json:
        print(json.dumps({"bench": "lora_vs_peft", "batch": args.batch, "seq": args.seq, "threads": args.threads,
                          "lamina_tokens_per_s": lam, "pytorch_tokens_per_s": pt, "ratio": lam / pt,
                          "loadavg_at_start": [round(x, 2) for x in load], "rounds": rounds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
