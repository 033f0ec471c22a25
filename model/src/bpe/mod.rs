//! The tokenizer of pretrained LLMs: byte-level BPE, built with the `tokenizers` crate
//! from a GGUF file's vocabulary, merges and named pre-tokenizer (`from_gguf`), or from a
//! Hugging Face `tokenizer.json` (`from_file`).
//!
//! Encoding follows llama.cpp so that token ids equal its ids: the text is first split on
//! special tokens (`special`), each remaining piece is pre-tokenized by the regexes that
//! `tokenizer.ggml.pre` names (`pretokenize`) and merged by BPE, and BOS/EOS are added as
//! the metadata says. Decoding maps each token back to its bytes; `stream` does the same
//! one token at a time for generation.

pub mod byte_level;
mod hf_json;
pub(crate) use hf_json::is_byte_level;
pub mod pretokenize;
pub mod special;
mod stream;

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use special::{Fragment, SpecialToken, TokenKind};
use std::collections::{BTreeSet, HashMap};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::{
    Model, ModelWrapper, Normalizer, NormalizerWrapper, OffsetReferential, OffsetType, PreTokenizedString,
    PreTokenizer, PreTokenizerWrapper,
};

pub use stream::TokenStream;

/// Texts llama.cpp treats as end of generation wherever they are in the vocabulary
/// (`special_eog_ids`), besides the EOS/EOT/EOM ids the metadata names.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
];

/// A byte-level BPE tokenizer with its special tokens.
pub struct Tokenizer {
    /// Optional normalizer (only from `tokenizer.json`), pre-tokenizer and BPE model.
    normalizer: Option<NormalizerWrapper>,
    pre_tokenizer: Option<PreTokenizerWrapper>,
    model: ModelWrapper,
    /// Token text (in the byte-level alphabet for normal tokens) and kind, by id.
    texts: Vec<String>,
    kinds: Vec<TokenKind>,
    by_text: HashMap<String, u32>,
    /// Tokens split out of the text before BPE, longest first.
    specials: Vec<SpecialToken>,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    eog: BTreeSet<u32>,
}

/// Special ids and flags read from metadata, before the EOG set is derived.
struct SpecialIds {
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    /// Extra end-of-generation ids named by metadata (EOT, EOM, generation config).
    eog: Vec<u32>,
    add_bos: bool,
    add_eos: bool,
}

impl Tokenizer {
    /// The tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Tokenizer> {
        let model = gguf.get_str("tokenizer.ggml.model")?;
        match model {
            "gpt2" => {}
            "llama" => {
                return Err(ModelError::Unsupported(
                    "SentencePiece tokenizers (tokenizer.ggml.model = \"llama\") are not supported yet".into(),
                ))
            }
            other => return Err(ModelError::Unsupported(format!("tokenizer model `tokenizer.ggml.model = {other}`"))),
        }
        // llama.cpp falls back to "default" when the key is absent (old conversions).
        let pre_name = match gguf.get("tokenizer.ggml.pre") {
            Some(v) => v.as_str().ok_or_else(|| ModelError::Missing("`tokenizer.ggml.pre` is not a string".into()))?,
            None => "default",
        };
        let pre = pretokenize::lookup(pre_name)?;

        let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
        let n = tokens.len();
        if n == 0 || n > u32::MAX as usize {
            return Err(ModelError::Tokenizer(format!("vocabulary of {n} tokens")));
        }
        let kinds: Vec<TokenKind> = match gguf.get("tokenizer.ggml.token_type") {
            None => vec![TokenKind::Normal; n],
            Some(v) => {
                let types = v
                    .as_array()
                    .and_then(|a| a.to_i64s())
                    .ok_or_else(|| ModelError::Missing("`tokenizer.ggml.token_type` is not an integer array".into()))?;
                if types.len() != n {
                    return Err(ModelError::Tokenizer(format!("{} token types for {n} tokens", types.len())));
                }
                types.into_iter().map(TokenKind::from_gguf).collect()
            }
        };
        // As llama.cpp: an empty token text would be unmatchable; give it a placeholder.
        let texts: Vec<String> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| if t.is_empty() { format!("[EMPTY_{i}]") } else { t.clone() })
            .collect();

        let merges = string_array(gguf, "tokenizer.ggml.merges")?
            .iter()
            .map(|m| {
                // Split at the first space after the first character, as llama.cpp does.
                let at = m.char_indices().skip(1).find(|&(_, c)| c == ' ').map(|(i, _)| i);
                match at {
                    Some(i) => Ok((m[..i].to_string(), m[i + 1..].to_string())),
                    None => Err(ModelError::Tokenizer(format!("merge {m:?} is not two tokens"))),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: Vocab = texts.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre.ignore_merges)
            .build()
            .map_err(|e| ModelError::Tokenizer(format!("BPE from GGUF: {e}")))?;

        let id = |key: &str, default: Option<u32>| -> Option<u32> {
            // An id outside the vocabulary is ignored, as llama.cpp does (with a warning).
            match gguf.get(key).and_then(|v| v.as_u64()) {
                Some(id) if (id as usize) < n => Some(id as u32),
                _ => default.filter(|&d| (d as usize) < n),
            }
        };
        let flag = |key: &str, default: bool| gguf.get(key).and_then(|v| v.as_bool()).unwrap_or(default);
        let ids = SpecialIds {
            // llama.cpp's defaults for gpt2-type vocabularies.
            bos: id("tokenizer.ggml.bos_token_id", Some(11)),
            eos: id("tokenizer.ggml.eos_token_id", Some(11)),
            unk: id("tokenizer.ggml.unknown_token_id", None),
            pad: id("tokenizer.ggml.padding_token_id", None),
            eog: ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"]
                .iter()
                .filter_map(|k| id(k, None))
                .collect(),
            add_bos: flag("tokenizer.ggml.add_bos_token", pre.add_bos),
            add_eos: flag("tokenizer.ggml.add_eos_token", false),
        };
        let pre_tokenizer = pretokenize::build(pre)?;
        Ok(Self::assemble(None, Some(pre_tokenizer), ModelWrapper::BPE(bpe), texts, kinds, Vec::new(), ids))
    }

    /// The tokenizer of a Hugging Face model directory's `tokenizer.json` (byte-level BPE
    /// only). BOS/EOS come from `tokenizer_config.json` beside it when present, else from
    /// the post-processor's template.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Tokenizer> {
        hf_json::load(path.as_ref())
    }

    /// Everything after the vocabulary is known: the EOG set (tokens llama.cpp recognises
    /// by text become control tokens), the special-token table and the lookup map.
    fn assemble(
        normalizer: Option<NormalizerWrapper>,
        pre_tokenizer: Option<PreTokenizerWrapper>,
        model: ModelWrapper,
        texts: Vec<String>,
        mut kinds: Vec<TokenKind>,
        strip: Vec<(u32, bool, bool)>,
        ids: SpecialIds,
    ) -> Tokenizer {
        let mut by_text = HashMap::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            by_text.insert(t.clone(), i as u32);
        }
        // As llama.cpp: the EOG texts are control tokens even when the file says otherwise.
        let mut eog: BTreeSet<u32> = ids.eog.iter().copied().chain(ids.eos).collect();
        for t in EOG_TEXTS {
            if let Some(&i) = by_text.get(*t) {
                eog.insert(i);
                if !kinds[i as usize].is_special() {
                    kinds[i as usize] = TokenKind::Control;
                }
            }
        }
        let mut specials: Vec<SpecialToken> = kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| matches!(k, TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown))
            .map(|(i, &k)| SpecialToken {
                id: i as u32,
                text: texts[i].clone(),
                always: k == TokenKind::UserDefined,
                lstrip: false,
                rstrip: false,
            })
            .collect();
        for (id, l, r) in strip {
            if let Some(s) = specials.iter_mut().find(|s| s.id == id) {
                s.lstrip = l;
                s.rstrip = r;
            }
        }
        specials.sort_by_key(|s| std::cmp::Reverse(s.text.len()));
        Tokenizer {
            normalizer,
            pre_tokenizer,
            model,
            texts,
            kinds,
            by_text,
            specials,
            bos: ids.bos,
            eos: ids.eos,
            unk: ids.unk,
            pad: ids.pad,
            add_bos: ids.add_bos,
            add_eos: ids.add_eos,
            eog,
        }
    }

    /// Token ids of `text`. `add_special`: add BOS/EOS where the model asks for them;
    /// `parse_special`: text such as `<|im_start|>` becomes its control token (otherwise it
    /// is tokenized as plain text). Empty text gives no tokens besides BOS/EOS.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.push(self.bos.ok_or_else(|| ModelError::Tokenizer("the model adds BOS but has no BOS token".into()))?);
        }
        for fragment in special::partition(text, &self.specials, parse_special) {
            match fragment {
                Fragment::Text(t) => self.encode_plain(t, &mut out)?,
                Fragment::Token(id) => out.push(id),
            }
        }
        if add_special && self.add_eos {
            out.push(self.eos.ok_or_else(|| ModelError::Tokenizer("the model adds EOS but has no EOS token".into()))?);
        }
        Ok(out)
    }

    /// Text without special tokens: normalize, pre-tokenize, BPE each piece.
    fn encode_plain(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
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

    /// The text of `ids`. `skip_special` leaves out control tokens (BOS, `<|im_end|>`, ...).
    /// Bytes that are not UTF-8 (a character cut off at either end) become U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            self.append_piece(id, skip_special, &mut bytes)?;
        }
        Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// A decoder for generated tokens, one at a time.
    pub fn stream(&self, skip_special: bool) -> TokenStream<'_> {
        TokenStream::new(self, skip_special)
    }

    /// Append the bytes of one token (llama.cpp's `token_to_piece`).
    fn append_piece(&self, id: u32, skip_special: bool, out: &mut Vec<u8>) -> Result<()> {
        let kind = *self.kinds.get(id as usize).ok_or_else(|| {
            ModelError::Tokenizer(format!("token id {id} is out of range for a vocabulary of {}", self.texts.len()))
        })?;
        let text = &self.texts[id as usize];
        match kind {
            TokenKind::Normal => byte_level::decode_into(text, out),
            TokenKind::Control | TokenKind::Unknown if skip_special => {}
            TokenKind::Control | TokenKind::Unknown | TokenKind::UserDefined => out.extend_from_slice(text.as_bytes()),
            TokenKind::Unused | TokenKind::Byte => {}
        }
        Ok(())
    }

    pub fn vocab_size(&self) -> usize {
        self.texts.len()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether `encode(.., add_special = true, ..)` starts with BOS / ends with EOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    pub fn adds_eos(&self) -> bool {
        self.add_eos
    }

    /// The id of a token given its vocabulary text (byte-level alphabet for normal tokens:
    /// `"Ġworld"`, and literal text for special tokens: `"<|im_end|>"`).
    pub fn token_to_id(&self, text: &str) -> Option<u32> {
        self.by_text.get(text).copied()
    }

    /// A token's vocabulary text.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(String::as_str)
    }

    pub fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }

    /// EOS and the tokens llama.cpp ends generation on (`<|im_end|>`, `<|endoftext|>`,
    /// `<|eot_id|>`, `<end_of_turn>`, ... when the vocabulary has them).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    /// The end-of-generation ids, ascending.
    pub fn end_of_generation_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.eog.iter().copied()
    }
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.texts.len())
            .field("specials", &self.specials.len())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .field("eog", &self.eog)
            .finish()
    }
}

fn string_array<'g>(gguf: &'g GgufFile, key: &str) -> Result<&'g [String]> {
    gguf.get_array(key)?.as_strings().ok_or_else(|| ModelError::Missing(format!("`{key}` is not a string array")))
}
