//! llama.cpp's corrections of special tokens by their text (`llama_vocab::impl::load` in
//! `src/llama-vocab.cpp`): converters often leave end-of-turn and fill-in-the-middle
//! tokens marked normal, so tokens with these well-known texts become control tokens,
//! and the end-of-generation set is built from the texts plus the ids the metadata
//! names. Then the per-model whitespace-stripping attributes.

use super::special::TokenKind;
use super::Vocab;
use std::collections::BTreeSet;

/// End of turn (`special_eot_id`).
const EOT: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM: &[&str] = &["<|eom_id|>"];
const FIM_PRE: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP: &[&str] = &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"];
const FIM_SEP: &[&str] = &["<|file_sep|>"];

/// Texts that end generation wherever they are in the vocabulary (`special_eog_ids`).
const EOG: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// gpt-oss's structural tokens, always rendered (llama.cpp: "quick hack for gpt-oss").
const ALWAYS_RENDERED: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// Ids the metadata names for the roles the texts above can also fill.
#[derive(Default, Debug)]
pub struct NamedIds {
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub fim: [Option<u32>; 6],
}

/// Make the well-known texts control tokens (where the metadata does not name the role
/// already) and return the end-of-generation ids.
pub fn fix_up(vocab: &mut Vocab, named: &NamedIds) -> BTreeSet<u32> {
    let role = |given: Option<u32>, texts: &[&str], vocab: &mut Vocab| -> Option<u32> {
        if given.is_some() {
            return given;
        }
        // llama.cpp takes the first match in hash order; all matches become control here.
        let found: Vec<u32> = texts.iter().filter_map(|t| vocab.id(t)).collect();
        for &id in &found {
            force_control(vocab, id);
        }
        found.into_iter().min()
    };
    let eot = role(named.eot, EOT, vocab);
    let eom = role(named.eom, EOM, vocab);
    let fim: Vec<Option<u32>> = [FIM_PRE, FIM_SUF, FIM_MID, FIM_PAD, FIM_REP, FIM_SEP]
        .iter()
        .zip(named.fim)
        .map(|(texts, given)| role(given, texts, vocab))
        .collect();

    // FIM pad, repo and file separator end generation too.
    let mut eog: BTreeSet<u32> = fim[3..].iter().flatten().copied().collect();
    for t in EOG {
        if let Some(id) = vocab.id(t) {
            eog.insert(id);
            force_control(vocab, id);
        }
    }
    for t in ALWAYS_RENDERED {
        if let Some(id) = vocab.id(t) {
            vocab.set_kind(id, TokenKind::UserDefined);
        }
    }
    eog.extend([named.eos, eot, eom].into_iter().flatten());

    let has = |eog: &BTreeSet<u32>, text: &str| vocab.id(text).filter(|id| eog.contains(id));
    // o200k_harmony and solar-open: `<|end|>` ends a message, not the generation.
    let call = has(&eog, "<|call|>").or(has(&eog, "<|calls|>")).is_some();
    let harmony = call && (has(&eog, "<|return|>").is_some() || has(&eog, "<|flush|>").is_some());
    let end = has(&eog, "<|end|>").filter(|_| harmony);
    // Gemma 4 and PLaMo have a normal `</s>`.
    let normal_s = has(&eog, "<|tool_response>").or(has(&eog, "<|plamo:eos|>")).is_some();
    let s = has(&eog, "</s>").filter(|_| normal_s);
    if let Some(end) = end {
        eog.remove(&end);
        vocab.set_kind(end, TokenKind::UserDefined);
    }
    if let Some(s) = s {
        eog.remove(&s);
        vocab.set_kind(s, TokenKind::Normal);
    }
    eog
}

fn force_control(vocab: &mut Vocab, id: u32) {
    if !vocab.kind(id).is_some_and(TokenKind::is_special) {
        vocab.set_kind(id, TokenKind::Control);
    }
}

/// Tokens whose matches swallow the whitespace to their left / right, as llama.cpp sets
/// them by model (its `LLAMA_TOKEN_ATTR_LSTRIP` / `RSTRIP` block): `(id, lstrip, rstrip)`.
/// `name` is `general.name`, `arch` `general.architecture`, `pre` `tokenizer.ggml.pre`.
pub fn strip_attributes(vocab: &Vocab, name: &str, arch: &str, pre: &str) -> Vec<(u32, bool, bool)> {
    let name = name.to_ascii_lowercase();
    let any = |s: &str, subs: &[&str]| subs.iter().any(|x| s.contains(x));
    let lstrip = |text: &str| vocab.id(text).map(|id| vec![(id, true, false)]).unwrap_or_default();
    if any(pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"]) || any(arch, &["nomic-bert-moe", "jina-bert-v3"]) {
        lstrip("<mask>")
    } else if any(&name, &["phi-3", "phi3"]) {
        let special =
            |id: u32| matches!(vocab.kind(id), Some(TokenKind::Control | TokenKind::UserDefined | TokenKind::Unknown));
        let kept: Vec<Option<u32>> = ["<unk>", "<s>", "<|endoftext|>"].iter().map(|t| vocab.id(t)).collect();
        let end_s = vocab.id("</s>");
        (0..vocab.len() as u32)
            .filter(|&id| (special(id) || Some(id) == end_s) && !kept.contains(&Some(id)))
            .map(|id| (id, false, true))
            .collect()
    } else if name.contains("modern-bert") {
        lstrip("[MASK]")
    } else {
        Vec::new()
    }
}
