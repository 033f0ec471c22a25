#!/usr/bin/env python3
"""Hugging Face transformers reference for `lamina eval`'s multiple-choice scoring, made the
way EleutherAI's lm-evaluation-harness (v0.4, `HFLM`) makes it, and the fixture generator for
tests/fixtures/eval_mc/.

    python3 scripts/reference/mc_loglik_reference.py \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --tasks tests/fixtures/eval_mc/delimited.jsonl tests/fixtures/eval_mc/undelimited.jsonl \
        --out tests/fixtures/eval_mc/expected.json

What the harness does, transcribed here (and nowhere taken from Lamina):

- Requests: a multiple-choice document gives one `loglikelihood(context, target_delimiter +
  choice)` request per choice (`ConfigurableTask.construct_requests`).
- Token boundary (`TemplateLM._encode_pair`): trailing whitespace of the context moves to the
  front of the continuation; then context + continuation is tokenized as one string, the
  context alone, and the continuation's tokens are the whole's tokens after the context's
  count. An empty context is the prefix token alone (BOS, else EOS) and the continuation is
  tokenized on its own (`TemplateLM.loglikelihood`). No special tokens are added
  (`add_special_tokens=False`, the default for causal models).
- Scoring (`HFLM._loglikelihood_tokens`): the model reads (context + continuation)[:-1];
  log_softmax over the vocabulary in the model's dtype (float32 here); the log-probabilities
  of the continuation tokens are gathered and summed (float32), and `is_greedy` says whether
  every continuation token is the argmax.
- Metrics (`ConfigurableTask.process_results`): acc = argmax of the sums is the answer;
  acc_norm = argmax of sum / len(choice), Python's len of the choice string (characters,
  without the delimiter).

The weights: transformers loads the GGUF with `gguf_file=` and dequantizes every tensor to
float32 (undoing the converter's q/k row permutation), the weights Lamina uses with
`--dequantize`. The tokenizer is transformers' own conversion of the GGUF's vocabulary and
merges, so the token ids in the fixture are an independent check of Lamina's tokenizer too.

Requirements: torch, transformers (5.x), gguf, numpy. Loading takes 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch


def read_task(path: str) -> tuple[dict, list[tuple[int, dict]]]:
    """The header (first non-blank line) and the evaluated items with their 1-based lines."""
    header, items = None, []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if header is None:
                header = obj
                continue
            if obj.get("split", "test") == "test":
                items.append((n, obj))
    assert header is not None and header.get("kind") == "multiple_choice", path
    return header, items


def encode_pair(tok, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness's TemplateLM._encode_pair."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok.encode(context + continuation, add_special_tokens=False)
    ctx = tok.encode(context, add_special_tokens=False)
    return ctx, whole[len(ctx):]


def request_tokens(tok, prefix: int, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-evaluation-harness's TemplateLM.loglikelihood: the empty context is the prefix token."""
    if context == "":
        return [prefix], tok.encode(continuation, add_special_tokens=False)
    return encode_pair(tok, context, continuation)


@torch.no_grad()
def loglikelihood(model, ctx: list[int], cont: list[int]) -> tuple[float, bool, float]:
    """HFLM._loglikelihood_tokens for one request: (float32 sum, is_greedy, float64 sum)."""
    assert ctx and cont, "the harness asserts a non-empty context and continuation"
    inp = torch.tensor([(ctx + cont)[:-1]])
    logprobs = torch.log_softmax(model(inp).logits[0], dim=-1)  # float32, (T, vocab)
    rows = logprobs[-len(cont):]
    target = torch.tensor(cont)
    picked = rows.gather(1, target.unsqueeze(1)).squeeze(1)
    greedy = bool((rows.argmax(dim=-1) == target).all())
    return float(picked.sum()), greedy, float(picked.double().sum())


def score_task(model, tok, prefix: int, path: str) -> dict:
    header, items = read_task(path)
    delimiter = header.get("target_delimiter", " ")
    out = []
    for line, item in items:
        choices = []
        for choice in item["choices"]:
            ctx, cont = request_tokens(tok, prefix, item["context"], delimiter + choice)
            ll, greedy, ll64 = loglikelihood(model, ctx, cont)
            choices.append(
                {"context_ids": ctx, "continuation_ids": cont, "loglik": ll, "loglik_f64": ll64, "is_greedy": greedy}
            )
        lls = np.array([c["loglik"] for c in choices])
        lengths = np.array([float(len(c)) for c in item["choices"]])
        gold = item["answer"]
        out.append(
            {
                "line": line,
                "choices": choices,
                "acc": 1.0 if np.argmax(lls) == gold else 0.0,
                "acc_norm": 1.0 if np.argmax(lls / lengths) == gold else 0.0,
            }
        )
        print(f"{os.path.basename(path)}:{line}: {[round(c['loglik'], 4) for c in choices]}", file=sys.stderr)
    return {"file": os.path.basename(path), "items": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="SmolLM2 GGUF")
    ap.add_argument("--tasks", nargs="+", required=True, help="multiple-choice task files (Lamina's JSONL format)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    d, name = os.path.split(os.path.abspath(args.model))
    t = time.time()
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    print(f"loaded {name} in {time.time() - t:.0f} s", file=sys.stderr)
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    result = {
        "generator": "scripts/reference/mc_loglik_reference.py",
        "model": name,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "method": (
            "lm-evaluation-harness v0.4 HFLM rules (see the script's docstring): _encode_pair token boundary, "
            "prefix token for an empty context, float32 log_softmax, continuation log-probabilities summed; "
            "acc by argmax of the sums, acc_norm by argmax of sum / len(choice) in characters. Weights: "
            "transformers from_pretrained(gguf_file=...) in float32; tokenizer: transformers' conversion of the GGUF."
        ),
        "prefix_token": prefix,
        "tasks": [score_task(model, tok, prefix, p) for p in args.tasks],
    }
    with open(args.out + ".tmp", "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
