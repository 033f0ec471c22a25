//! `Tokenizer::from_gguf`: the `tokenizer.ggml.*` metadata read as llama.cpp's
//! `llama_vocab::impl::load` reads it (the family from `tokenizer.ggml.model`, its
//! default special ids and flags, the keys that override them), but checked: a key of
//! the wrong type, arrays that disagree in length, a special id outside the vocabulary or
//! a repeated token text is an error naming the key, where llama.cpp would warn, guess or
//! abort.

use super::eog::{strip_attributes, NamedIds};
use super::pretokenize;
use super::special::TokenKind;
use super::wordpiece::WordPiece;
use super::{bpe::Bpe, Engine, LeadingSpace, PieceStyle, Settings, SpecialIds, Tokenizer, Vocab};
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;

/// The vocabulary families llama.cpp knows and the ones this build reads.
const SUPPORTED: &str =
    "llama (SentencePiece), gpt2 (byte-level BPE), gemma4 (SentencePiece-style BPE), bert (WordPiece)";

/// The vocabulary families (`tokenizer.ggml.model`) this build reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `llama`: SentencePiece.
    Spm,
    /// `bert`: WordPiece.
    WordPiece,
    /// `gpt2`: byte-level BPE after the pre-tokenizer `tokenizer.ggml.pre` names.
    Bpe,
    /// `gemma4`: SentencePiece-style BPE.
    Gemma4,
}

fn family(model: &str) -> Result<Family> {
    Ok(match model {
        "llama" => Family::Spm,
        "bert" => Family::WordPiece,
        "gpt2" => Family::Bpe,
        "gemma4" => Family::Gemma4,
        "t5" | "rwkv" | "plamo2" | "no_vocab" | "none" | "hybriddna" | "whitespace" => {
            return Err(ModelError::Unsupported(format!(
                "tokenizer family `tokenizer.ggml.model = {model}` (supported: {SUPPORTED})"
            )))
        }
        other => {
            return Err(ModelError::Unsupported(format!(
                "unknown tokenizer family `tokenizer.ggml.model = {other}` (supported: {SUPPORTED})"
            )))
        }
    })
}

pub fn load(gguf: &GgufFile) -> Result<Tokenizer> {
    let family = family(gguf.get_str("tokenizer.ggml.model")?)?;
    let pre_name = optional_str(gguf, "tokenizer.ggml.pre")?;
    let vocab = read_vocab(gguf)?;
    let (engine, mut settings) = family_defaults(gguf, family, pre_name, &vocab)?;
    let named = read_special_ids(gguf, vocab.len(), &mut settings.ids)?;
    if family == Family::Gemma4 {
        // llama.cpp overrides it for Gemma 4 (its PR 21500).
        settings.ids.add_bos = true;
    }
    settings.add_space_prefix =
        optional_bool(gguf, "tokenizer.ggml.add_space_prefix")?.unwrap_or(settings.add_space_prefix);
    // llama.cpp's detokenize drops the space the first token starts with where encoding
    // adds one.
    if settings.add_space_prefix {
        settings.leading_space = LeadingSpace::OfFirstToken;
    }
    let name = optional_str(gguf, "general.name")?.unwrap_or("");
    let arch = optional_str(gguf, "general.architecture")?.unwrap_or("");
    let pre = pre_name.unwrap_or("");
    Ok(Tokenizer::assemble(vocab, engine, settings, named, |v| strip_attributes(v, name, arch, pre)))
}

/// The family's engine, default special ids and flags (llama.cpp's `load`: "default
/// special tokens" and the flags each family and pre-tokenizer name set). Default ids
/// beyond the vocabulary are dropped, as llama.cpp does.
fn family_defaults(gguf: &GgufFile, family: Family, pre: Option<&str>, vocab: &Vocab) -> Result<(Engine, Settings)> {
    let mut ids = SpecialIds::default();
    let (engine, add_space_prefix, clean_spaces, pieces) = match family {
        Family::Spm => {
            (ids.bos, ids.eos, ids.unk, ids.add_bos) = (Some(1), Some(2), Some(0), true);
            (Engine::Spm, true, false, PieceStyle::Spaced)
        }
        Family::WordPiece => {
            (ids.bos, ids.unk, ids.sep, ids.pad, ids.mask) = (Some(101), Some(100), Some(102), Some(0), Some(103));
            (ids.add_bos, ids.add_sep) = (true, true);
            let lowercase = optional_bool(gguf, "tokenizer.ggml.normalizer.lowercase")?.unwrap_or(true);
            let strip_accents = optional_bool(gguf, "tokenizer.ggml.normalizer.strip_accents")?.unwrap_or(lowercase);
            (Engine::WordPiece(WordPiece::new(vocab, lowercase, strip_accents)), false, true, PieceStyle::Spaced)
        }
        Family::Bpe | Family::Gemma4 => {
            // llama.cpp: a missing `tokenizer.ggml.pre` means "default" (old conversions);
            // Gemma 4 vocabularies are always its own type.
            let spec = pretokenize::lookup(if family == Family::Gemma4 { "gemma4" } else { pre.unwrap_or("default") })?;
            if family == Family::Bpe && !spec.no_default_bos {
                (ids.bos, ids.eos) = (Some(11), Some(11));
            }
            ids.add_bos = spec.add_bos;
            let merges = string_array(gguf, "tokenizer.ggml.merges")?;
            let engine = Engine::Bpe(Box::new(Bpe::new(spec, merges, vocab)?));
            let pieces = if spec.spm_style { PieceStyle::Spaced } else { PieceStyle::ByteLevel };
            (engine, false, spec.clean_spaces, pieces)
        }
    };
    for id in [&mut ids.bos, &mut ids.eos, &mut ids.unk, &mut ids.pad, &mut ids.sep, &mut ids.mask] {
        *id = id.filter(|&i| (i as usize) < vocab.len());
    }
    let leading_space = LeadingSpace::Keep;
    Ok((engine, Settings { ids, add_space_prefix, clean_spaces, pieces, leading_space }))
}

/// The special ids and flags the metadata sets over the defaults in `ids`; returns the
/// ids of the roles that `eog` would otherwise find by text.
fn read_special_ids(gguf: &GgufFile, n: usize, ids: &mut SpecialIds) -> Result<NamedIds> {
    let id = |key: &str| special_id(gguf, key, n);
    let keys: [(&str, &mut Option<u32>); 6] = [
        ("tokenizer.ggml.bos_token_id", &mut ids.bos),
        ("tokenizer.ggml.eos_token_id", &mut ids.eos),
        ("tokenizer.ggml.unknown_token_id", &mut ids.unk),
        ("tokenizer.ggml.seperator_token_id", &mut ids.sep),
        ("tokenizer.ggml.padding_token_id", &mut ids.pad),
        ("tokenizer.ggml.mask_token_id", &mut ids.mask),
    ];
    for (key, slot) in keys {
        if let Some(i) = id(key)? {
            *slot = Some(i);
        }
    }
    let mut named = NamedIds {
        eos: ids.eos,
        eot: id("tokenizer.ggml.eot_token_id")?,
        eom: id("tokenizer.ggml.eom_token_id")?,
        fim: [None; 6],
    };
    for (slot, what) in named.fim.iter_mut().zip(["pre", "suf", "mid", "pad", "rep", "sep"]) {
        *slot = id(&format!("tokenizer.ggml.fim_{what}_token_id"))?;
    }
    // The deprecated names of the first three.
    for (slot, key) in named.fim.iter_mut().zip(["prefix", "suffix", "middle"]) {
        if let Some(i) = id(&format!("tokenizer.ggml.{key}_token_id"))? {
            *slot = Some(i);
        }
    }
    ids.add_bos = optional_bool(gguf, "tokenizer.ggml.add_bos_token")?.unwrap_or(ids.add_bos);
    ids.add_eos = optional_bool(gguf, "tokenizer.ggml.add_eos_token")?.unwrap_or(ids.add_eos);
    ids.add_sep = optional_bool(gguf, "tokenizer.ggml.add_sep_token")?.unwrap_or(ids.add_sep);
    Ok(named)
}

/// Tokens, their kinds and scores, checked against each other.
fn read_vocab(gguf: &GgufFile) -> Result<Vocab> {
    let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
    let n = tokens.len();
    if n == 0 || n >= i32::MAX as usize {
        return Err(ModelError::Tokenizer(format!("`tokenizer.ggml.tokens` holds {n} tokens")));
    }
    let kinds = match gguf.get("tokenizer.ggml.token_type") {
        None => vec![TokenKind::Normal; n],
        Some(v) => {
            let types = v.as_array().and_then(|a| a.to_i64s()).ok_or_else(|| {
                ModelError::Tokenizer(format!("`tokenizer.ggml.token_type` is {}, not an integer array", v.type_name()))
            })?;
            same_length("tokenizer.ggml.token_type", types.len(), n)?;
            types.into_iter().map(TokenKind::from_gguf).collect()
        }
    };
    let scores = match gguf.get("tokenizer.ggml.scores") {
        None => Vec::new(),
        Some(v) => {
            let a = v.as_array();
            let scores = a.and_then(|a| a.to_f32s()).or_else(|| {
                Some(a?.to_i64s()?.into_iter().map(|s| s as f32).collect()) // llama.cpp reads i32 scores too
            });
            let scores = scores.ok_or_else(|| {
                ModelError::Tokenizer(format!("`tokenizer.ggml.scores` is {}, not a number array", v.type_name()))
            })?;
            same_length("tokenizer.ggml.scores", scores.len(), n)?;
            scores
        }
    };
    // As llama.cpp: an empty token text would be unmatchable; give it a placeholder.
    let texts: Vec<String> =
        tokens.iter().enumerate().map(|(i, t)| if t.is_empty() { format!("[EMPTY_{i}]") } else { t.clone() }).collect();
    let vocab = Vocab::new(texts, kinds, scores);
    // llama.cpp aborts on a repeated text (its id-to-text and text-to-id tables disagree).
    if let Some((first, i)) = vocab.first_repeat() {
        let t = vocab.text(i as u32).unwrap_or_default();
        return Err(ModelError::Tokenizer(format!("`tokenizer.ggml.tokens`: token {i} {t:?} repeats token {first}")));
    }
    Ok(vocab)
}

fn same_length(key: &str, len: usize, n: usize) -> Result<()> {
    if len == n {
        Ok(())
    } else {
        Err(ModelError::Tokenizer(format!("`{key}` has {len} entries for {n} tokens in `tokenizer.ggml.tokens`")))
    }
}

fn string_array<'g>(gguf: &'g GgufFile, key: &str) -> Result<&'g [String]> {
    let v = gguf.get_array(key)?;
    v.as_strings()
        .ok_or_else(|| ModelError::Tokenizer(format!("`{key}` is an array of {}, not of strings", v.type_name())))
}

fn optional_str<'g>(gguf: &'g GgufFile, key: &str) -> Result<Option<&'g str>> {
    gguf.get(key)
        .map(|v| v.as_str().ok_or_else(|| ModelError::Tokenizer(format!("`{key}` is {}, not a string", v.type_name()))))
        .transpose()
}

fn optional_bool(gguf: &GgufFile, key: &str) -> Result<Option<bool>> {
    gguf.get(key)
        .map(|v| v.as_bool().ok_or_else(|| ModelError::Tokenizer(format!("`{key}` is {}, not a bool", v.type_name()))))
        .transpose()
}

/// A special token id the metadata names: a non-negative integer inside the vocabulary.
fn special_id(gguf: &GgufFile, key: &str, n: usize) -> Result<Option<u32>> {
    let Some(v) = gguf.get(key) else { return Ok(None) };
    match v.as_u64() {
        Some(id) if (id as usize) < n => Ok(Some(id as u32)),
        Some(id) => Err(ModelError::Tokenizer(format!("`{key}` = {id} is outside the vocabulary of {n} tokens"))),
        None => Err(ModelError::Tokenizer(format!("`{key}` is {}, not a token id", v.summary()))),
    }
}
