#!/usr/bin/env python3
"""llama.cpp baseline (via llama-cpp-python) for the SmolLM2-135M-Instruct Q4_1
GGUF, measured the way llama-bench does:

* pp512: prompt processing, one llama_decode of 512 tokens (n_batch =
  n_ubatch = 512) from an empty KV cache; tokens/s = 512 / time.
* tg128: text generation, 128 successive single-token llama_decode calls from
  an empty KV cache; tokens/s = 128 / time.

Tokens are random ids (fixed seed), as in llama-bench; no sampling is timed.
One warm-up run of each, then --reps repetitions; reports the median and the
best. Timing goes through llama-cpp-python's Llama.eval, which adds a small
Python overhead per call (copying the last row of logits into numpy), which
matters a little for tg.

Run it on an otherwise idle machine: ggml's worker threads synchronize with
spinning barriers, and when the cores are oversubscribed a descheduled thread
stalls every op. On the 2-core dev box with a load average of about 5 (parallel
cargo builds), 2 threads gave pp512 34 t/s and tg128 3 t/s (best 7); with
OMP_WAIT_POLICY=PASSIVE it gave 67 / 22 t/s, and with --threads 1 66 / 34 t/s.
The JSON records the 1-minute load average at the start and ggml's CPU features.

Usage:
    python3 benches/llamacpp_bench.py [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
        [--threads 2] [--reps 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description="llama.cpp pp512/tg128 via llama-cpp-python")
    ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n-prompt", type=int, default=512)
    ap.add_argument("--n-gen", type=int, default=128)
    ap.add_argument("--json", action="store_true", help="also print a JSON object")
    args = ap.parse_args()

    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=args.n_prompt + args.n_gen,
        n_batch=args.n_prompt,
        n_ubatch=args.n_prompt,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        logits_all=False,
        seed=0,
        verbose=False,
    )
    rng = np.random.default_rng(0)
    n_vocab = llm.n_vocab()
    prompt = [int(t) for t in rng.integers(0, n_vocab, args.n_prompt)]
    gen = [int(t) for t in rng.integers(0, n_vocab, args.n_gen)]

    def run_pp():
        llm.reset()  # eval() then drops the KV cache from position 0
        t = time.perf_counter()
        llm.eval(prompt)
        return time.perf_counter() - t

    def run_tg():
        llm.reset()  # eval() then drops the KV cache from position 0
        t = time.perf_counter()
        for tok in gen:
            llm.eval([tok])
        return time.perf_counter() - t

    load0 = os.getloadavg()[0]
    run_pp()  # warm-up
    run_tg()
    pp = [args.n_prompt / run_pp() for _ in range(args.reps)]
    tg = [args.n_gen / run_tg() for _ in range(args.reps)]

    res = dict(
        model=os.path.basename(args.model),
        backend="llama.cpp CPU via llama-cpp-python " + llama_cpp.__version__,
        threads=args.threads,
        reps=args.reps,
        cpu=platform.processor() or platform.machine(),
        ggml_cpu_features=llama_cpp.llama_print_system_info().decode().strip(),
        load_avg_1min_at_start=load0,
        tests={
            f"pp{args.n_prompt}": dict(median_tok_s=statistics.median(pp), best_tok_s=max(pp),
                                       all_tok_s=pp),
            f"tg{args.n_gen}": dict(median_tok_s=statistics.median(tg), best_tok_s=max(tg),
                                    all_tok_s=tg),
        },
    )
    print(f"| model | backend | threads | test | t/s (median of {args.reps}) | t/s (best) |")
    print("| --- | --- | ---: | --- | ---: | ---: |")
    for name, r in res["tests"].items():
        print(f"| {res['model']} | {res['backend']} | {args.threads} | {name} | "
              f"{r['median_tok_s']:.2f} | {r['best_tok_s']:.2f} |")
    if args.json:
        print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
