//! Pre-tokenizers named by `tokenizer.ggml.pre`, as llama.cpp's `src/llama-vocab.cpp`
//! defines them (`llama_vocab::impl::load` maps the names to a type and its flags,
//! `llm_tokenizer_bpe` maps the type to its regexes): each is a list of regexes applied
//! in turn. The first splits the text into its matches and the runs between them; each
//! later regex splits every piece again (a lookahead never sees past the end of its
//! piece). The pieces ("words") are then merged by BPE one at a time.
//!
//! The regexes are llama.cpp's own strings, run as llama.cpp runs them: its hand-written
//! splitters where it has one for the string (`custom`), else the regex on llama.cpp's
//! "collapsed" text (`regex`), so that token ids match llama.cpp's.

mod custom;
mod regex;

use super::byte_level::byte_to_char;
use crate::error::{ModelError, Result};
use regex::SplitRegex;

/// GPT-2's pattern, as llama.cpp writes it (without the trailing `|\s+`: whitespace that
/// nothing matches becomes a piece of its own anyway).
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const NEWLINES: &str = r"[^\n]+|[\n]+";
const PORO: &str = " ?[^(\\s|.,!?\u{2026}\u{3002}\u{FF0C}\u{3001}\u{964}\u{6D4}\u{60C})]+";
const CJK: &str = "[\u{4E00}-\u{9FA5}\u{800}-\u{4E00}\u{AC00}-\u{D7FF}]+";
// Written with escapes: editors normalize some of these letters (U+1F7D becomes U+03CE).
const DEEPSEEK_LLM_LETTERS: &str = "\\s?[A-Za-z\u{B5}\u{C0}-\u{D6}\u{D8}-\u{F6}\u{F8}-\u{1BA}\u{1BC}-\u{1BF}\u{1C4}-\u{293}\u{295}-\u{2AF}\u{370}-\u{373}\u{376}\u{377}\u{37B}-\u{37D}\u{37F}\u{386}\u{388}-\u{38A}\u{38C}\u{38E}-\u{3A1}\u{3A3}-\u{3F5}\u{3F7}-\u{481}\u{48A}-\u{52F}\u{531}-\u{556}\u{10A0}-\u{10C5}\u{13A0}-\u{13F5}\u{13F8}-\u{13FD}\u{1C90}-\u{1CBA}\u{1CBD}-\u{1CBF}\u{1D00}-\u{1D2B}\u{1D6B}-\u{1D77}\u{1D79}-\u{1D9A}\u{1E00}-\u{1F15}\u{1F18}-\u{1F1D}\u{1F20}-\u{1F45}\u{1F48}-\u{1F4D}\u{1F50}-\u{1F57}\u{1F59}\u{1F5B}\u{1F5D}\u{1F5F}-\u{1F7D}\u{1F80}-\u{1FB4}\u{1FB6}-\u{1FBC}\u{1FBE}\u{1FC2}-\u{1FC4}\u{1FC6}-\u{1FCC}\u{1FD0}-\u{1FD3}\u{1FD6}-\u{1FDB}\u{1FE0}-\u{1FEC}\u{1FF2}-\u{1FF4}\u{1FF6}-\u{1FFC}\u{2102}\u{2107}\u{210A}-\u{2113}\u{2115}\u{2119}-\u{211D}\u{2124}\u{2126}\u{2128}\u{212A}-\u{212D}\u{212F}-\u{2134}\u{2139}\u{213C}-\u{213F}\u{2145}-\u{2149}\u{214E}\u{2183}\u{2184}\u{2C00}-\u{2C7B}\u{2C7E}-\u{2CE4}\u{2CEB}-\u{2CEE}\u{2CF2}\u{2CF3}\u{A640}-\u{A66D}\u{A680}-\u{A69B}\u{A722}-\u{A76F}\u{A771}-\u{A787}\u{A78B}-\u{A78E}\u{AB70}-\u{ABBF}\u{FB00}-\u{FB06}\u{FB13}-\u{FB17}\u{FF21}-\u{FF3A}\u{FF41}-\u{FF5A}\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+";
const DEEPSEEK_LLM_PUNCT: &str = "\\s?[!-/:-~\u{FF01}-\u{FF0F}\u{FF1A}-\u{FF5E}\u{2018}-\u{201F}\u{3000}-\u{3002}]+";
const DEEPSEEK3_WORDS: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";
const BAILINGMOE: &str = r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";
const MINICPM5: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// One llama.cpp pre-tokenizer type, the names that select it, and the flags those
/// names set.
#[derive(Debug, PartialEq)]
pub struct PreTokenizerSpec {
    /// llama.cpp's type (`LLAMA_VOCAB_PRE_TYPE_<kind>`, lower-cased); names that share
    /// the regexes share the kind.
    pub kind: &'static str,
    /// The `tokenizer.ggml.pre` values that select it.
    pub names: &'static [&'static str],
    pub regexes: &'static [&'static str],
    /// A word that is itself a token is emitted whole, without running the merges.
    pub ignore_merges: bool,
    /// Whether BOS is added when `tokenizer.ggml.add_bos_token` is absent.
    pub add_bos: bool,
    /// Decoding tidies spaces before punctuation and contractions (llama.cpp's
    /// `clean_spaces`, the `clean_up_tokenization_spaces` of `transformers`).
    pub clean_spaces: bool,
    /// SentencePiece-style BPE (Gemma 4): spaces become `▁` before splitting, words stay
    /// UTF-8 (not GPT-2's byte alphabet), and unknown bytes become `<0xNN>` tokens.
    pub spm_style: bool,
    /// The vocabulary has no BOS unless the file names one (ChatGLM).
    pub no_default_bos: bool,
}

const fn spec(
    kind: &'static str,
    names: &'static [&'static str],
    regexes: &'static [&'static str],
) -> PreTokenizerSpec {
    PreTokenizerSpec {
        kind,
        names,
        regexes,
        ignore_merges: false,
        add_bos: false,
        clean_spaces: true,
        spm_style: false,
        no_default_bos: false,
    }
}

/// `spec` with `clean_spaces` off, which most recent names set.
const fn raw(kind: &'static str, names: &'static [&'static str], regexes: &'static [&'static str]) -> PreTokenizerSpec {
    PreTokenizerSpec { clean_spaces: false, ..spec(kind, names, regexes) }
}

/// The supported types (llama.cpp's table without the types that need code of their own:
/// kimi-k2, afmoe, tiny_aya, superbpe, chameleon, whitespace, hybriddna, jais-2). A
/// `tokenizer.ggml.pre` that is not listed is an error.
pub const PRE_TOKENIZERS: &[PreTokenizerSpec] = &[
    spec("default", &["default"], &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]),
    PreTokenizerSpec {
        ignore_merges: true,
        add_bos: true,
        ..spec(
            "llama3",
            &["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"],
            &[LLAMA3],
        )
    },
    spec("llama3", &["dbrx", "smaug-bpe"], &[LLAMA3]),
    PreTokenizerSpec { no_default_bos: true, ..spec("chatglm4", &["chatglm-bpe"], &[LLAMA3]) },
    PreTokenizerSpec { no_default_bos: true, ignore_merges: true, ..spec("chatglm4", &["glm4", "glm5"], &[LLAMA3]) },
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
            "modern-bert",
            "mpt",
            "olmo",
            "jais",
            "exaone4",
            "jina-v1-en",
            "jina-v2-code",
            "roberta-bpe",
        ],
        &[GPT2],
    ),
    raw("gpt2", &["trillion", "granite-docling"], &[GPT2]),
    spec("starcoder", &["starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2"], &[r"\p{N}", GPT2]),
    raw("starcoder", &["command-r", "smollm"], &[r"\p{N}", GPT2]),
    spec("qwen2", &["stablelm2", "megrez"], &[QWEN2]),
    raw("qwen2", &["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2"], &[QWEN2]),
    raw("qwen35", &["qwen35"], &[QWEN35]),
    spec("falcon", &["falcon"], &[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"]),
    raw(
        "deepseek-llm",
        &["deepseek-llm"],
        &["[\r\n]", DEEPSEEK_LLM_LETTERS, DEEPSEEK_LLM_PUNCT, r"\s+$", CJK, r"\p{N}+"],
    ),
    raw("deepseek-coder", &["deepseek-coder"], &["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK, r"\p{N}"]),
    raw(
        "deepseek-v3",
        &["deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm"],
        &[r"\p{N}{1,3}", "[\u{4E00}-\u{9FA5}\u{3040}-\u{309F}\u{30A0}-\u{30FF}]+", DEEPSEEK3_WORDS],
    ),
    spec("poro", &["bloom", "gpt3-finnish"], &[PORO]),
    raw("poro", &["poro-chat"], &[PORO]),
    raw("viking", &["viking"], &[PORO, r"\p{N}"]),
    PreTokenizerSpec { ignore_merges: true, add_bos: true, ..raw("tekken", &["tekken"], &[TEKKEN]) },
    raw("gpt4o", &["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"], &[GPT4O]),
    raw("seed-coder", &["seed-coder"], &[SEED_CODER]),
    raw("bailingmoe", &["bailingmoe", "bailingmoe2", "llada-moe"], &[BAILINGMOE]),
    raw("laguna", &["laguna"], &[NEWLINES, QWEN2]),
    PreTokenizerSpec { ignore_merges: true, ..spec("minicpm5", &["minicpm5"], &[r"\p{N}{1,3}", MINICPM5]) },
    PreTokenizerSpec { spm_style: true, ..spec("gemma4", &["gemma4", "granite-embed-multi-311m"], &[NEWLINES]) },
    PreTokenizerSpec { spm_style: true, ..raw("sarvam-moe", &["sarvam-moe"], &[NEWLINES]) },
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

/// One split step: a hand-written splitter or a regex.
#[derive(Debug)]
enum Step {
    Gpt2,
    /// The Llama 3 family: most digits per number word, and marks as letters (Qwen3.5).
    Llama3 {
        max_digits: usize,
        marks_are_letters: bool,
    },
    Newlines,
    Regex(SplitRegex),
}

impl Step {
    /// llama.cpp's `unicode_regex_split_custom` picks its hand-written splitters by the
    /// regex string; so does this.
    fn new(re: &str) -> Result<Step> {
        Ok(match re {
            GPT2 => Step::Gpt2,
            LLAMA3 => Step::Llama3 { max_digits: 3, marks_are_letters: false },
            QWEN2 => Step::Llama3 { max_digits: 1, marks_are_letters: false },
            QWEN35 => Step::Llama3 { max_digits: 1, marks_are_letters: true },
            NEWLINES => Step::Newlines,
            _ => Step::Regex(SplitRegex::new(re)?),
        })
    }

    fn split(&self, cpts: &[char], pieces: &[usize]) -> Result<Vec<usize>> {
        Ok(match self {
            Step::Gpt2 => custom::gpt2(cpts, pieces),
            Step::Llama3 { max_digits, marks_are_letters } => {
                custom::llama3(cpts, pieces, *max_digits, *marks_are_letters)
            }
            Step::Newlines => custom::newlines(cpts, pieces),
            Step::Regex(re) => re.split(cpts, pieces)?,
        })
    }
}

/// A compiled pre-tokenizer.
#[derive(Debug)]
pub struct PreTokenizer {
    steps: Vec<Step>,
    byte_encode: bool,
}

impl PreTokenizer {
    pub fn new(spec: &PreTokenizerSpec) -> Result<PreTokenizer> {
        let steps = spec.regexes.iter().map(|re| Step::new(re)).collect::<Result<_>>()?;
        Ok(PreTokenizer { steps, byte_encode: !spec.spm_style })
    }

    /// The words of `text`, in GPT-2's byte alphabet unless the spec is SentencePiece-style
    /// (llama.cpp's `unicode_regex_split`).
    pub fn words(&self, text: &str) -> Result<Vec<String>> {
        let cpts: Vec<char> = text.chars().collect();
        let mut pieces = vec![cpts.len()];
        for step in &self.steps {
            pieces = step.split(&cpts, &pieces)?;
        }
        let alphabet = byte_to_char();
        Ok(cut(&cpts, &pieces)
            .map(|w| {
                let s: String = w.iter().collect();
                if self.byte_encode {
                    s.bytes().map(|b| alphabet[b as usize]).collect()
                } else {
                    s
                }
            })
            .collect())
    }
}

/// The words that `lengths` (in code points) cut `cpts` into.
fn cut<'c>(cpts: &'c [char], lengths: &'c [usize]) -> impl Iterator<Item = &'c [char]> {
    let mut start = 0;
    lengths.iter().map(move |&len| {
        start += len;
        &cpts[start - len..start]
    })
}

/// `text` split by `split` (one piece to start with), as strings: for the splitters' tests.
#[cfg(test)]
fn split_words(text: &str, split: impl Fn(&[char], &[usize]) -> Vec<usize>) -> Vec<String> {
    let cpts: Vec<char> = text.chars().collect();
    cut(&cpts, &split(&cpts, &[cpts.len()])).map(|w| w.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spec_compiles_and_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for s in PRE_TOKENIZERS {
            PreTokenizer::new(s).unwrap_or_else(|e| panic!("{}: {e}", s.kind));
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

    #[test]
    fn words_are_byte_encoded_unless_spm_style() {
        let gpt2 = PreTokenizer::new(lookup("gpt-2").unwrap()).unwrap();
        assert_eq!(gpt2.words("Hi there\n").unwrap(), ["Hi", "Ġthere", "Ċ"]);
        let gemma = PreTokenizer::new(lookup("gemma4").unwrap()).unwrap();
        assert_eq!(gemma.words("a▁b\n\nc").unwrap(), ["a▁b", "\n\n", "c"]);
    }
}
