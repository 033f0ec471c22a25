"""Lamina against llama.cpp's own `llama-bench` on one GGUF: pp512 and tg128, interleaved.

    cargo build --release -p lamina-cli
    python3 benches/llm_vs_llamacpp.py [--llama-bench PATH] [--rounds 3] [--threads 2] [--isa avx2,avx512]

Each round runs `llama-bench -p 512 -n 128 -r 3 -o json` and then `lamina bench-model -r 3
--json` (once per `--isa` level, through LAMINA_ISA), so load changes hit both alike. Prints
the medians over rounds, Lamina / llama.cpp ratios, and decode's memory bandwidth: the
weight bytes a token reads (every tensor but the token embedding, read one row a token,
unless it is also the output head, as in SmolLM2) times tokens/s, against the STREAM
bandwidth `lamina bench` measures in the same run. Records /proc/cpuinfo's model name and
the load average. Compare figures from a quiet machine only: ggml's threads spin at
barriers and lose badly when the cores are shared.

llama-bench: a native build of the llama.cpp that the `llama-cpp-python` sdist vendors
(see /work/shared/CPU-NOTES.md); default path /work/ref/build-native/bin/llama-bench.
"""
import argparse
import json
import os
import statistics
import subprocess

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
ap.add_argument("--llama-bench", default="/work/ref/build-native/bin/llama-bench")
ap.add_argument("--lamina", default="target/release/lamina")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--isa", default="", help="comma-separated LAMINA_ISA levels (default: the detected one)")
args = ap.parse_args()
levels = [s for s in args.isa.split(",") if s] or [""]


def cpu_model():
    return next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")


def weight_bytes_per_token(path):
    """Bytes of weights one decoded token reads."""
    from gguf import GGUFReader

    tensors = {t.name: int(t.n_bytes) for t in GGUFReader(path).tensors}
    tied = "output.weight" not in tensors
    return sum(n for name, n in tensors.items() if name != "token_embd.weight" or tied)


def llama_round():
    cmd = [args.llama_bench, "-m", args.model, "-t", str(args.threads), "-p", "512", "-n", "128", "-r", "3", "-o", "json"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {("pp512" if r["n_prompt"] else "tg128"): r["avg_ts"] for r in out}


def lamina_round(isa):
    env = dict(os.environ)
    if isa:
        env["LAMINA_ISA"] = isa
    cmd = [args.lamina, "--threads", str(args.threads), "bench-model", "--model", args.model, "-r", "3", "--json"]
    out = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
    return {r["test"]: r["tokens_per_s"] for r in out}


def stream_gbs():
    cmd = [args.lamina, "--threads", str(args.threads), "bench", "--ops", "add", "--sizes", "64", "--json"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    peak = out["peak"] if "peak" in out else out
    return peak["mem_gbs"]


print(f"cpu: {cpu_model()}; threads {args.threads}; load average {os.getloadavg()}")
results = {}
bandwidth = []
for r in range(args.rounds):
    for test, ts in llama_round().items():
        results.setdefault(("llama.cpp", test), []).append(ts)
    for isa in levels:
        for test, ts in lamina_round(isa).items():
            results.setdefault((f"lamina {isa}".strip(), test), []).append(ts)
    bandwidth.append(stream_gbs())
    print(f"round {r + 1}/{args.rounds}, load average {os.getloadavg()[0]:.2f}", flush=True)

per_token = weight_bytes_per_token(args.model)
stream = statistics.median(bandwidth)
print(f"\nmedians over {args.rounds} rounds; load average {os.getloadavg()}; STREAM {stream:.1f} GB/s")
print(f"weights read per decoded token: {per_token / 1e6:.1f} MB")
for test in ("pp512", "tg128"):
    base = statistics.median(results[("llama.cpp", test)])
    for who in sorted({k[0] for k in results}):
        ts = statistics.median(results[(who, test)])
        line = f"{test} {who:>16}: {ts:8.1f} tokens/s  ratio {ts / base:5.2f}"
        if test == "tg128":
            gbs = ts * per_token / 1e9
            line += f"  decode reads {gbs:5.1f} GB/s = {100 * gbs / stream:3.0f}% of STREAM"
        print(line)
