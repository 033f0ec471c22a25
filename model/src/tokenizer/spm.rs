//! SentencePiece's BPE as llama.cpp runs it for `tokenizer.ggml.model = llama`
//! (`llm_tokenizer_spm_session` in `src/llama-vocab.cpp`): the text, spaces already
//! written as `▁`, starts as its characters; the adjacent pair whose concatenation is the
//! highest-scoring token (leftmost on ties) is merged until no pair is a token. A
//! priority queue of candidate pairs keeps this O(n log n). Characters left that are no
//! token become their UTF-8 bytes' `<0xNN>` tokens (byte fallback).
//!
//! llama.cpp's `resegment` also consults a map of the pairs it merged, but a merged
//! symbol is always a token (a pair is only queued when its text is one), so only single
//! characters ever fall back, and they fall straight back to bytes.

use super::symbols::{self, Symbol};
use super::Vocab;
use crate::error::{ModelError, Result};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Append the tokens of `text` (spaces already escaped as `▁`).
pub fn encode(text: &str, vocab: &Vocab, unk: Option<u32>, out: &mut Vec<u32>) -> Result<()> {
    let mut syms = symbols::chars(text);
    let mut queue = BinaryHeap::new();
    for i in 1..syms.len() {
        push_pair(text, vocab, &syms, Some(i - 1), Some(i), &mut queue);
    }
    while let Some(p) = queue.pop() {
        let (l, r) = (&syms[p.left], &syms[p.right]);
        // Stale: one side was merged away or grew since the pair was queued.
        if l.len == 0 || r.len == 0 || l.len + r.len != p.size {
            continue;
        }
        let (prev, next) = symbols::merge(&mut syms, p.left, p.right);
        push_pair(text, vocab, &syms, prev, Some(p.left), &mut queue);
        push_pair(text, vocab, &syms, Some(p.left), next, &mut queue);
    }
    for (_, s) in symbols::remaining(&syms) {
        let piece = &text[s.start..s.end()];
        match vocab.id(piece) {
            Some(id) => out.push(id),
            None => {
                for b in piece.bytes() {
                    out.push(byte_token(vocab, b, unk)?);
                }
            }
        }
    }
    Ok(())
}

/// llama.cpp's `byte_to_token` for SentencePiece vocabularies: `<0xNN>`, else the byte as
/// a one-character token. llama.cpp aborts when neither exists; here the unknown token
/// stands in if there is one, else it is an error.
fn byte_token(vocab: &Vocab, b: u8, unk: Option<u32>) -> Result<u32> {
    let one = if b.is_ascii() { vocab.id(std::str::from_utf8(&[b]).expect("ASCII")) } else { None };
    vocab.id(&format!("<0x{b:02X}>")).or(one).or(unk).ok_or_else(|| {
        ModelError::Tokenizer(format!(
            "the vocabulary has no token for byte 0x{b:02X} (no <0x{b:02X}>) and no unknown token"
        ))
    })
}

fn push_pair(
    text: &str,
    vocab: &Vocab,
    syms: &[Symbol],
    left: Option<usize>,
    right: Option<usize>,
    queue: &mut BinaryHeap<Pair>,
) {
    let (Some(left), Some(right)) = (left, right) else { return };
    let (start, size) = (syms[left].start, syms[left].len + syms[right].len);
    if let Some(id) = vocab.id(&text[start..start + size]) {
        queue.push(Pair { score: vocab.score(id), left, right, size });
    }
}

/// A candidate merge: the highest score first, then the leftmost (llama.cpp's
/// `llm_bigram_spm::comparator`).
#[derive(Debug)]
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score.partial_cmp(&other.score).unwrap_or(Ordering::Equal).then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pair {}
