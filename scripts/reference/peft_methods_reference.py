#!/usr/bin/env python3
"""PyTorch + Hugging Face PEFT reference for Lamina's IA3, prompt-tuning, P-tuning and prefix-tuning adapters, and
the generator of tests/fixtures/peft_methods/<method>/ (checked by
model/tests/peft_methods.rs). The base model is the tiny LLaMA that transformers saved in
tests/fixtures/arch/llama/hf/ (2 layers, hidden 32, 4 query heads over 2 key/value heads).

Both directions, for each method:

1. PEFT -> Lamina: `get_peft_model` with the method's config, its trainable tensors set to
   random values (PEFT starts IA3 at ones, which would change nothing), `save_pretrained`
   into `<method>/peft/` (only the adapter's two files are kept).
   For prefix tuning a second one, `<method>/peft_projection/`, trained through PEFT's
   reparameterisation MLP (`prefix_projection=True`; PEFT saves the MLP's output); for
   P-tuning (an MLP encoder) a second one, `<method>/peft_lstm/`, made by PEFT's LSTM encoder.
2. Lamina -> PEFT: `<method>/lamina/` is an adapter saved by Lamina (written first by the
   ignored test `write_lamina_adapters`, see below); this script loads it with
   `PeftModel.from_pretrained`.

For each adapter, loaded back from its directory, `expected.safetensors` holds PEFT's
logits for the prompt's positions (`peft.logits`, `lamina.logits`: positions x 320, float32;
for prompt tuning, the positions of the real tokens only; `peft_projection.logits` too
for prefix tuning) and `expected.json` PEFT's greedy
continuation (each step the argmax of PEFT's forward over the whole sequence) with the
smallest top-2 logit gap on the way, and, for the record, what PEFT's `generate` gives
(`peft_generate`: with prompt tuning it leaves the forward's continuation after 4 tokens
under PEFT 0.21.2 and transformers 5.25).

Commands that made the committed fixtures (from the repository root):

    cargo test --release -p lamina-model --test peft_methods -- --ignored write_lamina_adapters
    python3 scripts/reference/peft_methods_reference.py --method ia3
    python3 scripts/reference/peft_methods_reference.py --method prompt
    python3 scripts/reference/peft_methods_reference.py --method prefix
    python3 scripts/reference/peft_methods_reference.py --method p_tuning
    python3 scripts/reference/peft_methods_reference.py --method prefix_families

`--method prefix_families` checks prefix tuning on the other decoder families of
tests/fixtures/arch/ (Qwen2, Qwen3, Mistral, Phi-3, Gemma 2, Gemma 3: biases, q/k norms,
sliding windows, fused projections, soft-caps, scaled embeddings): per family a PEFT
prefix adapter (`prefix_families/<family>/`), its logits and greedy tokens, in one
`expected.json` / `expected.safetensors`. PEFT -> Lamina only (the LLaMA case above covers
the other direction).

Requirements (versions that made the fixtures): torch 2.15.0 (CPU), transformers 5.25.0,
peft 0.21.2, safetensors 0.8.0. A few seconds each.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "tests/fixtures/arch/llama/hf"
OUT = ROOT / "tests/fixtures/peft_methods"
# "short" from tests/fixtures/arch/llama/reference.json ("Once upon a time", the fixture's
# own tokenizer).
PROMPT = [49, 80, 69, 71, 223, 87, 82, 288, 262, 274, 75, 79, 71]
GREEDY_TOKENS = 8
SEED = 1234


FAMILIES = ["qwen2", "qwen3", "mistral", "phi3", "gemma2", "gemma3"]


def load_base(base: Path = BASE):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, attn_implementation="eager")
    m.eval()
    return m


def peft_config(method: str):
    from peft import IA3Config, PrefixTuningConfig, PromptEncoderConfig, PromptTuningConfig

    if method == "ia3":
        # q as an output-scaled module too (its rows move between HF and GGUF order, as k's do).
        return IA3Config(
            task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "down_proj"],
            feedforward_modules=["down_proj"],
        )
    if method == "prefix":
        return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3)
    if method == "prefix_projection":
        return PrefixTuningConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=4, prefix_projection=True, encoder_hidden_size=12
        )
    if method == "p_tuning":
        return PromptEncoderConfig(task_type="CAUSAL_LM", num_virtual_tokens=4, encoder_hidden_size=12)
    if method == "p_tuning_lstm":
        return PromptEncoderConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=3, encoder_reparameterization_type="LSTM", encoder_hidden_size=8
        )
    return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=5)


def randomise(model, method: str) -> None:
    """Trainable tensors to random values, rounded to f16 then kept f32."""
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            if method == "ia3":
                v = 1.0 + 0.5 * torch.randn(p.shape, generator=gen)
            else:
                v = torch.randn(p.shape, generator=gen)
            p.copy_(v.half().float())


@torch.no_grad()
def last_logits(model, seq: list[int]) -> torch.Tensor:
    ids = torch.tensor([seq])
    return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, -1].float()


@torch.no_grad()
def logits_and_greedy(model) -> tuple[torch.Tensor, list[int], float, list[int]]:
    """PEFT's logits at the prompt's positions; the greedy continuation by recomputing the
    whole sequence each step (the model's definition), with the smallest top-2 gap; and
    what `generate` gives (for the record: with prompt tuning, PEFT 0.21.2's `generate`
    under transformers 5.25 leaves its own forward's continuation after a few tokens)."""
    ids = torch.tensor([PROMPT])
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].float()
    # Prompt tuning's forward returns the virtual tokens' positions too: keep the prompt's.
    logits = logits[logits.shape[0] - len(PROMPT):]
    seq, gap = list(PROMPT), float("inf")
    for _ in range(GREEDY_TOKENS):
        top = last_logits(model, seq).topk(2).values
        gap = min(gap, float(top[0] - top[1]))
        seq.append(int(last_logits(model, seq).argmax()))
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=GREEDY_TOKENS,
        min_new_tokens=GREEDY_TOKENS,
        do_sample=False,
        pad_token_id=0,
    )
    return logits, seq[len(PROMPT):], gap, [int(t) for t in out[0, len(PROMPT):]]


def save_peft_adapter(method: str, out: Path, base: Path = BASE) -> None:
    from peft import get_peft_model

    model = get_peft_model(load_base(base), peft_config(method))
    randomise(model, method)
    model.peft_config["default"].base_model_name_or_path = str(base.relative_to(ROOT))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        for n in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copyfile(os.path.join(tmp, n), out / n)


def prefix_families() -> int:
    """PEFT's prefixes on each family's tiny model: the adapter, PEFT's logits and greedy tokens."""
    from peft import PeftModel
    from safetensors.torch import save_file

    d = OUT / "prefix_families"
    tensors, cases = {}, {}
    for fam in FAMILIES:
        base = ROOT / f"tests/fixtures/arch/{fam}/hf"
        save_peft_adapter("prefix", d / fam, base)
        model = PeftModel.from_pretrained(load_base(base), d / fam)
        model.eval()
        logits, greedy, gap, generated = logits_and_greedy(model)
        with torch.no_grad():
            plain = load_base(base)(input_ids=torch.tensor([PROMPT])).logits[0].float()
        tensors[f"{fam}.logits"] = logits.contiguous()
        cases[fam] = {
            "greedy": greedy,
            "min_top2_gap": round(gap, 6),
            "peft_generate": generated,
            "max_abs_diff_from_base": round(float((logits - plain).abs().max()), 5),
        }
        print(f"{fam}: greedy {greedy}, gap {gap:.4f}, moves logits by {cases[fam]['max_abs_diff_from_base']}")
    save_file(tensors, d / "expected.safetensors")
    meta = {"generator": "scripts/reference/peft_methods_reference.py", "method": "prefix_families", "prompt": PROMPT}
    meta["cases"] = cases
    (d / "expected.json").write_text(json.dumps(meta, indent=1) + "\n")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--method", choices=["ia3", "prompt", "prefix", "p_tuning", "prefix_families"], required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.method == "prefix_families":
        return prefix_families()
    from peft import PeftModel
    from safetensors.torch import save_file
    import peft
    import transformers

    d = OUT / args.method
    lamina_dir = d / "lamina"
    if not (lamina_dir / "adapter_config.json").is_file():
        sys.exit(f"{lamina_dir} is missing: run the ignored test write_lamina_adapters first (see the header)")
    save_peft_adapter(args.method, d / "peft")
    adapters = ["peft", "lamina"]
    if args.method == "prefix":
        save_peft_adapter("prefix_projection", d / "peft_projection")
        adapters.insert(1, "peft_projection")
    if args.method == "p_tuning":
        save_peft_adapter("p_tuning_lstm", d / "peft_lstm")
        adapters.insert(1, "peft_lstm")
    tensors, cases = {}, {}
    for who in adapters:
        model = PeftModel.from_pretrained(load_base(), d / who)
        model.eval()
        logits, greedy, gap, generated = logits_and_greedy(model)
        if args.method == "ia3":
            merged = model.merge_and_unload()
            with torch.no_grad():
                m_logits = merged(input_ids=torch.tensor([PROMPT])).logits[0].float()
            diff = float((m_logits - logits).abs().max())
            assert diff < 1e-4, f"{who}: PEFT's merged model differs from the adapter by {diff}"
        with torch.no_grad():
            base = load_base()(input_ids=torch.tensor([PROMPT])).logits[0].float()
        tensors[f"{who}.logits"] = logits.contiguous()
        cases[who] = {
            "greedy": greedy,
            "min_top2_gap": round(gap, 6),
            "peft_generate": generated,
            "max_abs_diff_from_base": round(float((logits - base).abs().max()), 5),
        }
        print(f"{who}: greedy {greedy}, gap {gap:.4f}, moves logits by {cases[who]['max_abs_diff_from_base']}")
    save_file(tensors, d / "expected.safetensors")
    meta = {
        "generator": "scripts/reference/peft_methods_reference.py",
        "method": args.method,
        "base": "tests/fixtures/arch/llama/hf",
        "prompt": PROMPT,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "cases": cases,
    }
    (d / "expected.json").write_text(json.dumps(meta, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
