"""Lamina's f32 matmul (every ISA level this CPU runs) against numpy / OpenBLAS, interleaved.

    cargo build --release -p lamina-tensor --example sgemm
    python3 benches/gemm_vs_numpy.py [--sizes 1024,2048] [--rounds 5] [--threads 2]

Each round runs Lamina's `sgemm` example (one round at every level, `--json`) and then
numpy's matmul on the same sizes, so load changes hit both alike; the medians over rounds
and the ratios are printed at the end, with /proc/cpuinfo's model name and the load
average. Rates: wall-clock GFLOP/s (best call of each round), and GFLOP per CPU-second this
process got times the thread count (what the threads do with a core each: the fairer
figure on a machine shared with other work). OpenBLAS is given its own kernel choice:
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the environment.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser()
ap.add_argument("--sizes", default="1024,2048")
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--binary", default="target/release/examples/sgemm")
args = ap.parse_args()
for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(var, None)
os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)
import numpy as np  # noqa: E402  (after the thread setting)

sizes = [int(s) for s in args.sizes.split(",")]


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


def numpy_round(n):
    """(best wall GFLOP/s, best GFLOP per CPU-second x threads) over calls filling ~0.5 s."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    np.matmul(a, b)  # warm up (thread pool, page faults)
    flops = 2.0 * n**3
    best, best_cpu, start, calls = float("inf"), float("inf"), time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - start < 0.5:
        t, c = time.perf_counter(), time.process_time()
        np.matmul(a, b)
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, (time.process_time() - c) / args.threads)
        calls += 1
    return flops / best / 1e9, flops / best_cpu / 1e9


def lamina_round():
    env = dict(os.environ, LAMINA_THREADS=str(args.threads))
    cmd = [args.binary, "--sizes", args.sizes, "--rounds", "1", "--json"]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


if not os.path.exists(args.binary):
    sys.exit(f"{args.binary} not found: cargo build --release -p lamina-tensor --example sgemm")
print(f"cpu: {cpu_model()}; threads {args.threads}; load average {os.getloadavg()}")
print("numpy", np.__version__, "OpenBLAS config:", np.show_config(mode="dicts")["Build Dependencies"]["blas"].get("version"))
wall, cpu = {}, {}
for r in range(args.rounds):
    for rec in lamina_round():
        key = (rec["isa"], rec["n"])
        wall.setdefault(key, []).append(rec["median_gflops"])
        cpu.setdefault(key, []).append(rec["cpu_time_median_gflops"])
    for n in sizes:
        w, c = numpy_round(n)
        wall.setdefault(("numpy", n), []).append(w)
        cpu.setdefault(("numpy", n), []).append(c)
    print(f"round {r + 1}/{args.rounds} done, load average {os.getloadavg()[0]:.2f}", flush=True)

print(f"\nmedian over {args.rounds} rounds (GFLOP/s; ratio = Lamina / numpy), load average {os.getloadavg()}")
print(f"{'n':>5} {'impl':>9} {'wall':>8} {'ratio':>6} {'cpu-time':>9} {'ratio':>6}")
for n in sizes:
    nw, nc = statistics.median(wall[("numpy", n)]), statistics.median(cpu[("numpy", n)])
    for key in sorted(k for k in wall if k[1] == n):
        w, c = statistics.median(wall[key]), statistics.median(cpu[key])
        print(f"{n:>5} {key[0]:>9} {w:8.1f} {w / nw:6.2f} {c:9.1f} {c / nc:6.2f}")
