#!/usr/bin/env python3
"""Load benchmark: `lamina serve` against llama.cpp's `llama-server` on the same GGUF.

N concurrent clients (default 1, 4, 8, 16) each send chat requests from a fixed prompt set,
streaming, with max_tokens 128 and ignore_eos (every request generates exactly 128 tokens on
both servers, so the work is the same). Reported per server and client count: aggregate
generated tokens/s (all clients' tokens over the phase's wall time), time to first token
p50/p95 and inter-token latency p50/p95 (between streamed chunks of one request).

The two servers run one after the other within each round, their order alternating, so
machine load hits both alike; medians over the rounds are printed as a Markdown table,
with the CPU model and the load average. Both get the same threads and --parallel.

    python3 benches/serve_load.py                       # defaults below
    python3 benches/serve_load.py --rounds 3 --clients 1,4,8,16 --json out.json
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROMPTS = [
    "Give me three tips for staying healthy.",
    "Explain what a hash table is to a new programmer.",
    "Write a short poem about the sea.",
    "What are the main causes of the French Revolution?",
    "Describe how a bicycle works.",
    "Suggest a name for a bakery and explain why.",
    "How do vaccines train the immune system?",
    "Summarise the plot of Romeo and Juliet in a few sentences.",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError("server did not become healthy")


def start(kind, args, port):
    if kind == "lamina":
        cmd = [args.lamina, "--threads", str(args.threads), "serve", "-m", args.model, "--port", str(port),
               "--parallel", str(args.parallel), "--ctx", str(args.ctx)]
    else:
        cmd = [args.llama_server, "-m", args.model, "--port", str(port), "--host", "127.0.0.1",
               "-t", str(args.threads), "-tb", str(args.threads), "-np", str(args.parallel),
               "-c", str(args.ctx * args.parallel)] + args.llama_server_args.split()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(port, proc)
    except Exception:
        proc.kill()
        raise
    return proc


def one_request(port, prompt, max_tokens):
    """Stream one chat completion; returns (ttft, [inter-token gaps], completion tokens)."""
    body = json.dumps({
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True, "stream": True,
        "stream_options": {"include_usage": True},
    })
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]}")
    stamps, tokens = [], None
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
        for ch in chunk.get("choices", []):
            if ch.get("delta", {}).get("content"):
                stamps.append(time.perf_counter())
    c.close()
    if not stamps or tokens is None:
        raise RuntimeError("no content or no usage in the stream")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return stamps[0] - t0, gaps, tokens


def phase(port, clients, per_client, max_tokens):
    results, errors = [], []
    lock = threading.Lock()

    def client(k):
        for j in range(per_client):
            prompt = PROMPTS[(k * per_client + j) % len(PROMPTS)]
            try:
                r = one_request(port, prompt, max_tokens)
                with lock:
                    results.append(r)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(str(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    ttft = [r[0] for r in results]
    itl = [g for r in results for g in r[1]]
    return {
        "tok_s": sum(r[2] for r in results) / wall,
        "ttft_p50": pct(ttft, 50), "ttft_p95": pct(ttft, 95),
        "itl_p50": pct(itl, 50), "itl_p95": pct(itl, 95),
        "requests": len(results),
    }


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--lamina", default=os.path.join(ROOT, "target", "release", "lamina"))
    ap.add_argument("--llama-server", default="/work/ref/build-native/bin/llama-server")
    ap.add_argument("--llama-server-args", default="",
                    help="more options for llama-server, e.g. '--poll 0' (no spin-waiting: far faster on a "
                         "machine whose cores are busy with other work)")
    ap.add_argument("--servers", default="lamina,llama-server")
    ap.add_argument("--clients", default="1,4,8,16")
    ap.add_argument("--per-client", type=int, default=2, help="requests each client sends per phase")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=512, help="context per slot")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", help="write every measurement here")
    args = ap.parse_args()
    servers = args.servers.split(",")
    clients = [int(c) for c in args.clients.split(",")]
    runs = []  # (server, clients, round, metrics)
    for rnd in range(args.rounds):
        order = servers if rnd % 2 == 0 else servers[::-1]
        for kind in order:
            port = free_port()
            proc = start(kind, args, port)
            try:
                # One untimed request warms the caches and the page tables.
                one_request(port, PROMPTS[0], 8)
                for c in clients:
                    m = phase(port, c, args.per_client, args.max_tokens)
                    m["load"] = os.getloadavg()[0]
                    runs.append((kind, c, rnd, m))
                    print(f"round {rnd + 1} {kind:12s} {c:2d} clients: {m['tok_s']:7.1f} tok/s  "
                          f"TTFT p50 {m['ttft_p50'] * 1000:6.0f} ms p95 {m['ttft_p95'] * 1000:6.0f} ms  "
                          f"ITL p50 {m['itl_p50'] * 1000:5.1f} ms p95 {m['itl_p95'] * 1000:5.1f} ms  "
                          f"(load {m['load']:.1f})", flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    print()
    print(f"CPU: {cpu_model()}, {args.threads} threads, --parallel {args.parallel}, max_tokens {args.max_tokens}, "
          f"{args.per_client} requests per client, median of {args.rounds} rounds; "
          f"load average during the runs {min(r[3]['load'] for r in runs):.1f}-{max(r[3]['load'] for r in runs):.1f}")
    print()
    print("| clients | server | tokens/s | TTFT p50 (ms) | TTFT p95 (ms) | ITL p50 (ms) | ITL p95 (ms) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for c in clients:
        for kind in servers:
            ms = [r[3] for r in runs if r[0] == kind and r[1] == c]
            med = {k: statistics.median(m[k] for m in ms) for k in ("tok_s", "ttft_p50", "ttft_p95", "itl_p50", "itl_p95")}
            print(f"| {c} | {kind} | {med['tok_s']:.1f} | {med['ttft_p50'] * 1000:.0f} | {med['ttft_p95'] * 1000:.0f} | "
                  f"{med['itl_p50'] * 1000:.1f} | {med['itl_p95'] * 1000:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_model(), "args": vars(args),
                       "runs": [{"server": k, "clients": c, "round": r, **m} for k, c, r, m in runs]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
