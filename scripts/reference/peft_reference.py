#!/usr/bin/env python3
"""PyTorch + Hugging Face PEFT reference for Lamina's LoRA adapter files, and the fixture
generator for tests/fixtures/peft/.

Two directions:

1. PEFT -> Lamina (the committed fixture, checked by model/tests/peft_interop.rs):

       python3 scripts/reference/peft_reference.py \
           --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out tests/fixtures/peft

   Loads SmolLM2 with transformers from the GGUF (transformers dequantizes every tensor
   to f32 and undoes the q/k row permutation of the GGUF converter: the same weights
   Lamina's `keep_quantized: false` path uses), wraps it with `peft.get_peft_model` (rank 2,
   alpha 4, targets q/k/v/o/down, `layers_to_transform=[0, 1, 2]`), sets B (which PEFT
   initialises to zero) to small random values so the adapter changes the logits, and
   saves it with `save_pretrained`. The A and B values are rounded to float16 first and
   the file stores them as F16 (the f32 file would be ~147 KB; real adapters are often
   half precision too), so the in-memory f32 adapter and the file hold the same numbers.
   The adapter is then loaded back from the directory with `load_adapter` and the logits
   recorded in expected.json come from that reloaded adapter: top-5 (id, logit) at the
   last position of each prompt, for the base model (adapter disabled) and with the adapter.

2. Lamina -> PEFT, by hand (Lamina's own logits against PEFT's):

       cargo run --release -p lamina-model --example peft_export -- /tmp/lamina-adapter
       python3 scripts/reference/peft_reference.py \
           --model models/SmolLM2-135M-Instruct.Q4_1.gguf --check-lamina /tmp/lamina-adapter

   The example attaches an adapter to every projection of every layer of the f32 model,
   gives B random values and saves it with `Llama::save_lora` (a directory that already
   holds an adapter, such as `lamina finetune`'s run/final/, is used as it is), then
   writes Lamina's own top-5 logits and 16 greedy tokens with the adapter loaded by
   `Llama::load_lora` to lamina_logits.json in the same directory. This script loads the
   directory with `PeftModel.from_pretrained` and compares. Exit status 1 if the top-5 ids or the greedy tokens differ or a logit is
   further than --tol away.

3. Lamina -> PEFT, the committed fixture (checked by model/tests/peft_interop.rs):

       python3 scripts/reference/peft_reference.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
           --lamina-fixture /tmp/lamina-adapter --out tests/fixtures/peft/lamina_saved.json

   With the directory the example wrote for its deterministic adapter: the size and FNV-1a
   64 hash of both files, the tensor names and shapes, and PEFT's top-5 logits with it.

Requirements (versions that made the committed fixture): torch 2.15.0 (CPU is enough),
transformers 5.24.0, peft 0.21.2, safetensors 0.8.0, gguf 0.19.0, numpy. On Linux the
PyPI torch wheel needs its nvidia-* dependencies installed to import, even on a CPU.
Loading the model from the GGUF takes 1-2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import torch

# The prompts: token ids as Lamina's (and llama.cpp's) tokenizer gives them, no BOS.
# "chatml" is the ChatML turn "What is the capital of France?" from tests/fixtures/smollm2.
PROMPTS = {
    "chatml": [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198],
    "story": [6403, 1980, 253, 655, 28, 665, 436, 253, 1838],
}
RANK = 2
ALPHA = 4.0
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "down_proj"]
LAYERS = [0, 1, 2]
B_STD = 0.1
SEED = 1234


def load_base(gguf_path: str):
    from transformers import AutoModelForCausalLM

    d, name = os.path.split(os.path.abspath(gguf_path))
    t = time.time()
    m = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    m.eval()
    print(f"loaded {name} with transformers in {time.time() - t:.0f} s", file=sys.stderr)
    return m


@torch.no_grad()
def last_logits(model, ids: list[int]) -> torch.Tensor:
    return model(torch.tensor([ids])).logits[0, -1].double()


def top5(logits: torch.Tensor) -> list[list]:
    v, i = logits.topk(5)
    return [[int(a), round(float(b), 5)] for a, b in zip(i, v)]


@torch.no_grad()
def greedy(model, ids: list[int], n: int) -> list[int]:
    """n argmax tokens, past end-of-turn tokens too (generate() would stop there, or with
    min_new_tokens suppress them), recomputing the whole prefix each time."""
    seq = list(ids)
    for _ in range(n):
        seq.append(int(last_logits(model, seq).argmax()))
    return seq[len(ids):]


def make_fixture(args) -> None:
    from peft import LoraConfig, get_peft_model
    from safetensors import safe_open

    base = load_base(args.model)
    torch.manual_seed(SEED)
    cfg = LoraConfig(
        r=RANK,
        lora_alpha=ALPHA,
        lora_dropout=0.0,
        target_modules=TARGETS,
        layers_to_transform=LAYERS,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, cfg)
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * B_STD)
            if "lora_" in name:
                # Representable in f16, so the F16 file holds exactly what PEFT computed with.
                p.copy_(p.half().float())
    os.makedirs(args.out, exist_ok=True)
    # Store the adapter tensors as F16: cast, save, cast back (lossless by the rounding above).
    lora_params = [p for n, p in model.named_parameters() if "lora_" in n]
    for p in lora_params:
        p.data = p.data.half()
    model.peft_config["default"].base_model_name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    # save_pretrained also writes a model card (README.md): keep only the adapter's two files.
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        for n in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copyfile(os.path.join(tmp, n), os.path.join(args.out, n))
    for p in lora_params:
        p.data = p.data.float()

    # The logits recorded are those of the adapter as PEFT reads it back from the files.
    model.load_adapter(args.out, adapter_name="from_file")
    model.set_adapter("from_file")
    cases = []
    for name, ids in PROMPTS.items():
        with_adapter = last_logits(model, ids)
        with model.disable_adapter():
            base_logits = last_logits(model, ids)
        model.set_adapter("default")
        in_memory = last_logits(model, ids)
        model.set_adapter("from_file")
        reload_diff = float((in_memory - with_adapter).abs().max())
        assert reload_diff < 1e-5, f"{name}: PEFT's reloaded adapter differs from the in-memory one by {reload_diff}"
        cases.append(
            {
                "name": name,
                "ids": ids,
                "base_top5": top5(base_logits),
                "peft_top5": top5(with_adapter),
                "max_abs_diff_from_base": round(float((with_adapter - base_logits).abs().max()), 5),
            }
        )
        print(f"{name}: base {top5(base_logits)}\n  peft {top5(with_adapter)}", file=sys.stderr)

    with safe_open(os.path.join(args.out, "adapter_model.safetensors"), "pt") as f:
        names = sorted(f.keys())
    import peft
    import transformers

    out = {
        "generator": "scripts/reference/peft_reference.py",
        "model": os.path.basename(args.model),
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
        "method": (
            "transformers AutoModelForCausalLM.from_pretrained(gguf_file=...) in float32 (weights dequantized "
            "from Q4_1/Q8_0, q/k rows in Hugging Face order); peft.get_peft_model with the LoraConfig in "
            "adapter_config.json; A from PEFT's default init (torch seed %d), B ~ N(0, %g^2) (generator seed %d), "
            "both rounded to float16 and saved as F16 by save_pretrained; logits from the adapter reloaded from "
            "the directory with load_adapter. base_top5: the same model with the adapter disabled. top5: the 5 "
            "largest (token id, logit) at the last position; max_abs_diff_from_base over the whole vocabulary."
        )
        % (SEED, B_STD, SEED),
        "tensors": names,
        "cases": cases,
    }
    path = os.path.join(args.out, "expected.json")
    with open(path + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)
    total = sum(os.path.getsize(os.path.join(args.out, n)) for n in os.listdir(args.out))
    print(f"wrote {args.out} ({total} bytes, {len(names)} tensors)", file=sys.stderr)


def check_lamina(args) -> int:
    from peft import PeftModel

    with open(os.path.join(args.check_lamina, "lamina_logits.json")) as f:
        lamina = json.load(f)
    base = load_base(args.model)
    model = PeftModel.from_pretrained(base, args.check_lamina)
    model.eval()
    ok = True
    for case in lamina["cases"]:
        ids = case["ids"]
        logits = last_logits(model, ids)
        ours = top5(logits)
        ids_same = [a for a, _ in ours] == [a for a, _ in case["top5"]]
        d = max(abs(float(logits[i]) - v) for i, v in case["top5"])
        toks = greedy(model, ids, len(case["greedy"]))
        same_greedy = toks == case["greedy"]
        print(f"{case['name']}: PEFT top-5 {ours}")
        print(f"{' ' * len(case['name'])}  Lamina     {case['top5']}")
        print(f"  top-5 ids equal: {ids_same}; max |logit difference| on Lamina's top-5: {d:.2e} (tol {args.tol})")
        print(f"  greedy {len(toks)} tokens equal: {same_greedy}" + ("" if same_greedy else f" (PEFT {toks})"))
        ok &= ids_same and d < args.tol and same_greedy
    print("Lamina adapter in PEFT:", "OK" if ok else "MISMATCH")
    return 0 if ok else 1


def fnv1a64(path: str) -> str:
    h = 0xCBF29CE484222325
    with open(path, "rb") as f:
        for b in f.read():
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def lamina_fixture(args) -> None:
    """The Lamina -> PEFT fixture: PEFT's logits with the adapter Lamina saved."""
    from peft import PeftModel
    from safetensors import safe_open

    d = args.lamina_fixture
    files = {n: {"bytes": os.path.getsize(os.path.join(d, n)), "fnv1a64": fnv1a64(os.path.join(d, n))}
             for n in ("adapter_config.json", "adapter_model.safetensors")}
    with safe_open(os.path.join(d, "adapter_model.safetensors"), "pt") as f:
        tensors = {n: list(f.get_slice(n).get_shape()) for n in sorted(f.keys())}
    base = load_base(args.model)
    model = PeftModel.from_pretrained(base, d)
    model.eval()
    cases = []
    for name, ids in PROMPTS.items():
        with_adapter = last_logits(model, ids)
        with model.disable_adapter():
            base_logits = last_logits(model, ids)
        cases.append({"name": name, "ids": ids, "peft_top5": top5(with_adapter),
                      "max_abs_diff_from_base": round(float((with_adapter - base_logits).abs().max()), 5)})
        print(f"{name}: peft {top5(with_adapter)}", file=sys.stderr)
    import peft
    import transformers

    out = {
        "generator": "scripts/reference/peft_reference.py --lamina-fixture",
        "model": os.path.basename(args.model),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
        "method": ("the adapter written by `cargo run --release -p lamina-model --example peft_export -- DIR` "
                   "(lamina_testkit::reference_adapter, saved with Llama::save_lora), loaded with "
                   "PeftModel.from_pretrained over transformers' float32 LlamaForCausalLM read from the GGUF; "
                   "files: size and FNV-1a 64 of the bytes Lamina wrote; peft_top5: the 5 largest (token id, "
                   "logit) at the last position; max_abs_diff_from_base over the whole vocabulary."),
        "files": files,
        "tensors": tensors,
        "cases": cases,
    }
    with open(args.out + ".tmp", "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    os.replace(args.out + ".tmp", args.out)
    print(f"wrote {args.out}", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the SmolLM2 GGUF")
    ap.add_argument("--out", help="fixture directory to write (PEFT -> Lamina); with --lamina-fixture, the JSON file")
    ap.add_argument("--check-lamina", metavar="DIR", help="adapter saved by Lamina to check in PEFT")
    ap.add_argument("--lamina-fixture", metavar="DIR", help="adapter saved by the peft_export example: write "
                    "PEFT's logits with it to --out (tests/fixtures/peft/lamina_saved.json)")
    ap.add_argument("--tol", type=float, default=2e-3, help="logit tolerance for --check-lamina")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.lamina_fixture:
        if not args.out:
            ap.error("--lamina-fixture needs --out FILE")
        lamina_fixture(args)
        return 0
    if bool(args.out) == bool(args.check_lamina):
        ap.error("give exactly one of --out and --check-lamina")
    if args.out:
        make_fixture(args)
        return 0
    return check_lamina(args)


if __name__ == "__main__":
    sys.exit(main())
