#!/usr/bin/env python3
"""Reference probabilities for Lamina's interpolated Kneser-Ney n-gram model
(train/src/lineage/ngram.rs) from NLTK's `KneserNeyInterpolated`, an independent
implementation. Writes tests/fixtures/kneser_ney/nltk.json; the Rust test is
train/tests/lineage_ngram.rs.

NLTK uses one discount for every order above the first and no discount (and no uniform
mix) at the unigram level, so the Rust side is configured with discounts [0, d, ..., d].
Both pad the text's start with a boundary symbol: NLTK is given exactly the k-grams
(k = 1..N) that end at each character of the text, with "<s>" before the start.

    pip install nltk==3.10.4   # any 3.x with nltk.lm
    python3 scripts/reference/kneser_ney_reference.py
"""
import json
import math
import pathlib

from nltk.lm import KneserNeyInterpolated

ROOT = pathlib.Path(__file__).resolve().parents[2]
BOS = "<s>"
# The first lines of the shipped corpus.
TEXT = (ROOT / "data" / "corpus.txt").read_text()[:600]
HISTORIES = ["", "S", "th", "the", "thou ", "\n", "By t", "zq", "e~", "ou", "bright e", "#"]
# Characters of the histories missing from the text (such as "#", "~", "z") are in the
# vocabulary too: unseen contexts and never-seen words.
VOCAB = sorted(set(TEXT) | set("".join(HISTORIES)))


def grams(text, order):
    """Every k-gram (k = 1..order) ending at each character, boundary-padded."""
    padded = [BOS] * (order - 1) + list(text)
    out = []
    for end in range(order - 1, len(padded)):
        for k in range(1, order + 1):
            out.append(tuple(padded[end + 1 - k : end + 1]))
    return out


def distribution(lm, order, history):
    ctx = ([BOS] * (order - 1) + list(history))[len(history) :] if order > 1 else []
    ctx = tuple(ctx)
    return [lm.unmasked_score(w, ctx) for w in VOCAB]


def main():
    cases = []
    for order in (2, 3, 4):
        for discount in (0.1, 0.75):
            lm = KneserNeyInterpolated(order, discount=discount)
            # The boundary is in NLTK's vocabulary too: an unknown word would be counted as
            # "<UNK>" while unmasked_score looks contexts up unmapped, so a context holding
            # the boundary would never be found.
            lm.fit([grams(TEXT, order)], vocabulary_text=VOCAB + [BOS])
            for h in HISTORIES:
                probs = distribution(lm, order, h)
                assert abs(sum(probs) - 1.0) < 1e-12, (order, discount, h, sum(probs))
                cases.append({"order": order, "discount": discount, "history": h, "probs": probs})
    out = ROOT / "tests" / "fixtures" / "kneser_ney" / "nltk.json"
    doc = {
        "made_by": "scripts/reference/kneser_ney_reference.py (nltk.lm.KneserNeyInterpolated)",
        "text": TEXT,
        "vocab": VOCAB,
        "cases": cases,
    }
    # One case a line: small diffs when the reference is remade.
    body = ",\n".join(json.dumps(c) for c in cases)
    head = json.dumps({k: v for k, v in doc.items() if k != "cases"})[:-1]
    out.write_text(f'{head}, "cases": [\n{body}\n]}}\n')
    print(f"{len(cases)} cases -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
