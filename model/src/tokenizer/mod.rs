//! Tokenizers. `CharTokenizer` is the character-level one of the demo; `Tokenizer` is
//! the tokenizer of pretrained LLMs, built from a GGUF file's `tokenizer.ggml.*` metadata
//! (`from_gguf`) or a Hugging Face directory (`from_hf_dir`, `from_file`).
//!
//! From GGUF, tokenizing follows llama.cpp's `src/llama-vocab.cpp` so that token ids
//! equal llama.cpp's: the text is first split on special tokens (`special`), then each
//! remaining fragment goes to the vocabulary's family: SentencePiece (`spm`, model
//! `llama`), byte-pair merging after the pre-tokenizer `tokenizer.ggml.pre` names (`bpe`,
//! `pretokenize`; models `gpt2` and `gemma4`) or WordPiece (`wordpiece`, model `bert`).
//! BOS/EOS are added as the metadata says. From `tokenizer.json`, the `tokenizers` crate
//! runs the file's own pipeline (`hf_json`).
//!
//! Decoding maps each token back to its bytes (llama.cpp's `token_to_piece`:
//! GPT-2's byte alphabet, or `▁` as a space, or a `<0xNN>` byte); `stream` does the same
//! one token at a time for generation without ever splitting a UTF-8 character.

mod bpe;
pub mod byte_level;
mod character;
mod decode;
mod eog;
mod gguf;
mod hf_json;
pub mod pretokenize;
mod sentencepiece;
pub mod special;
mod spm;
mod stream;
mod symbols;
mod unicode;
mod vocab;
mod wordpiece;

pub use character::{CharTokenizer, TokenizerError};
pub(crate) use hf_json::is_byte_level;
pub use stream::TokenStream;

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use special::{Fragment, SpecialToken, TokenKind};
use std::collections::BTreeSet;
use std::path::Path;
use vocab::Vocab;

/// A pretrained model's tokenizer with its special tokens.
pub struct Tokenizer {
    vocab: Vocab,
    engine: Engine,
    /// Tokens split out of the text before the engine runs, longest first.
    specials: Vec<SpecialToken>,
    settings: Settings,
    eog: BTreeSet<u32>,
}

/// The algorithm that turns a text fragment without special tokens into ids.
enum Engine {
    /// SentencePiece BPE by token scores (GGUF `llama`).
    Spm,
    /// Merges by rank after a pre-tokenizer (GGUF `gpt2`, `gemma4`).
    Bpe(Box<bpe::Bpe>),
    /// Greedy longest match (GGUF `bert`).
    WordPiece(wordpiece::WordPiece),
    /// A `tokenizer.json` pipeline run by the `tokenizers` crate.
    Hf(Box<hf_json::Pipeline>),
}

/// How a normal token's text becomes bytes when decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PieceStyle {
    /// GPT-2's byte alphabet (`Ġ` is a space).
    ByteLevel,
    /// UTF-8 text with `▁` for a space (SentencePiece, WordPiece as llama.cpp converts it).
    Spaced,
    /// Hugging Face's WordPiece decoder: `##` joins a token to the one before, any other
    /// token after the first gets a space; `cleanup` tidies each token's spaces.
    WordPiece { cleanup: bool },
}

/// Which leading space decoding drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LeadingSpace {
    Keep,
    /// One space the first token starts with (llama.cpp's `remove_space` for
    /// SentencePiece vocabularies).
    OfFirstToken,
    /// One space the decoded text starts with (a `tokenizer.json` decoder ending in
    /// `Strip`, or a `Metaspace` one), after special tokens are skipped.
    OfText,
}

/// Special ids and flags, read from metadata.
#[derive(Debug, Default)]
struct SpecialIds {
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    sep: Option<u32>,
    mask: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_sep: bool,
}

/// Everything besides the vocabulary and the engine that encoding and decoding follow.
#[derive(Debug)]
struct Settings {
    ids: SpecialIds,
    /// SentencePiece: a space goes before text at the start and after a special token.
    add_space_prefix: bool,
    /// Decoding removes the space before `.,!?` and some contractions (llama.cpp's
    /// `clean_spaces`).
    clean_spaces: bool,
    pieces: PieceStyle,
    leading_space: LeadingSpace,
}

impl Tokenizer {
    /// The tokenizer described by a GGUF file's `tokenizer.ggml.*` metadata (a full
    /// model or a vocabulary-only file such as llama.cpp's `ggml-vocab-*.gguf`).
    pub fn from_gguf(gguf: &GgufFile) -> Result<Tokenizer> {
        gguf::load(gguf)
    }

    /// The tokenizer of a Hugging Face model directory: its `tokenizer.json` (what
    /// transformers uses), else its SentencePiece `tokenizer.model` (BPE models, run as
    /// llama.cpp runs them after conversion); with `tokenizer_config.json` and
    /// `generation_config.json` beside it when present.
    pub fn from_hf_dir(dir: impl AsRef<Path>) -> Result<Tokenizer> {
        let dir = dir.as_ref();
        let json = dir.join("tokenizer.json");
        if !json.is_file() && dir.join("tokenizer.model").is_file() {
            return sentencepiece::load(dir);
        }
        Self::from_file(json)
    }

    /// The tokenizer of a Hugging Face `tokenizer.json` file. BOS/EOS come from
    /// `tokenizer_config.json` beside it when present, else from the post-processor's
    /// template.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        hf_json::load(path.as_ref())
    }

    /// Everything after the vocabulary is known: llama.cpp's corrections of special
    /// tokens (`eog`) and the table of tokens split out of the text.
    fn assemble(
        mut vocab: Vocab,
        engine: Engine,
        settings: Settings,
        named: eog::NamedIds,
        strip: impl FnOnce(&Vocab) -> Vec<(u32, bool, bool)>,
    ) -> Tokenizer {
        let eog = eog::fix_up(&mut vocab, &named);
        let strip = strip(&vocab);
        let mut specials: Vec<SpecialToken> = vocab
            .kinds()
            .iter()
            .enumerate()
            .filter(|(_, k)| matches!(k, TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown))
            .map(|(i, &k)| SpecialToken {
                id: i as u32,
                text: vocab.texts()[i].clone(),
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
        Tokenizer { vocab, engine, specials, settings, eog }
    }

    /// Token ids of `text`. `add_special`: add BOS/EOS where the model asks for them
    /// (WordPiece: CLS and SEP); `parse_special`: text such as `<|im_start|>` becomes its
    /// control token (otherwise it is tokenized as plain text). Empty text gives no
    /// tokens besides BOS/EOS.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        let ids = &self.settings.ids;
        let wordpiece = matches!(self.engine, Engine::WordPiece(_));
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        // llama.cpp: WordPiece always wraps the text in CLS (its BOS) and SEP.
        if add_special && (ids.add_bos || wordpiece) {
            out.push(ids.bos.ok_or_else(|| ModelError::Tokenizer("the model adds BOS but has no BOS token".into()))?);
        }
        let mut after_special = true;
        for fragment in special::partition(text, &self.specials, parse_special) {
            match fragment {
                Fragment::Text(t) => self.encode_fragment(t, after_special, &mut out)?,
                Fragment::Token(id) => out.push(id),
            }
            after_special = matches!(fragment, Fragment::Token(_));
        }
        if add_special && wordpiece {
            out.push(ids.sep.ok_or_else(|| ModelError::Tokenizer("the model adds SEP but has no SEP token".into()))?);
        } else if add_special && ids.add_eos {
            out.push(ids.eos.ok_or_else(|| ModelError::Tokenizer("the model adds EOS but has no EOS token".into()))?);
        }
        Ok(out)
    }

    /// Token ids of a text given as pieces, each with its own `parse_special` (a chat
    /// template's text parses them, message content need not). Special tokens are split
    /// out of the pieces that parse them; the text between special tokens is encoded as
    /// one run across piece boundaries, so the ids equal `encode(whole, false, true)`
    /// whenever the plain pieces hold no special-token text. No BOS/EOS is added.
    pub fn encode_pieces(&self, pieces: &[(&str, bool)]) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        let mut run = String::new();
        // Every run starts the text or follows a special token, as `encode`'s fragments do.
        for &(text, parse_special) in pieces {
            for fragment in special::partition(text, &self.specials, parse_special) {
                match fragment {
                    Fragment::Text(t) => run.push_str(t),
                    Fragment::Token(id) => {
                        if !run.is_empty() {
                            self.encode_fragment(&std::mem::take(&mut run), true, &mut out)?;
                        }
                        out.push(id);
                    }
                }
            }
        }
        if !run.is_empty() {
            self.encode_fragment(&run, true, &mut out)?;
        }
        Ok(out)
    }

    /// A fragment without special tokens. `after_special`: it starts the text or follows
    /// a special token (SentencePiece then puts a space in front).
    fn encode_fragment(&self, text: &str, after_special: bool, out: &mut Vec<u32>) -> Result<()> {
        let unk = self.settings.ids.unk;
        match &self.engine {
            Engine::Spm => {
                let prefix = if self.settings.add_space_prefix && after_special { " " } else { "" };
                let escaped = format!("{prefix}{text}").replace(' ', "\u{2581}");
                spm::encode(&escaped, &self.vocab, unk, out)
            }
            Engine::Bpe(b) => b.encode(text, &self.vocab, out),
            Engine::WordPiece(w) => w.encode(text, &self.vocab, unk, out),
            Engine::Hf(p) => p.encode(text, out),
        }
    }

    /// The text of `ids` (llama.cpp's `detokenize`). `skip_special` leaves out control
    /// tokens (BOS, `<|im_end|>`, ...). A SentencePiece text loses the space its first
    /// token starts with (the one encoding added); vocabularies that ask for it get
    /// llama.cpp's space clean-up (`" ,"` -> `","`). Bytes that are not UTF-8 (a
    /// character cut off at either end) become U+FFFD.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        let mut first = true;
        for (i, &id) in ids.iter().enumerate() {
            let start = bytes.len();
            let kept = self.append_piece(id, skip_special, first, &mut bytes)?;
            first &= !kept;
            if i == 0 && self.settings.leading_space == LeadingSpace::OfFirstToken && bytes.get(start) == Some(&b' ') {
                bytes.remove(start);
            }
        }
        if self.settings.leading_space == LeadingSpace::OfText && bytes.first() == Some(&b' ') {
            bytes.remove(0);
        }
        if self.settings.clean_spaces {
            decode::clean_spaces(&mut bytes);
        }
        Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// A decoder for generated tokens, one at a time.
    pub fn stream(&self, skip_special: bool) -> TokenStream<'_> {
        TokenStream::new(self, skip_special)
    }

    /// The bytes one token stands for (llama.cpp's `token_to_piece`; `special`: control
    /// tokens give their text rather than nothing). A byte token or part of a multi-byte
    /// character may be no UTF-8 on its own.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.append_piece(id, !special, false, &mut out)?;
        Ok(out)
    }

    /// Append one token's bytes (`first`: no token was kept before it); returns whether
    /// it was kept (not a skipped special token).
    fn append_piece(&self, id: u32, skip_special: bool, first: bool, out: &mut Vec<u8>) -> Result<bool> {
        let kind = self.vocab.kind(id).ok_or_else(|| {
            ModelError::Tokenizer(format!("token id {id} is out of range for a vocabulary of {}", self.vocab.len()))
        })?;
        let text = self.vocab.text(id).expect("checked above");
        Ok(decode::append_piece(text, kind, self.settings.pieces, skip_special, first, out))
    }

    /// The family of the vocabulary, as llama.cpp names it (`SPM`, `BPE`, `WPM`), or
    /// `tokenizer.json` for one run by the `tokenizers` crate.
    pub fn family(&self) -> &'static str {
        match self.engine {
            Engine::Spm => "SPM",
            Engine::Bpe(_) => "BPE",
            Engine::WordPiece(_) => "WPM",
            Engine::Hf(_) => "tokenizer.json",
        }
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.settings.ids.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.settings.ids.eos
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.settings.ids.unk
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.settings.ids.pad
    }

    /// The separator (BERT's `[SEP]`).
    pub fn sep_id(&self) -> Option<u32> {
        self.settings.ids.sep
    }

    pub fn mask_id(&self) -> Option<u32> {
        self.settings.ids.mask
    }

    /// Whether `encode(.., add_special = true, ..)` starts with BOS / ends with EOS.
    pub fn adds_bos(&self) -> bool {
        self.settings.ids.add_bos
    }

    pub fn adds_eos(&self) -> bool {
        self.settings.ids.add_eos
    }

    /// Whether the model wants SEP between the texts of a pair (rerankers).
    pub fn adds_sep(&self) -> bool {
        self.settings.ids.add_sep
    }

    /// The id of a token given its vocabulary text (byte-level alphabet for byte-level
    /// BPE: `"Ġworld"`; `▁` for SentencePiece: `"▁world"`; literal text for special
    /// tokens: `"<|im_end|>"`).
    pub fn token_to_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// A token's vocabulary text.
    pub fn id_to_token(&self, id: u32) -> Option<&str> {
        self.vocab.text(id)
    }

    pub fn token_kind(&self, id: u32) -> Option<TokenKind> {
        self.vocab.kind(id)
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
            .field("family", &self.family())
            .field("vocab_size", &self.vocab.len())
            .field("specials", &self.specials.len())
            .field("settings", &self.settings)
            .field("eog", &self.eog)
            .finish()
    }
}
