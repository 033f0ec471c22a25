#!/usr/bin/env python3
"""Tiny random checkpoints of every architecture family Lamina runs, made by Hugging Face
transformers itself, converted to GGUF by llama.cpp's own converter, with transformers'
logits and greedy tokens: the fixtures of tests/fixtures/arch/ (see its README).

Command that produced the committed fixtures (from the repository root):

    PYTHONPATH=/work/ref/llama.cpp/gguf-py python3 scripts/reference/arch_reference.py \
        --llama-cpp /work/ref/llama.cpp --out tests/fixtures/arch

`--llama-cpp` is the llama.cpp source tree vendored in the `llama-cpp-python==0.3.36` sdist
(`pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36`, then extract
`vendor/llama.cpp`); its `gguf-py` must come first on PYTHONPATH so the converter and its
gguf package match. `--only qwen2,gemma2` remakes some families.

For each family (a directory each):

- `hf/`: `save_pretrained` of a randomly initialised `*ForCausalLM` (BERT: `BertModel`) in
  float16 safetensors, with a tiny byte-level BPE tokenizer (`tokenizers`, trained on
  data/corpus.txt; BERT: WordPiece) saved beside it. Every parameter, norms and biases
  included, is drawn from a fixed seed with a scale that makes the logits spread (std
  1/sqrt(fan_in) for matrices, N(0, 1) embeddings, norm weights 1 + N(0, 0.2) or, for
  Gemma's (1 + w) norms, N(0, 0.2) on a 2^-10 grid so that the converter's f16 sum 1 + w is
  exact), so a swapped or mis-scaled tensor changes them. Values are rounded to f16 before
  anything is computed: the reference runs in float32 on exactly the stored weights.
- `model.gguf`: `convert_hf_to_gguf.py --outtype f16` of `hf/` (matrices F16 as stored, vectors F32). The converter refuses a
  byte-level BPE vocabulary whose pre-tokenizer hash it does not know (every freshly
  trained vocabulary); the tokenizer is only the container of the ids here, so this
  script tells it the pre-tokenizer is `gpt-2` (which is what the trained one is) and, for
  Gemma 2 (whose converter reads only SentencePiece), to take the BPE path. Tensors and
  hyperparameters are converted by the converter's own code, unchanged.
- `reference.json`: per prompt its token ids and transformers' greedy continuation (from
  `generate(do_sample=False)`, which runs the model's own KV cache and sliding-window
  masks), with the smallest gap between the top two logits over the greedy steps;
  `reference.safetensors`: transformers' logits (positions x vocab, float32) per prompt
  (`<prompt>.logits`), and the same with every matrix rounded to Q8_0 and back by gguf-py's
  quantizer (`<prompt>.q8_0.logits`; with the activations rounded to 8 bits as llama.cpp's
  CPU kernels do: `<prompt>.q8_0_act.logits`): the references for the model quantized to
  q8_0.

The attention implementation is `eager` (the reference definition, with soft-capping).
Each family's config sets the options the family is about to small values so that they
act on prompts of a dozen tokens: sliding windows of 4-6, Gemma 2's soft-caps at 5 and 8.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

VOCAB = 320  # byte-level BPE: 256 bytes, merges, and the special tokens
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PROMPTS = {
    "short": "Once upon a time",
    "long": "The quick brown fox jumps over the lazy dog, and then",
}
GREEDY_TOKENS = 10


def tiny(**kw):
    """The dimensions every decoder fixture shares, plus its own options."""
    base = dict(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-6,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=None,
    )
    base.update(kw)
    return base


def families():
    """name -> (transformers config class, model class, config kwargs, seed)."""
    import transformers as t

    return {
        # LLaMA as transformers saves it: the HF loader's names are checked against these.
        "llama": (t.LlamaConfig, t.LlamaForCausalLM, tiny(tie_word_embeddings=False), 101),
        # Qwen2: q/k/v biases; untied head.
        "qwen2": (t.Qwen2Config, t.Qwen2ForCausalLM, tiny(tie_word_embeddings=False, rope_theta=1e6), 102),
        # Qwen3: per-head q/k RMSNorm, head_dim 16 != hidden / heads (q is 64 wide), tied head.
        "qwen3": (t.Qwen3Config, t.Qwen3ForCausalLM, tiny(head_dim=16, tie_word_embeddings=True), 103),
        # Mistral: sliding-window attention over the last 5 positions.
        "mistral": (t.MistralConfig, t.MistralForCausalLM, tiny(sliding_window=5, tie_word_embeddings=False), 104),
        # Phi-3: fused qkv_proj and gate_up_proj; sliding window 6.
        "phi3": (
            t.Phi3Config,
            t.Phi3ForCausalLM,
            tiny(sliding_window=6, tie_word_embeddings=False, original_max_position_embeddings=64),
            105,
        ),
        # Gemma 2: (1 + w) norms, sqrt(d) embedding scale, GeGLU (tanh), pre and post norms,
        # attention and final soft-caps, local (window 4) / global layers alternating,
        # query_pre_attn_scalar = head_dim (what llama.cpp assumes for all but 27B).
        "gemma2": (
            t.Gemma2Config,
            t.Gemma2ForCausalLM,
            tiny(
                head_dim=8,
                query_pre_attn_scalar=8,
                sliding_window=4,
                attn_logit_softcapping=5.0,
                final_logit_softcapping=8.0,
                hidden_activation="gelu_pytorch_tanh",
            ),
            106,
        ),
        # Gemma 3: Gemma 2's block without soft-caps, with q/k norms; five local layers
        # (window 4, RoPE base 10000) to one global (base 1e6), as llama.cpp's fixed pattern.
        "gemma3": (
            t.Gemma3TextConfig,
            t.Gemma3ForCausalLM,
            tiny(
                num_hidden_layers=6,
                intermediate_size=32,
                head_dim=8,
                query_pre_attn_scalar=8,
                sliding_window=4,
                rope_parameters={
                    "full_attention": {"rope_type": "default", "rope_theta": 1e6},
                    "sliding_attention": {"rope_type": "default", "rope_theta": 1e4},
                },
            ),
            107,
        ),
    }


def train_bpe(corpus: Path, out: Path, tokenizer_class: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train([str(corpus)], trainer)
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    tok.save(str(out / "tokenizer.json"))
    cfg = {
        "tokenizer_class": tokenizer_class,
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "add_bos_token": False,
        "model_max_length": 64,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return tok


def randomize(model, gemma_norms: bool, seed: int):
    """Every parameter from `seed`, at a scale that spreads the logits (see the header)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            norm_weight = "norm" in name.lower() and name.endswith("weight")
            if norm_weight and gemma_norms:
                # Multiples of 2^-10 in (-0.5, 0.5): the converter's f16 sum 1 + w is exact.
                p.copy_(torch.round(0.2 * torch.randn(p.shape, generator=g) * 1024).clamp(-500, 500) / 1024)
            elif norm_weight:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
            # Stored as f16 (half the size); the reference computes in f32 from the rounded values.
            p.copy_(p.half().float())


def convert(llama_cpp: Path, hf: Path, out: Path, pre: str = "gpt-2"):
    """llama.cpp's converter, with the pre-tokenizer named (see the header)."""
    shim = f"""
import sys
sys.path.insert(0, {str(llama_cpp)!r})
sys.argv = ["convert_hf_to_gguf.py", {str(hf)!r}, "--outtype", "f16", "--outfile", {str(out)!r}]
import conversion.base as base
base.TextModel.get_vocab_base_pre = lambda self, tokenizer: {pre!r}
import conversion.gemma as gemma
gemma.Gemma2Model.set_vocab = lambda self: self._set_vocab_gpt2()
import runpy
runpy.run_path({str(llama_cpp / "convert_hf_to_gguf.py")!r}, run_name="__main__")
"""
    subprocess.run([sys.executable, "-c", shim], check=True)


def q8_0_rounded(model, round_activations: bool):
    """A copy with every matrix rounded to ggml's Q8_0 and back, by gguf-py's own
    quantizer: the reference for a model quantized to q8_0 (llama.cpp's q8_0 type puts
    every matrix, embedding and head included, in Q8_0). With `round_activations`, every
    linear layer's input is also rounded to 8-bit groups of 32 (scale d = max|x| / 127,
    round(x * (1 / d)) to nearest, ties to even), as llama.cpp's CPU dot products (and Lamina's) quantize activations."""
    import copy

    from gguf import GGMLQuantizationType, quants

    q = copy.deepcopy(model)
    with torch.no_grad():
        for _, p in q.named_parameters():
            if p.dim() == 2:
                blocks = quants.quantize(p.numpy(), GGMLQuantizationType.Q8_0)
                p.copy_(torch.from_numpy(quants.dequantize(blocks, GGMLQuantizationType.Q8_0)).reshape(p.shape))

    def round_input(_module, args):
        x = args[0]
        g = x.reshape(*x.shape[:-1], -1, 32)
        # ggml's quantize_row_q8_0: d = amax / 127, q = round(x * (1 / d)).
        d = g.abs().amax(dim=-1, keepdim=True) / 127
        inv = torch.where(d > 0, 1 / torch.where(d > 0, d, 1), torch.zeros_like(d))
        r = torch.round(g * inv) * d
        return (r.reshape(x.shape),) + tuple(args[1:])

    if round_activations:
        for m in q.modules():
            if isinstance(m, torch.nn.Linear):
                m.register_forward_pre_hook(round_input)
    return q


def greedy(model, ids: list[int]):
    """transformers' greedy continuation and the smallest top-1/top-2 logit gap on the way."""
    out = model.generate(
        torch.tensor([ids]),
        max_new_tokens=GREEDY_TOKENS,
        do_sample=False,
        output_logits=True,
        return_dict_in_generate=True,
        eos_token_id=None,
        pad_token_id=0,
    )
    tokens = out.sequences[0, len(ids) :].tolist()
    gaps = [float((s[0].topk(2).values[0] - s[0].topk(2).values[1])) for s in out.logits]
    return tokens, min(gaps)


def write_json(path: Path, value):
    """Indented, with lists of numbers on one line."""
    text = json.dumps(value, indent=1)
    text = re.sub(r"\[[\d\s,.-]*\]", lambda m: "[" + ", ".join(m.group(0)[1:-1].split()).replace(",,", ",") + "]", text)
    path.write_text(text + "\n")


def make_decoder(name, spec, corpus, llama_cpp, out_dir):
    from safetensors.torch import save_file

    cfg_cls, model_cls, kw, seed = spec
    dir_ = out_dir / name
    shutil.rmtree(dir_, ignore_errors=True)
    hf = dir_ / "hf"
    hf.mkdir(parents=True)
    # Phi-3's converter takes the BPE path only for a GPT2Tokenizer (as Phi-4 ships).
    tok = train_bpe(corpus, hf, "GPT2Tokenizer" if name == "phi3" else "PreTrainedTokenizerFast")
    torch.manual_seed(seed)
    config = cfg_cls(**kw, attn_implementation="eager")
    model = model_cls(config).eval()
    randomize(model, gemma_norms=name.startswith("gemma"), seed=seed)
    model.half().save_pretrained(hf, safe_serialization=True)
    convert(llama_cpp, hf, dir_ / "model.gguf")
    # The reference is transformers on the saved files, in float32 (an in-memory model
    # converted back with .float() would keep buffers such as RoPE's inverse frequencies
    # rounded to f16).
    model = model_cls.from_pretrained(hf, dtype=torch.float32, attn_implementation="eager").eval()

    reference = {"family": name, "transformers": __import__("transformers").__version__, "prompts": {}}
    tensors = {}
    runs = [("", model)]
    if name == "mistral":
        # llama.cpp's converter writes Mistral as `llama`, without the window: the GGUF's
        # reference is the same weights with the window off.
        no_window = model_cls(cfg_cls(**{**kw, "sliding_window": None}, attn_implementation="eager")).eval()
        no_window.load_state_dict(model.state_dict())
        runs.append(("no_window.", no_window))
    q8 = [(f"{prefix}q8_0.", q8_0_rounded(m, False)) for prefix, m in runs]
    q8 += [(f"{prefix}q8_0_act.", q8_0_rounded(m, True)) for prefix, m in runs]
    with torch.no_grad():
        for key, text in PROMPTS.items():
            ids = tok.encode(text).ids
            entry = {"text": text, "ids": ids}
            for prefix, m in q8:
                tensors[f"{key}.{prefix}logits"] = m(torch.tensor([ids])).logits[0].float().contiguous()
            for prefix, m in runs:
                tensors[f"{key}.{prefix}logits"] = m(torch.tensor([ids])).logits[0].float().contiguous()
                tokens, gap = greedy(m, ids)
                assert gap > 1e-3, f"{name}/{key}: greedy step with top-2 gap {gap}: pick another seed"
                entry[f"{prefix}greedy"] = tokens
                entry[f"{prefix}min_top2_gap"] = round(gap, 6)
            reference["prompts"][key] = entry
    save_file(tensors, str(dir_ / "reference.safetensors"))
    write_json(dir_ / "reference.json", reference)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters")


def train_wordpiece(corpus: Path, out: Path):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=VOCAB, special_tokens=specials, show_progress=False)
    tok.train([str(corpus)], trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    tok.save(str(out / "tokenizer.json"))
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    (out / "vocab.txt").write_text("".join(f"{t}\n" for t, _ in vocab))
    # The special tokens as BertTokenizer saves them: llama.cpp's converter reads the
    # separator (and CLS as BOS) from here; without them its GGUF gets no SEP id and
    # llama.cpp (and Lamina) fall back to BERT-base's 102.
    cfg = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}
    cfg.update(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]")
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return tok


def make_bert(corpus, llama_cpp, out_dir, seed=108):
    """A BERT encoder as sentence-transformers lays one out (mean pooling, normalised):
    transformers' last hidden states and the pooled embedding per prompt."""
    import transformers as t
    from safetensors.torch import save_file

    dir_ = out_dir / "bert"
    shutil.rmtree(dir_, ignore_errors=True)
    hf = dir_ / "hf"
    hf.mkdir(parents=True)
    tok = train_wordpiece(corpus, hf)
    config = t.BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        type_vocab_size=2,
        pad_token_id=0,
        attn_implementation="eager",
    )
    model = t.BertModel(config, add_pooling_layer=False).eval()
    randomize(model, gemma_norms=False, seed=seed)
    model.half().save_pretrained(hf, safe_serialization=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (hf / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (hf / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True}
    (hf / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2) + "\n")
    (hf / "2_Normalize").mkdir()
    convert(llama_cpp, hf, dir_ / "model.gguf", pre="default")
    model = t.BertModel.from_pretrained(hf, dtype=torch.float32, attn_implementation="eager", add_pooling_layer=False).eval()

    reference = {"family": "bert", "transformers": t.__version__, "pooling": "mean", "normalize": True, "prompts": {}}
    tensors = {}
    with torch.no_grad():
        for key, text in PROMPTS.items():
            ids = tok.encode(text).ids
            hidden = model(torch.tensor([ids])).last_hidden_state[0].float().contiguous()
            pooled = torch.nn.functional.normalize(hidden.mean(dim=0), dim=0)
            tensors[f"{key}.hidden"] = hidden
            tensors[f"{key}.embedding"] = pooled.contiguous()
            reference["prompts"][key] = {"text": text, "ids": ids}
    save_file(tensors, str(dir_ / "reference.safetensors"))
    write_json(dir_ / "reference.json", reference)
    print(f"bert: {sum(p.numel() for p in model.parameters())} parameters")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-cpp", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus.txt"))
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    only = set(filter(None, args.only.split(",")))
    for name, spec in families().items():
        if not only or name in only:
            make_decoder(name, spec, args.corpus, args.llama_cpp, args.out)
    if not only or "bert" in only:
        make_bert(args.corpus, args.llama_cpp, args.out)


if __name__ == "__main__":
    main()
