#!/usr/bin/env python3
"""Dev-only: llama.cpp's tokenize / detokenize of llama.cpp's own tokenizer test texts,
and `llama-tokenize`'s output, as fixtures for Lamina's tokenizer tests.

Needs llama.cpp's sources (for llama.h) and a build of it (libllama.so and the
`llama-tokenize` tool), and the vocabularies from scripts/fetch-llama-vocab.sh:

    LLAMA_CPP=/work/ref/llama.cpp LLAMA_BUILD=/work/ref/build-native/bin \
        python3 scripts/reference/llama_vocab_reference.py

Writes
  tests/fixtures/llama-vocab/detokenize.json: for every ggml-vocab-*.gguf with a test
    pair and every text of its .inp: llama.cpp's ids with add_special and parse_special
    (as the tokens added around the plain ids when that is what they are), and
    `common_detokenize` of the plain ids with special = true and of those ids with
    special = false and true ("=" where the result is the text itself, {"around":
    [before, after]} where it is the text with something around it, {"hex": ...}
    where it is not UTF-8).
  tests/fixtures/llama-vocab/tokenize/*.txt: `llama-tokenize` stdout for a few vocabulary
    / option / text cases (listed in tokenize/cases.json), compared byte for byte with
    `lamina tokenize` by cli/tests/tokenize.rs.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VOCAB = ROOT / "models" / "llama.cpp-vocab"
OUT = ROOT / "tests" / "fixtures" / "llama-vocab"
LLAMA_CPP = Path(os.environ.get("LLAMA_CPP", "/work/ref/llama.cpp"))
BUILD = Path(os.environ.get("LLAMA_BUILD", "/work/ref/build-native/bin"))

# `lamina tokenize` vs `llama-tokenize`: (vocabulary, extra options, text).
CLI_CASES = [
    ("llama-spm", [], "Hello world"),
    ("llama-spm", ["--ids"], " Hello\n\tworld 🦙 <s>"),
    ("llama-spm", [], "<s>Hello</s> é\\n"),
    ("llama-spm", ["--no-parse-special", "--no-escape"], "<s>Hello</s> é\\n"),
    ("phi-3", ["--ids"], "<|user|>\nHi<|end|>\n<|assistant|>"),
    ("gpt-2", [], "Hello, y'all! 3333 ünïcödé 🚀"),
    ("qwen2", ["--ids", "--no-bos"], "我想在apple工作1314151天～"),
    ("bert-bge", [], "Hello World! Äpfel"),
    ("gemma-4", ["--show-count"], "  Hello\n\n\nworld  😶‍🌫️"),
]


def build_tool(tmp: Path) -> Path:
    exe = tmp / "llama_vocab_reference"
    src = Path(__file__).with_suffix(".cpp")
    cmd = [
        "g++", "-O1", "-std=c++17", str(src), "-o", str(exe),
        f"-I{LLAMA_CPP / 'include'}", f"-I{LLAMA_CPP / 'ggml' / 'include'}",
        f"-L{BUILD}", "-lllama", f"-Wl,-rpath,{BUILD}",
    ]
    subprocess.run(cmd, check=True)
    return exe


def decoded(hex_text: str, text: str):
    raw = bytes.fromhex(hex_text)
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"hex": hex_text}
    if s == text:
        return "="
    at = s.find(text) if text else -1
    return {"around": [s[:at], s[at + len(text):]]} if at >= 0 else s


def read_texts(vocab: Path):
    raw = Path(f"{vocab}.inp").read_bytes().decode("utf-8")
    sep = "\n__ggml_vocab_test__\n"
    texts, pos = [], 0
    while pos < len(raw):
        nxt = raw.find(sep, pos)
        if nxt < 0:
            texts.append(raw[pos:])
            break
        texts.append(raw[pos:nxt])
        pos = nxt + len(sep)
    return texts


def ids(field: str):
    return [int(x) for x in field.split()] if field else []


def detokenize_fixture(exe: Path):
    vocabs = {}
    for vocab in sorted(VOCAB.glob("ggml-vocab-*.gguf")):
        if not Path(f"{vocab}.inp").is_file():
            continue
        texts = read_texts(vocab)
        want = [ids(line) for line in Path(f"{vocab}.out").read_text().splitlines()]
        out = subprocess.run([str(exe), str(vocab)], check=True, capture_output=True, text=True).stdout
        entries = []
        for line in out.splitlines():
            i, a, b, a_special, b_plain, b_special = line.split("\t")
            i, a, b = int(i), ids(a), ids(b)
            assert a == want[i], f"{vocab.name} text {i}: llama.cpp gives {a}, the .out file {want[i]}"
            entry = {}
            n = len(a)
            at = next((k for k in range(len(b) - n + 1) if b[k:k + n] == a), None)
            entry["special_ids"] = {"add": [b[:at], b[at + n:]]} if at is not None else {"ids": b}
            entry["plain_ids_special"] = decoded(a_special, texts[i])
            entry["special_ids_plain"] = decoded(b_plain, texts[i])
            entry["special_ids_special"] = decoded(b_special, texts[i])
            entries.append(entry)
        assert len(entries) == len(texts), vocab.name
        vocabs[vocab.name] = entries
        print(f"{vocab.name}: {len(entries)} texts")
    fixture = {
        "made_by": "scripts/reference/llama_vocab_reference.py: llama.cpp (vendored in llama-cpp-python 0.3.36) "
                   "llama_tokenize and llama_detokenize (remove_special = false) on the .inp texts",
        "vocabs": vocabs,
    }
    # One line per text keeps the file small and its diffs readable.
    body = ",\n".join(
        f"{json.dumps(name)}:[\n" + ",\n".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) for e in es) + "]"
        for name, es in vocabs.items()
    )
    made_by = json.dumps(fixture["made_by"])
    (OUT / "detokenize.json").write_text(f'{{"made_by":{made_by},\n"vocabs":{{\n{body}}}}}\n')
    json.loads((OUT / "detokenize.json").read_text())


def tokenize_fixture():
    cases = []
    (OUT / "tokenize").mkdir(parents=True, exist_ok=True)
    for n, (vocab, opts, text) in enumerate(CLI_CASES):
        cmd = [str(BUILD / "llama-tokenize"), "-m", str(VOCAB / f"ggml-vocab-{vocab}.gguf"), "-p", text,
               "--log-disable", *opts]
        out = subprocess.run(cmd, check=True, capture_output=True).stdout
        name = f"{n:02d}-{vocab}.txt"
        (OUT / "tokenize" / name).write_bytes(out)
        cases.append({"vocab": f"ggml-vocab-{vocab}.gguf", "options": opts, "text": text, "stdout": name})
        print(f"tokenize/{name}: {out[:60]!r}")
    (OUT / "tokenize" / "cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1) + "\n")


def main():
    if not (VOCAB / ".complete").is_file():
        sys.exit(f"{VOCAB} is missing: run scripts/fetch-llama-vocab.sh")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        detokenize_fixture(build_tool(Path(tmp)))
    tokenize_fixture()


if __name__ == "__main__":
    main()
