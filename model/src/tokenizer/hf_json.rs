//! `Tokenizer::from_file`: a Hugging Face `tokenizer.json`, with `tokenizer_config.json`
//! and `generation_config.json` from the same directory when they are there.
//!
//! The normalizer, pre-tokenizer and model are the `tokenizers` crate's own, deserialized
//! from the file (BPE, WordPiece, Unigram, ...); added tokens become control tokens
//! (`"special": true`) or user-defined ones, split out of the text before the model runs,
//! as for GGUF. Decoding follows the file's decoder (`decoding`): GPT-2's byte alphabet,
//! SentencePiece's `▁` with byte fallback, or WordPiece's `##`.

use super::eog::NamedIds;
use super::special::TokenKind;
use super::{Engine, LeadingSpace, PieceStyle, Settings, SpecialIds, Tokenizer, Vocab};
use crate::error::{ModelError, Result};
use serde_json::Value;
use std::path::Path;
use tokenizers::{
    Model, ModelWrapper, Normalizer, NormalizerWrapper, OffsetReferential, OffsetType, PreTokenizedString,
    PreTokenizer, PreTokenizerWrapper,
};

/// The file's normalizer, pre-tokenizer and model.
pub struct Pipeline {
    normalizer: Option<NormalizerWrapper>,
    pre_tokenizer: Option<PreTokenizerWrapper>,
    model: ModelWrapper,
}

impl Pipeline {
    /// Append the tokens of a text fragment without special tokens.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        let hf = |e: tokenizers::Error| ModelError::Tokenizer(e.to_string());
        let mut pieces = PreTokenizedString::from(text);
        if let Some(n) = &self.normalizer {
            pieces.normalize(|s| n.normalize(s)).map_err(hf)?;
        }
        if let Some(p) = &self.pre_tokenizer {
            p.pre_tokenize(&mut pieces).map_err(hf)?;
        }
        pieces.tokenize(|s| self.model.tokenize(s.get())).map_err(hf)?;
        for (_, _, tokens) in pieces.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            out.extend(tokens.iter().flatten().map(|t| t.id));
        }
        Ok(())
    }
}

pub fn load(path: &Path) -> Result<Tokenizer> {
    let json = read_json(path)?;
    let bad = |what: &str, e: &dyn std::fmt::Display| ModelError::Tokenizer(format!("{}: {what}: {e}", path.display()));
    let (pieces, leading_space) = decoding(json.get("decoder")).map_err(|e| bad("decoder", &e))?;
    let model: ModelWrapper =
        serde_json::from_value(json.get("model").cloned().unwrap_or(Value::Null)).map_err(|e| bad("model", &e))?;
    let normalizer: Option<NormalizerWrapper> =
        serde_json::from_value(json.get("normalizer").cloned().unwrap_or(Value::Null))
            .map_err(|e| bad("normalizer", &e))?;
    let pre_tokenizer: Option<PreTokenizerWrapper> =
        serde_json::from_value(json.get("pre_tokenizer").cloned().unwrap_or(Value::Null))
            .map_err(|e| bad("pre_tokenizer", &e))?;
    let added: Vec<AddedToken> = match json.get("added_tokens") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| bad("added_tokens", &e))?,
        None => Vec::new(),
    };
    let byte_fallback = json.get("model").and_then(|m| m.get("byte_fallback")).and_then(Value::as_bool) == Some(true);
    let (texts, kinds) = token_table(&model, &added, byte_fallback).map_err(|e| bad("vocabulary", &e))?;
    let strip: Vec<(u32, bool, bool)> =
        added.iter().filter(|a| a.lstrip || a.rstrip).map(|a| (a.id, a.lstrip, a.rstrip)).collect();

    let dir = path.parent().unwrap_or(Path::new("."));
    let (ids, eog) = special_ids(dir, json.get("post_processor"), &texts);
    let named = NamedIds { eos: ids.eos, ..NamedIds::default() };
    let settings = Settings { ids, add_space_prefix: false, clean_spaces: false, pieces, leading_space };
    let pipeline = Pipeline { normalizer, pre_tokenizer, model };
    let vocab = Vocab::new(texts, kinds, Vec::new());
    let mut tok = Tokenizer::assemble(vocab, Engine::Hf(Box::new(pipeline)), settings, named, |_| strip);
    // generation_config.json's end-of-generation ids.
    tok.eog.extend(eog);
    Ok(tok)
}

/// Texts and kinds by id: the model's vocabulary, then the added tokens (which may
/// reuse or extend its ids): control tokens where `"special": true`, user-defined ones
/// otherwise. With byte fallback, the `<0xNN>` tokens are byte tokens. An error when empty,
/// or when an id lies so far beyond the number of tokens (a hostile or broken file) that
/// the table would be huge.
fn token_table(
    model: &ModelWrapper,
    added: &[AddedToken],
    byte_fallback: bool,
) -> std::result::Result<(Vec<String>, Vec<TokenKind>), String> {
    let vocab = model.get_vocab();
    let n = vocab.values().chain(added.iter().map(|a| &a.id)).max().map(|&m| m as usize + 1);
    let n = n.ok_or("it is empty")?;
    let tokens = vocab.len() + added.len();
    if n > tokens + MAX_UNUSED_IDS {
        return Err(format!(
            "token id {} with only {tokens} tokens (at most {MAX_UNUSED_IDS} ids may be unused)",
            n - 1
        ));
    }
    let mut texts = vec![String::new(); n];
    let mut kinds = vec![TokenKind::Unused; n];
    for (text, id) in vocab {
        let byte = byte_fallback && text.len() == 6 && text.starts_with("<0x") && text.ends_with('>');
        kinds[id as usize] = if byte { TokenKind::Byte } else { TokenKind::Normal };
        texts[id as usize] = text;
    }
    for a in added {
        texts[a.id as usize] = a.content.clone();
        kinds[a.id as usize] = if a.special { TokenKind::Control } else { TokenKind::UserDefined };
    }
    Ok((texts, kinds))
}

/// Ids a vocabulary may leave unused (real files leave none, or a few reserved ones).
const MAX_UNUSED_IDS: usize = 1 << 16;

/// BOS/EOS and friends from `tokenizer_config.json` (else the post-processor's template),
/// and the extra end-of-generation ids of `generation_config.json`.
fn special_ids(dir: &Path, post_processor: Option<&Value>, texts: &[String]) -> (SpecialIds, Vec<u32>) {
    let (bos, eos) = template_specials(post_processor, texts);
    let mut ids = SpecialIds { bos, eos, add_bos: bos.is_some(), add_eos: eos.is_some(), ..SpecialIds::default() };
    apply_tokenizer_config(dir, texts, &mut ids);
    (ids, generation_eog(dir, texts.len()))
}

/// The special tokens `tokenizer_config.json` names (a string or `{"content": ...}`) and
/// its `add_bos_token` / `add_eos_token`, over `ids`.
pub fn apply_tokenizer_config(dir: &Path, texts: &[String], ids: &mut SpecialIds) {
    let Ok(config) = read_json(&dir.join("tokenizer_config.json")) else { return };
    let id_of = |name: &str| -> Option<u32> {
        let token = config.get(name)?;
        let text = token.as_str().or_else(|| token.get("content")?.as_str())?;
        texts.iter().position(|t| t == text).map(|i| i as u32)
    };
    let slots = [
        ("bos_token", &mut ids.bos),
        ("eos_token", &mut ids.eos),
        ("unk_token", &mut ids.unk),
        ("pad_token", &mut ids.pad),
        ("sep_token", &mut ids.sep),
        ("mask_token", &mut ids.mask),
    ];
    for (name, slot) in slots {
        if let Some(id) = id_of(name) {
            *slot = Some(id);
        }
    }
    let flag = |name: &str| config.get(name).and_then(Value::as_bool);
    ids.add_bos = flag("add_bos_token").unwrap_or(ids.add_bos);
    ids.add_eos = flag("add_eos_token").unwrap_or(ids.add_eos);
}

/// `generation_config.json`'s `eos_token_id` (one id or a list).
pub fn generation_eog(dir: &Path, n: usize) -> Vec<u32> {
    let Ok(generation) = read_json(&dir.join("generation_config.json")) else { return Vec::new() };
    let Some(v) = generation.get("eos_token_id") else { return Vec::new() };
    let ids = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
    ids.iter().filter_map(Value::as_u64).filter(|&i| (i as usize) < n).map(|i| i as u32).collect()
}

/// How the file's decoder turns tokens into text, in the terms of `decode.rs`: GPT-2's
/// byte alphabet (`ByteLevel`), `▁` as a space (`Replace` + `ByteFallback` + `Strip`
/// as Llama and Gemma write it, or `Metaspace`), or `WordPiece`'s `##` joins.
fn decoding(decoder: Option<&Value>) -> std::result::Result<(PieceStyle, LeadingSpace), String> {
    let mut steps = Vec::new();
    flatten_decoders(decoder, &mut steps);
    let ty = |d: &Value| d.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    let types: Vec<String> = steps.iter().map(|d| ty(d)).collect();
    if is_byte_level(decoder) {
        return Ok((PieceStyle::ByteLevel, LeadingSpace::Keep));
    }
    if let Some(wp) = steps.iter().find(|d| ty(d) == "WordPiece") {
        let prefix = wp.get("prefix").and_then(Value::as_str).unwrap_or("##");
        if prefix != "##" {
            return Err(format!("a WordPiece decoder with prefix {prefix:?} (only \"##\" is supported)"));
        }
        let cleanup = wp.get("cleanup").and_then(Value::as_bool).unwrap_or(true);
        return Ok((PieceStyle::WordPiece { cleanup }, LeadingSpace::Keep));
    }
    if let Some(ms) = steps.iter().find(|d| ty(d) == "Metaspace") {
        let never = ms.get("prepend_scheme").and_then(Value::as_str) == Some("never")
            || ms.get("add_prefix_space").and_then(Value::as_bool) == Some(false);
        return Ok((PieceStyle::Spaced, if never { LeadingSpace::Keep } else { LeadingSpace::OfText }));
    }
    let replaces_meta = steps.iter().any(|d| {
        ty(d) == "Replace" && d.get("pattern").and_then(|p| p.get("String")).and_then(Value::as_str) == Some("\u{2581}")
    });
    if replaces_meta {
        let strips = steps.iter().any(|d| {
            ty(d) == "Strip"
                && d.get("content").and_then(Value::as_str) == Some(" ")
                && d.get("start").and_then(Value::as_u64).unwrap_or(0) > 0
        });
        return Ok((PieceStyle::Spaced, if strips { LeadingSpace::OfText } else { LeadingSpace::Keep }));
    }
    Err(format!(
        "decoder {:?} is not supported (supported: ByteLevel, WordPiece, Metaspace, Replace(\"\u{2581}\", \" \"))",
        types
    ))
}

fn flatten_decoders<'a>(d: Option<&'a Value>, out: &mut Vec<&'a Value>) {
    let Some(d) = d else { return };
    match d.get("decoders").and_then(Value::as_array) {
        Some(inner) if d.get("type").and_then(Value::as_str) == Some("Sequence") => {
            inner.iter().for_each(|x| flatten_decoders(Some(x), out))
        }
        _ => out.push(d),
    }
}

#[derive(serde::Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
    #[serde(default)]
    special: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
}

/// A JSON file as the Hugging Face directory reader reads one: regular files only, and
/// never more than its size limit.
fn read_json(path: &Path) -> Result<Value> {
    crate::hf::read_json(path)
}

/// `"ByteLevel"`, alone or inside a `"Sequence"`.
pub(crate) fn is_byte_level(decoder: Option<&Value>) -> bool {
    let mut steps = Vec::new();
    flatten_decoders(decoder, &mut steps);
    steps.iter().any(|d| d.get("type").and_then(Value::as_str) == Some("ByteLevel"))
}

/// The special tokens a `TemplateProcessing` post-processor puts before and after a single
/// sequence: those are the BOS and EOS the model expects.
fn template_specials(post: Option<&Value>, texts: &[String]) -> (Option<u32>, Option<u32>) {
    let Some(p) = post else { return (None, None) };
    match p.get("type").and_then(Value::as_str) {
        Some("Sequence") => {
            let inner = p.get("processors").and_then(Value::as_array);
            let found = inner.into_iter().flatten().map(|x| template_specials(Some(x), texts));
            found.into_iter().find(|r| *r != (None, None)).unwrap_or((None, None))
        }
        Some("TemplateProcessing") => {
            let Some(single) = p.get("single").and_then(Value::as_array) else { return (None, None) };
            let special = |item: &Value| -> Option<u32> {
                let text = item.get("SpecialToken")?.get("id")?.as_str()?;
                texts.iter().position(|t| t == text).map(|i| i as u32)
            };
            let seq = single.iter().position(|item| item.get("Sequence").is_some());
            match seq {
                Some(at) => (single[..at].first().and_then(special), single[at + 1..].last().and_then(special)),
                None => (None, None),
            }
        }
        _ => (None, None),
    }
}
