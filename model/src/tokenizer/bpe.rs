//! Byte-pair merging as llama.cpp does it (`llm_tokenizer_bpe_session` in
//! `src/llama-vocab.cpp`): each pre-tokenized word starts as its characters, and the
//! adjacent pair with the lowest merge rank (leftmost on ties) is merged until no pair is
//! in the merge list. A priority queue of candidate pairs keeps this O(n log n) in the
//! word's length (Gemma 4's words are whole lines).
//!
//! Each symbol's token id is kept, and merges are keyed by the ids of their two parts,
//! so merging compares integers, not strings.

use super::pretokenize::{PreTokenizer, PreTokenizerSpec};
use super::symbols;
use super::Vocab;
use crate::error::{ModelError, Result};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

#[derive(Debug)]
pub struct Bpe {
    pre: PreTokenizer,
    /// Rank of each merge by the ids of its two parts (the first listing wins, as
    /// llama.cpp's `bpe_ranks.emplace`).
    ranks: HashMap<(u32, u32), u32>,
    /// The token each merge makes, by rank (`None` when the pair's text is no token).
    results: Vec<Option<u32>>,
    ignore_merges: bool,
    /// Spaces become `▁` and unknown bytes `<0xNN>` (Gemma 4's SentencePiece-style BPE).
    spm_style: bool,
    /// llama.cpp's Gemma 4 fix: a word of newlines that is itself a token stays whole.
    whole_newline_words: bool,
}

impl Bpe {
    /// `merges` are `tokenizer.ggml.merges` entries, `"left right"`: split at the first
    /// space after the first byte, as llama.cpp does. Both parts must be tokens.
    pub fn new(spec: &PreTokenizerSpec, merges: &[String], vocab: &Vocab) -> Result<Bpe> {
        let mut ranks = HashMap::with_capacity(merges.len());
        let mut results = Vec::with_capacity(merges.len());
        let mut joined = String::new();
        for (i, m) in merges.iter().enumerate() {
            let bad = |what: &str| ModelError::Tokenizer(format!("`tokenizer.ggml.merges`[{i}] = {m:?}: {what}"));
            let at = m.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1).ok_or_else(|| bad("not two tokens"))?;
            let (left, right) = (&m[..at], &m[at + 1..]);
            let id = |part: &str| vocab.id(part).ok_or_else(|| bad(&format!("{part:?} is not a token")));
            let key = (id(left)?, id(right)?);
            ranks.entry(key).or_insert(results.len() as u32);
            joined.clear();
            joined.push_str(left);
            joined.push_str(right);
            results.push(vocab.id(&joined));
        }
        Ok(Bpe {
            pre: PreTokenizer::new(spec)?,
            ranks,
            results,
            ignore_merges: spec.ignore_merges,
            spm_style: spec.spm_style,
            whole_newline_words: spec.kind == "gemma4",
        })
    }

    /// Append the tokens of a text fragment (no special tokens in it).
    pub fn encode(&self, text: &str, vocab: &Vocab, out: &mut Vec<u32>) -> Result<()> {
        let escaped;
        let text = if self.spm_style {
            escaped = text.replace(' ', "\u{2581}");
            &escaped
        } else {
            text
        };
        for word in self.pre.words(text)? {
            let whole = (self.ignore_merges || (self.whole_newline_words && word.bytes().all(|b| b == b'\n')))
                .then(|| vocab.id(&word))
                .flatten();
            match whole {
                Some(id) => out.push(id),
                None => self.merge_word(&word, vocab, out),
            }
        }
        Ok(())
    }

    fn merge_word(&self, word: &str, vocab: &Vocab, out: &mut Vec<u32>) {
        let mut syms = symbols::chars(word);
        // The token whose text each symbol is, if any.
        let mut ids: Vec<Option<u32>> = syms.iter().map(|s| vocab.id(&word[s.start..s.end()])).collect();
        let mut queue = BinaryHeap::new();
        for i in 1..syms.len() {
            self.push_pair(&ids, Some(i - 1), Some(i), &mut queue);
        }
        while let Some(Reverse(p)) = queue.pop() {
            // Stale: one side was merged away or grew since the pair was queued.
            let alive = syms[p.left].len > 0 && syms[p.right].len > 0;
            if !alive || ids[p.left] != Some(p.left_id) || ids[p.right] != Some(p.right_id) {
                continue;
            }
            let (prev, next) = symbols::merge(&mut syms, p.left, p.right);
            ids[p.left] = self.results[p.rank as usize];
            self.push_pair(&ids, prev, Some(p.left), &mut queue);
            self.push_pair(&ids, Some(p.left), next, &mut queue);
        }
        for (i, s) in symbols::remaining(&syms) {
            match ids[i] {
                Some(id) => out.push(id),
                None => self.byte_fallback(&word[s.start..s.end()], vocab, out),
            }
        }
    }

    fn push_pair(
        &self,
        ids: &[Option<u32>],
        left: Option<usize>,
        right: Option<usize>,
        queue: &mut BinaryHeap<Reverse<Pair>>,
    ) {
        let (Some(left), Some(right)) = (left, right) else { return };
        let (Some(left_id), Some(right_id)) = (ids[left], ids[right]) else { return };
        if let Some(&rank) = self.ranks.get(&(left_id, right_id)) {
            queue.push(Reverse(Pair { rank, left, right, left_id, right_id }));
        }
    }

    /// A symbol that is no token: one token per byte where the vocabulary has one. For
    /// byte-level vocabularies llama.cpp looks up each byte of the symbol's (already
    /// byte-encoded) text as a one-byte string, which only ASCII can be; the
    /// SentencePiece style uses `<0xNN>` tokens. Bytes without a token are dropped.
    fn byte_fallback(&self, text: &str, vocab: &Vocab, out: &mut Vec<u32>) {
        for b in text.bytes() {
            let id = if self.spm_style {
                vocab.id(&format!("<0x{b:02X}>"))
            } else if b.is_ascii() {
                vocab.id(std::str::from_utf8(&[b]).expect("ASCII"))
            } else {
                None
            };
            out.extend(id);
        }
    }
}

/// A candidate merge. Ordered by rank, then by position (llama.cpp's comparator).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pair {
    rank: u32,
    left: usize,
    right: usize,
    left_id: u32,
    right_id: u32,
}
