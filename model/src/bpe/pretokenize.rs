//! Pre-tokenizers named by `tokenizer.ggml.pre`, as llama.cpp's `llama-vocab.cpp` defines
//! them: each is a list of regexes applied in turn. The first splits the text into its
//! matches and the runs between them; each later regex splits every piece again (a
//! lookahead never sees past the end of its piece). The pieces are then byte-level
//! encoded and merged by BPE one at a time.
//!
//! The regexes are llama.cpp's own strings (for llama3/qwen2 that is its rewrite of
//! `(?i:'s|...)` into `(?:'[sS]|...)`), so that token ids match llama.cpp's.

use crate::error::{ModelError, Result};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{PreTokenizerWrapper, SplitDelimiterBehavior};

/// GPT-2's pattern, as llama.cpp writes it (without the trailing `|\s+`: whitespace that
/// nothing matches becomes a piece of its own anyway).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PORO: &str = r" ?[^(\s|.,!?…。，、।۔،)]+";

/// One llama.cpp pre-tokenizer type and the flags it implies.
#[derive(Debug, PartialEq)]
pub struct PreTokenizerSpec {
    /// llama.cpp's name for the type (`LLAMA_VOCAB_PRE_TYPE_<name>`, lower-cased).
    pub kind: &'static str,
    /// The `tokenizer.ggml.pre` values that select it.
    pub names: &'static [&'static str],
    pub regexes: &'static [&'static str],
    /// A piece that is itself a token is emitted whole, without running the merges.
    pub ignore_merges: bool,
    /// Whether BOS is added when `tokenizer.ggml.add_bos_token` is absent.
    pub add_bos: bool,
}

const fn spec(
    kind: &'static str,
    names: &'static [&'static str],
    regexes: &'static [&'static str],
) -> PreTokenizerSpec {
    PreTokenizerSpec { kind, names, regexes, ignore_merges: false, add_bos: false }
}

/// The supported types. A `tokenizer.ggml.pre` that is not listed is an error.
pub const PRE_TOKENIZERS: &[PreTokenizerSpec] = &[
    spec("default", &["default"], &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]),
    PreTokenizerSpec {
        ignore_merges: true,
        add_bos: true,
        ..spec(
            "llama3",
            &["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"],
            &[LLAMA3],
        )
    },
    spec("dbrx", &["dbrx", "smaug-bpe"], &[LLAMA3]),
    spec(
        "gpt2",
        &[
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "mpt",
            "olmo",
            "jais",
            "exaone4",
            "trillion",
            "granite-docling",
        ],
        &[GPT2],
    ),
    spec(
        "starcoder",
        &["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"],
        &[r"\p{N}", GPT2],
    ),
    spec("qwen2", &["qwen2", "deepseek-r1-qwen", "kormo", "stablelm2", "megrez", "hunyuan"], &[QWEN2]),
    spec("falcon", &["falcon"], &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"]),
    spec("deepseek-coder", &["deepseek-coder"], &["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", r"\p{N}"]),
    spec("poro", &["poro-chat", "bloom", "gpt3-finnish"], &[PORO]),
    spec("viking", &["viking"], &[PORO, r"\p{N}"]),
];

/// The spec for a `tokenizer.ggml.pre` value.
pub fn lookup(pre: &str) -> Result<&'static PreTokenizerSpec> {
    PRE_TOKENIZERS.iter().find(|s| s.names.contains(&pre)).ok_or_else(|| {
        let known: Vec<&str> = PRE_TOKENIZERS.iter().flat_map(|s| s.names.iter().copied()).collect();
        ModelError::Unsupported(format!(
            "pre-tokenizer `tokenizer.ggml.pre = {pre}` is not supported (supported: {})",
            known.join(", ")
        ))
    })
}

/// The `tokenizers` pipeline for a spec: each regex as an isolating split, then the
/// byte-level alphabet (without its own regex or a prefix space).
pub fn build(spec: &PreTokenizerSpec) -> Result<PreTokenizerWrapper> {
    let mut steps = Vec::with_capacity(spec.regexes.len() + 1);
    for re in spec.regexes {
        let split = Split::new(SplitPattern::Regex(re.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| ModelError::Tokenizer(format!("pre-tokenizer `{}`: regex {re:?}: {e}", spec.kind)))?;
        steps.push(PreTokenizerWrapper::Split(split));
    }
    steps.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)));
    Ok(PreTokenizerWrapper::Sequence(Sequence::new(steps)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_compiles_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in PRE_TOKENIZERS {
            build(s).unwrap();
            for n in s.names {
                assert!(seen.insert(*n), "{n} is listed twice");
            }
        }
    }

    #[test]
    fn lookup_by_name() {
        assert_eq!(lookup("smollm").unwrap().kind, "starcoder");
        assert_eq!(lookup("llama-bpe").unwrap().kind, "llama3");
        assert!(lookup("llama-bpe").unwrap().ignore_merges);
        assert_eq!(lookup("qwen2").unwrap().kind, "qwen2");
        assert_eq!(lookup("gpt-2").unwrap().kind, "gpt2");
        let err = lookup("no-such-pre").unwrap_err();
        assert!(matches!(err, ModelError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("no-such-pre"), "{err}");
    }
}
