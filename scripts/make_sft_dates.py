#!/usr/bin/env python3
"""Generate the shipped instruction dataset data/sft/{train,test}.jsonl: date reformatting.

Each example asks for a date written in words (five input styles, several phrasings of the
request) to be rewritten as YYYY-MM-DD; the answer is the ISO date alone (10 characters,
about 10 tokens for SmolLM2). Exact match scores it. The split is by calendar date: no
date in test.jsonl appears (in any style) in train.jsonl.

Seeded and deterministic: the same command writes byte-identical files.

    python3 scripts/make_sft_dates.py --out data/sft            # 1500 train, 150 test
"""

import argparse
import datetime
import json
import os
import random

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def ordinal(n):
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}" + {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def styles(d):
    """The date in words, five ways (none is ambiguous about day and month)."""
    month = MONTHS[d.month - 1]
    return [
        f"{d.day} {month} {d.year}",
        f"{month} {d.day}, {d.year}",
        f"{month[:3]} {d.day}, {d.year}",
        f"the {ordinal(d.day)} of {month} {d.year}",
        f"{WEEKDAYS[d.weekday()]}, {month} {d.day}, {d.year}",
    ]


REQUESTS = [
    "Rewrite the date {} as YYYY-MM-DD.",
    "Convert {} to the format YYYY-MM-DD.",
    "Write {} in ISO format (YYYY-MM-DD). Reply with the date only.",
    "What is {} as YYYY-MM-DD? Answer with the date only.",
]


def example(rng, d):
    text = rng.choice(styles(d))
    request = rng.choice(REQUESTS).format(text)
    # Sentence-initial "the 14th of ..." reads oddly only in the first request; fine as it is.
    return {"messages": [{"role": "user", "content": request},
                         {"role": "assistant", "content": d.isoformat()}]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/sft")
    ap.add_argument("--train", type=int, default=1500)
    ap.add_argument("--test", type=int, default=150)
    ap.add_argument("--seed", type=int, default=20240614)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    first, last = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)
    span = (last - first).days + 1
    days = rng.sample(range(span), args.train + args.test)
    dates = [first + datetime.timedelta(days=k) for k in days]
    test_dates, train_dates = dates[:args.test], dates[args.test:]
    assert not set(test_dates) & set(train_dates)
    os.makedirs(args.out, exist_ok=True)
    for name, ds in (("train", train_dates), ("test", test_dates)):
        path = os.path.join(args.out, f"{name}.jsonl")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for d in ds:
                f.write(json.dumps(example(rng, d), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        print(f"{path}: {len(ds)} examples, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
