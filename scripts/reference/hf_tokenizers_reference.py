#!/usr/bin/env python3
"""Dev-only: small Hugging Face `tokenizer.json` files of the non-byte-level kinds, and
what Hugging Face `tokenizers` itself makes of some texts, for the tests of
`Tokenizer::from_hf_dir` (model/tests/tokenizer_hf.rs).

    pip install tokenizers   # these were made with tokenizers 0.23.3
    python3 scripts/reference/hf_tokenizers_reference.py

Each tokenizer is trained on data/corpus.txt (a few hundred tokens) in the layout of a
real model family:
  spm-bpe/    Llama 2 / Mistral / Gemma style: BPE with byte fallback (<0x00>..<0xFF>),
              normalizer Prepend("▁") + Replace(" ", "▁"), decoder Replace + ByteFallback +
              Fuse + Strip, <s> added in front.
  wordpiece/  BERT style: BertNormalizer (lowercase, accents stripped), BertPreTokenizer,
              WordPiece with "##" continuations, [CLS] text [SEP].
  unigram/    T5 / XLM-R style: Unigram with a Metaspace pre-tokenizer and decoder, </s>
              added at the end.
and writes tokenizer.json, tokenizer_config.json and reference.json (per text: the ids of
`encode(text)` with the special tokens the post-processor adds, and `decode(ids)` with
and without skipping special tokens).

  sentencepiece/  a SentencePiece `tokenizer.model` alone (no tokenizer.json), trained by
              the `sentencepiece` library with Llama 2's settings (BPE, byte fallback,
              identity normalization, digits split, dummy prefix); reference.json holds
              `sentencepiece`'s own `encode(text)` (no BOS) and `decode(ids)`.
"""
import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "hf-tokenizers"
CORPUS = ROOT / "data" / "corpus.txt"
TEXTS = [
    "Hello world",
    "  leading spaces, then more.",
    "tabs\tand\nnewlines\n\n end",
    "Unicode: é, 漢字, 😀 and Ärger!",
    "Don't stop: it's 12345 o'clock?",
    "<s>special</s> tokens [CLS] inside [SEP]",
    "",
]


def spm_bpe():
    specials = ["<unk>", "<s>", "</s>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials, limit_alphabet=60, show_progress=False)
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.train([str(CORPUS)], trainer)
    # Rebuild the vocabulary as Llama's is laid out: specials, the 256 byte tokens, the rest.
    trained = json.loads(tok.to_str())["model"]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab[f"<0x{b:02X}>"] = len(vocab)
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(t, len(vocab))
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.add_special_tokens(specials)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
              "add_eos_token": False, "tokenizer_class": "LlamaTokenizerFast"}
    return tok, config


def wordpiece():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train([str(CORPUS)], trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials, show_progress=False))
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    config = {"cls_token": "[CLS]", "sep_token": "[SEP]", "unk_token": "[UNK]", "pad_token": "[PAD]",
              "mask_token": "[MASK]", "tokenizer_class": "BertTokenizerFast"}
    return tok, config


def unigram():
    specials = ["<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.train([str(CORPUS)], trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token="<unk>",
                                                      show_progress=False))
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    config = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "tokenizer_class": "T5TokenizerFast"}
    return tok, config


def sentencepiece_model():
    import sentencepiece as spm

    out = OUT / "sentencepiece"
    out.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        input=str(CORPUS), model_prefix=str(out / "tokenizer"), vocab_size=400, model_type="bpe",
        byte_fallback=True, normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=True, split_digits=True, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, character_coverage=0.9995, minloglevel=2,
    )
    (out / "tokenizer.vocab").unlink()
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    cases = [{"text": t, "ids": sp.encode(t), "decode": sp.decode(sp.encode(t))} for t in TEXTS]
    reference = {"made_by": f"scripts/reference/hf_tokenizers_reference.py (sentencepiece {spm.__version__})",
                 "cases": cases}
    (out / "reference.json").write_text(json.dumps(reference, ensure_ascii=False, indent=1) + "\n")
    print("sentencepiece", sp.get_piece_size(), [c["ids"][:8] for c in cases[:3]])


def main():
    for name, make in [("spm-bpe", spm_bpe), ("wordpiece", wordpiece), ("unigram", unigram)]:
        tok, config = make()
        out = OUT / name
        out.mkdir(parents=True, exist_ok=True)
        tok.save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
        cases = []
        for text in TEXTS:
            ids = tok.encode(text).ids
            cases.append({
                "text": text,
                "ids": ids,
                "decode": tok.decode(ids, skip_special_tokens=False),
                "decode_skip_special": tok.decode(ids, skip_special_tokens=True),
            })
        reference = {"made_by": "scripts/reference/hf_tokenizers_reference.py (Hugging Face tokenizers "
                                f"{__import__('tokenizers').__version__})", "cases": cases}
        (out / "reference.json").write_text(json.dumps(reference, ensure_ascii=False, indent=1) + "\n")
        print(name, tok.get_vocab_size(), [c["decode"] for c in cases[:4]])
    sentencepiece_model()


if __name__ == "__main__":
    main()
