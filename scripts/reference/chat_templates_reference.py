#!/usr/bin/env python3
"""Real models' chat templates rendered by Python jinja2 as transformers renders them: the
fixture (tests/fixtures/chat_templates/expected.json) that model/tests/chat_templates.rs
holds Lamina's minijinja rendering to.

Command that produced the committed fixture (from the repository root):

    python3 scripts/reference/chat_templates_reference.py \
        --templates models/llama.cpp-vocab/templates --out tests/fixtures/chat_templates

The templates are llama.cpp's `models/templates/*.jinja` from the `llama-cpp-python==0.3.36`
sdist (`scripts/fetch-llama-vocab.sh` extracts them into models/llama.cpp-vocab/templates/;
they are not committed). Each is compiled with transformers' own `_compile_jinja_template`
(jinja2's ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loopcontrols, its
`tojson`, `raise_exception`, `namespace` and `strftime_now`) and rendered, as
`apply_chat_template(tokenize=False)` renders (tools and documents None), for each conversation below, with and without
the generation prompt where it makes sense. `strftime_now` reads a fixed clock,
2024-07-26 09:05:03 (a Friday), so that the date some templates print is reproducible; the
Rust test sets the same clock. A template that raises (most refuse some role order) is
recorded as an expected error, which Lamina must also raise.

Requirements: transformers (5.x; 5.25.0 made the fixture) and jinja2 >= 3.1.6.
"""

import argparse
import datetime
import json
from pathlib import Path

import jinja2
import transformers
from transformers.utils import chat_template_utils

BOS, EOS = "<BOS>", "<EOS>"
NOW = datetime.datetime(2024, 7, 26, 9, 5, 3)

CONVERSATIONS = {
    "system_user": [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "What is 2 + 2?"},
    ],
    "multi_turn": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "  Hello there!  "},
        {"role": "assistant", "content": "Bonjour !"},
        {"role": "user", "content": "Two lines:\nfirst\nsecond ✓"},
    ],
    "user_only": [{"role": "user", "content": "Write a haiku about rust."}],
    "finished": [
        {"role": "user", "content": "Say yes."},
        {"role": "assistant", "content": "Yes."},
    ],
}


class FixedDatetime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW


def render(source: str, messages, add_generation_prompt: bool):
    template = chat_template_utils._cached_compile_jinja_template(source)
    # apply_chat_template's own call, without tools or documents.
    return template.render(
        messages=messages,
        tools=None,
        documents=None,
        add_generation_prompt=add_generation_prompt,
        bos_token=BOS,
        eos_token=EOS,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--templates", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    chat_template_utils.datetime = FixedDatetime
    cases = []
    for path in sorted(args.templates.glob("*.jinja")):
        source = path.read_text(encoding="utf-8")
        for name, messages in CONVERSATIONS.items():
            ends_with_assistant = messages[-1]["role"] == "assistant"
            for agp in [False] if ends_with_assistant else [True, False]:
                case = {"template": path.name, "conversation": name, "add_generation_prompt": agp}
                try:
                    case["rendered"] = render(source, messages, agp)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = f"{type(e).__name__}: {e}"
                except Exception as e:  # a template that needs context this fixture does not give
                    case["error"] = f"{type(e).__name__}: {e}"
                cases.append(case)
    args.out.mkdir(parents=True, exist_ok=True)
    out = {
        "transformers": transformers.__version__,
        "jinja2": jinja2.__version__,
        "bos_token": BOS,
        "eos_token": EOS,
        "now": NOW.isoformat(),
        "conversations": CONVERSATIONS,
        "cases": cases,
    }
    (args.out / "expected.json").write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    rendered = sum("rendered" in c for c in cases)
    print(f"{len(cases)} cases from {len(set(c['template'] for c in cases))} templates: {rendered} rendered, {len(cases) - rendered} errors")


if __name__ == "__main__":
    main()
