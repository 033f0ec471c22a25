#!/usr/bin/env python3
"""llama.cpp's greedy answers to a few SFT evaluation prompts, for train/tests/sft_eval.rs.

Exact command that produced tests/fixtures/sft_eval/answers.json (repository root, after
`scripts/fetch-model.sh`), with the `llama-server` of a llama.cpp built from the sources
vendored by llama-cpp-python 0.3.36:

    python3 scripts/reference/sft_eval_reference.py --llama-server PATH/TO/llama-server \\
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/fixtures/sft_eval/answers.json

Requirements: Python 3 (standard library only).

For each question (a general one, and the first four of data/sft/test.jsonl) the server
renders the chat with the model's own template (its default system prompt included) and
greedily generates up to 12 tokens on the Q4_1 weights, stopping at the end of turn: what
`lamina eval` does with `--max-new-tokens 12`. With each answer the script records the
smallest gap between the two most likely tokens over its steps (`min_top2_gap`, in
probability): a small gap marks a near-tie that rounding noise could flip. The test
requires every answer and prints that gap with a mismatch (Lamina's Q4_1 arithmetic
quantizes activations as llama.cpp does; the smallest gap here is 0.016).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import time
import urllib.request

MAX_NEW = 12
QUESTIONS = ["What is the capital of France? Answer with one word."]
TEST_FILE = "data/sft/test.jsonl"
N_TEST = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    examples = [{"question": q, "reference": None} for q in QUESTIONS]
    with open(TEST_FILE) as f:
        for line in list(f)[:N_TEST]:
            m = json.loads(line)["messages"]
            examples.append({"question": m[0]["content"], "reference": m[1]["content"]})

    port = free_port()
    server = subprocess.Popen([args.llama_server, "-m", args.model, "--port", str(port), "-c", "512", "-t", "2",
                               "--jinja", "--no-webui"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        for ex in examples:
            r = post(port, "/v1/chat/completions", {
                "messages": [{"role": "user", "content": ex["question"]}],
                "max_tokens": MAX_NEW, "temperature": 0.0, "top_k": 1, "seed": 0,
                "logprobs": True, "top_logprobs": 2,
            })
            choice = r["choices"][0]
            ex["answer"] = choice["message"]["content"]
            gaps = []
            for step in choice["logprobs"]["content"]:
                top = sorted((t["logprob"] for t in step["top_logprobs"]), reverse=True)
                p = [2.718281828459045 ** lp for lp in top] + [0.0]
                gaps.append(p[0] - p[1])
            ex["min_top2_gap"] = round(min(gaps), 4) if gaps else None
            print(json.dumps(ex))
    finally:
        server.terminate()
        server.wait()

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"made_by": "scripts/reference/sft_eval_reference.py (llama-server of llama-cpp-python 0.3.36's "
                              "llama.cpp; chat template from the GGUF, greedy, Q4_1)",
                   "max_new_tokens": MAX_NEW, "examples": examples}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
