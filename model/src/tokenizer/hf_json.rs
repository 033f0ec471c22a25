//! `Tokenizer::from_file`: a Hugging Face `tokenizer.json`, with `tokenizer_config.json`
//! and `generation_config.json` from the same directory when they are there.
//!
//! The normalizer, pre-tokenizer and model are the `tokenizers` crate's own, deserialized
//! from the file; added tokens become control tokens (`"special": true`) or user-defined
//! ones, split out of the text before the model runs, as for GGUF.

use super::eog::NamedIds;
use super::special::TokenKind;
use super::{Engine, PieceStyle, Settings, SpecialIds, Tokenizer, Vocab};
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
    if !is_byte_level(json.get("decoder")) {
        return Err(ModelError::Unsupported(format!(
            "{}: only byte-level BPE tokenizers (decoder \"ByteLevel\") are supported",
            path.display()
        )));
    }
    let model: ModelWrapper =
        serde_json::from_value(json.get("model").cloned().unwrap_or(Value::Null)).map_err(|e| bad("model", &e))?;
    let normalizer: Option<NormalizerWrapper> =
        serde_json::from_value(json.get("normalizer").cloned().unwrap_or(Value::Null))
            .map_err(|e| bad("normalizer", &e))?;
    let pre_tokenizer: Option<PreTokenizerWrapper> =
        serde_json::from_value(json.get("pre_tokenizer").cloned().unwrap_or(Value::Null))
            .map_err(|e| bad("pre_tokenizer", &e))?;

    // The model's vocabulary, then the added tokens (which may reuse or extend its ids).
    let vocab = model.get_vocab();
    let added: Vec<AddedToken> = match json.get("added_tokens") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| bad("added_tokens", &e))?,
        None => Vec::new(),
    };
    let n = vocab.values().chain(added.iter().map(|a| &a.id)).max().map_or(0, |&m| m as usize + 1);
    if n == 0 {
        return Err(bad("vocabulary", &"it is empty"));
    }
    let mut texts = vec![String::new(); n];
    let mut kinds = vec![TokenKind::Unused; n];
    for (text, id) in vocab {
        texts[id as usize] = text;
        kinds[id as usize] = TokenKind::Normal;
    }
    let mut strip = Vec::new();
    for a in &added {
        texts[a.id as usize] = a.content.clone();
        kinds[a.id as usize] = if a.special { TokenKind::Control } else { TokenKind::UserDefined };
        if a.lstrip || a.rstrip {
            strip.push((a.id, a.lstrip, a.rstrip));
        }
    }

    let dir = path.parent().unwrap_or(Path::new("."));
    let config = read_json(&dir.join("tokenizer_config.json")).ok();
    let generation = read_json(&dir.join("generation_config.json")).ok();
    let id_of = |name: &str| -> Option<u32> {
        let token = config.as_ref()?.get(name)?;
        let text = token.as_str().or_else(|| token.get("content")?.as_str())?;
        texts.iter().position(|t| t == text).map(|i| i as u32)
    };
    let flag = |name: &str| config.as_ref()?.get(name)?.as_bool();
    let (template_bos, template_eos) = template_specials(json.get("post_processor"), &texts);
    let bos = id_of("bos_token").or(template_bos);
    let eos = id_of("eos_token").or(template_eos);
    let mut eog = Vec::new();
    if let Some(v) = generation.as_ref().and_then(|g| g.get("eos_token_id")) {
        let ids = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
        eog.extend(ids.iter().filter_map(Value::as_u64).filter(|&i| (i as usize) < n).map(|i| i as u32));
    }
    let ids = SpecialIds {
        bos,
        eos,
        unk: id_of("unk_token"),
        pad: id_of("pad_token"),
        sep: id_of("sep_token"),
        mask: id_of("mask_token"),
        add_bos: flag("add_bos_token").unwrap_or(template_bos.is_some()),
        add_eos: flag("add_eos_token").unwrap_or(template_eos.is_some()),
        add_sep: false,
    };
    let named = NamedIds { eos, ..NamedIds::default() };
    let settings = Settings { ids, add_space_prefix: false, clean_spaces: false, pieces: PieceStyle::ByteLevel };
    let pipeline = Pipeline { normalizer, pre_tokenizer, model };
    let vocab = Vocab::new(texts, kinds, Vec::new());
    let mut tok = Tokenizer::assemble(vocab, Engine::Hf(Box::new(pipeline)), settings, named, |_| strip);
    // generation_config.json's end-of-generation ids.
    tok.eog.extend(eog);
    Ok(tok)
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

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ModelError::Io { path: path.display().to_string(), source })?;
    serde_json::from_str(&text).map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))
}

/// `"ByteLevel"`, alone or inside a `"Sequence"`.
pub(crate) fn is_byte_level(decoder: Option<&Value>) -> bool {
    let Some(d) = decoder else { return false };
    match d.get("type").and_then(Value::as_str) {
        Some("ByteLevel") => true,
        Some("Sequence") => {
            d.get("decoders").and_then(Value::as_array).is_some_and(|ds| ds.iter().any(|x| is_byte_level(Some(x))))
        }
        _ => false,
    }
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
