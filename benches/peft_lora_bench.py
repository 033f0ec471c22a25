#!/usr/bin/env python3
"""LoRA training speed of PyTorch + Hugging Face PEFT on the CPU, for comparison with
`lamina finetune` on the same model and settings (docs/PERF.md, "Fine-tuning speed").

    python3 benches/peft_lora_bench.py                        # batch 1, seq 256, 2 threads
    python3 benches/peft_lora_bench.py --batch 4 --json       # one JSON object on stdout

What it measures: SmolLM2-135M-Instruct loaded by transformers from our GGUF
(models/SmolLM2-135M-Instruct.Q4_1.gguf; `from_pretrained(dir, gguf_file=...)`
dequantizes every tensor to f32, the weights Lamina's f32 LoRA path trains over), in
float32, with a PEFT LoRA of rank 8, alpha 16, dropout 0.05 on q, k, v, o, gate, up and
down of every layer. One training step is forward + causal-LM loss + backward +
gradient clipping to norm 1 + AdamW (lr 2e-4, weight decay 0, as `lamina finetune`'s
defaults) + zero_grad, on `--batch` sequences of `--seq` random token ids (the content
does not change the cost). After `--warmup` untimed steps, `--steps` steps are timed;
tokens/s = batch * seq * steps / time. The peak RSS is reported twice: over the whole
process (including transformers' dequantizing load) and over the timed training only
(the kernel's high-water mark is reset after loading, via /proc/self/clear_refs).

Requirements: torch (CPU is enough; on Linux the PyPI wheel also needs its nvidia-*
packages installed to import), transformers, peft, safetensors, gguf, numpy. Measured
with torch 2.15.0, transformers 5.24.0, peft 0.21.2. Other processes on the machine
change the result a lot: run `uptime` first and compare figures taken at a low load.
PyTorch's OpenMP threads wait for each other at the end of every op; while other
processes hold the cores, 2 threads were 5x slower than 1 on the 2-core machine
(`OMP_WAIT_POLICY=PASSIVE` took most of that back). The JSON records the load average
and the wait policy.

Loading from the GGUF takes 1-2 minutes (transformers dequantizes it in numpy). For
repeated runs, save an f32 copy once and pass the directory as --model:

    python3 -c "import torch; from transformers import AutoModelForCausalLM as M; \
    m = M.from_pretrained('models', gguf_file='SmolLM2-135M-Instruct.Q4_1.gguf', dtype=torch.float32); \
    del m.config.quantization_config; m.hf_quantizer = None; m.save_pretrained('/tmp/smollm2-f32')"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

import torch


def rss_mib(field: str) -> float:
    """VmRSS (current) or VmHWM (peak since the last reset) of this process, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model",
        default="models/SmolLM2-135M-Instruct.Q4_1.gguf",
        help="the GGUF, or a directory transformers can load (a saved f32 copy of it loads faster)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = ap.parse_args()
    loadavg = os.getloadavg()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    import peft
    import transformers
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    t = time.perf_counter()
    if os.path.isdir(args.model):
        name = os.path.basename(os.path.abspath(args.model))
        base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    else:
        d, name = os.path.split(os.path.abspath(args.model))
        base = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32)
    load_s = time.perf_counter() - t
    cfg = LoraConfig(
        r=args.rank,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        target_modules=args.targets.split(","),
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(args.seed)

    def step() -> float:
        ids = torch.randint(0, vocab, (args.batch, args.seq), generator=gen)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    rss_after_load = rss_mib("VmHWM")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    times, losses = [], []
    for _ in range(args.steps):
        t = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t)
    tokens = args.batch * args.seq
    total = sum(times)
    result = {
        "bench": "peft_lora_train",
        "model": name,
        "dtype": "f32",
        "threads": args.threads,
        "batch": args.batch,
        "seq": args.seq,
        "rank": args.rank,
        "alpha": args.alpha,
        "dropout": args.dropout,
        "targets": args.targets.split(","),
        "trainable_params": trainable,
        "warmup_steps": args.warmup,
        "steps": args.steps,
        "tokens_per_s": tokens * args.steps / total,
        "step_s_median": statistics.median(times),
        "step_s": [round(x, 3) for x in times],
        "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
        "load_s": round(load_s, 1),
        "peak_rss_mib": round(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss_after_load), 1),
        "train_peak_rss_mib": round(rss_mib("VmHWM"), 1),
        "attn_implementation": model.config._attn_implementation,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "cpu": platform.processor() or platform.machine(),
        "loadavg_at_start": [round(x, 2) for x in loadavg],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"PyTorch {torch.__version__} + PEFT {peft.__version__}, {args.threads} threads, f32: "
            f"LoRA r{args.rank} on {len(result['targets'])} projections ({trainable} trainable), "
            f"batch {args.batch} x seq {args.seq}"
        )
        print(
            f"  {result['tokens_per_s']:.1f} tokens/s (median step {result['step_s_median']:.2f} s over "
            f"{args.steps} steps, after {args.warmup} warm-up)"
        )
        print(f"  peak RSS {result['peak_rss_mib']:.0f} MiB (with loading), {result['train_peak_rss_mib']:.0f} MiB training")
        print(f"  loss {losses[0]:.3f} -> {losses[-1]:.3f}; steps {result['step_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
