//! The list both merging tokenizers (`spm`, `bpe`) work on: the text's characters as
//! byte ranges, linked to their neighbours, merged pairwise until no pair qualifies
//! (llama.cpp's `llm_symbol`).

#[derive(Debug)]
pub struct Symbol {
    /// Byte range in the text; `len` is 0 once merged into its left neighbour.
    pub start: usize,
    pub len: usize,
    pub prev: Option<usize>,
    pub next: Option<usize>,
}

impl Symbol {
    pub fn end(&self) -> usize {
        self.start + self.len
    }
}

/// One symbol per character of `text`.
pub fn chars(text: &str) -> Vec<Symbol> {
    let mut syms: Vec<Symbol> = Vec::with_capacity(text.len());
    for (i, (at, c)) in text.char_indices().enumerate() {
        syms.push(Symbol { start: at, len: c.len_utf8(), prev: i.checked_sub(1), next: None });
        if i > 0 {
            syms[i - 1].next = Some(i);
        }
    }
    syms
}

/// Merge symbol `right` into its left neighbour `left`. Returns the new neighbours of
/// `left` (the pairs to consider next).
pub fn merge(syms: &mut [Symbol], left: usize, right: usize) -> (Option<usize>, Option<usize>) {
    let (len, next) = (syms[right].len, syms[right].next);
    syms[right].len = 0;
    let l = &mut syms[left];
    l.len += len;
    l.next = next;
    let prev = l.prev;
    if let Some(n) = next {
        syms[n].prev = Some(left);
    }
    (prev, next)
}

/// The symbols left after merging, in order, with their indices.
pub fn remaining(syms: &[Symbol]) -> impl Iterator<Item = (usize, &Symbol)> {
    syms.iter().enumerate().filter(|(_, s)| s.len > 0)
}
