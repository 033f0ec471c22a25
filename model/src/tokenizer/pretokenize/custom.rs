//! llama.cpp's hand-written versions of its most used split regexes
//! (`unicode_regex_split_custom_*` in `src/unicode.cpp`). llama.cpp runs these instead of
//! the regex whenever a pre-tokenizer's regex is one of them, so their quirks (for
//! example where a lookahead meets the end of a piece) are what decides the token ids.
//!
//! Each function splits every piece of `pieces` (lengths in code points of `cpts`, in
//! order) into the lengths of its words.

use crate::tokenizer::unicode::{flags, Flags};

/// The view of one piece the splitters work on: code points outside it read as absent
/// (`None`, llama.cpp's `OUT_OF_RANGE`, whose flags are all clear).
struct Piece<'a> {
    cpts: &'a [char],
    start: usize,
    end: usize,
    prev_end: usize,
    out: &'a mut Vec<usize>,
}

impl Piece<'_> {
    fn cpt(&self, pos: usize) -> Option<char> {
        (self.start <= pos && pos < self.end).then(|| self.cpts[pos])
    }
    fn flags(&self, pos: usize) -> Option<Flags> {
        self.cpt(pos).map(flags)
    }
    /// Close the word ending at `end`; returns its length.
    fn add(&mut self, end: usize) -> usize {
        let len = end - self.prev_end;
        if len > 0 {
            self.out.push(len);
        }
        self.prev_end = end;
        len
    }
}

fn is(f: Option<Flags>, test: impl Fn(Flags) -> bool) -> bool {
    f.is_some_and(test)
}

/// Run `split` over every piece.
fn each_piece(cpts: &[char], pieces: &[usize], mut split: impl FnMut(&mut Piece)) -> Vec<usize> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut start = 0;
    for &len in pieces {
        let mut p = Piece { cpts, start, end: start + len, prev_end: start, out: &mut out };
        split(&mut p);
        start += len;
    }
    out
}

/// `'s|'t|'re|'ve|'m|'ll|'d`, case-sensitive or not: the length of the contraction at
/// `pos`, or 0.
fn contraction(p: &Piece, pos: usize, any_case: bool) -> usize {
    if p.cpt(pos) != Some('\'') || pos + 1 >= p.end {
        return 0;
    }
    let low = |c: Option<char>| c.map(|c| if any_case { crate::tokenizer::unicode::to_lower(c) } else { c });
    let next = low(p.cpt(pos + 1));
    if matches!(next, Some('s' | 't' | 'm' | 'd')) {
        return 2;
    }
    if pos + 2 < p.end {
        let pair = (next, low(p.cpt(pos + 2)));
        if matches!(pair, (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l'))) {
            return 3;
        }
    }
    0
}

/// The length of the whitespace run at `pos`.
fn whitespace_run(p: &Piece, pos: usize) -> usize {
    let mut n = 0;
    while is(p.flags(pos + n), Flags::is_whitespace) {
        n += 1;
    }
    n
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// (`unicode_regex_split_custom_gpt2`).
pub fn gpt2(cpts: &[char], pieces: &[usize]) -> Vec<usize> {
    let other = |f: Flags| !(f.is_whitespace() || f.is_letter() || f.is_number());
    each_piece(cpts, pieces, |p| {
        let mut pos = p.start;
        while pos < p.end {
            let n = contraction(p, pos, false);
            if n > 0 {
                pos += p.add(pos + n);
                continue;
            }
            let space = p.cpt(pos) == Some(' ');
            let first = if space { p.flags(pos + 1) } else { p.flags(pos) };
            let class: Option<fn(Flags) -> bool> = if is(first, Flags::is_letter) {
                Some(Flags::is_letter)
            } else if is(first, Flags::is_number) {
                Some(Flags::is_number)
            } else if is(first, other) {
                Some(other)
            } else {
                None
            };
            if let Some(class) = class {
                pos += space as usize;
                while is(p.flags(pos), class) {
                    pos += 1;
                }
                p.add(pos);
                continue;
            }
            pos = whitespace_then(p, pos);
        }
    })
}

/// `\s+(?!\S)|\s+`, or one code point when nothing matches: the position after the word.
fn whitespace_then(p: &mut Piece, pos: usize) -> usize {
    let n = whitespace_run(p, pos);
    // `\s+(?!\S)`: leave the last space to the next word, unless the run ends the piece.
    let end = if n > 1 && p.cpt(pos + n).is_some() {
        pos + n - 1
    } else if n > 0 {
        pos + n
    } else {
        pos + 1
    };
    p.add(end);
    end
}

/// The Llama 3 family of splits (`unicode_regex_split_custom_llama3`, `_qwen2`, `_qwen35`):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// with `D = max_digits` (3 for Llama 3, 1 for Qwen2), and for Qwen3.5 marks counting as
/// letters (`[\p{L}\p{M}]+`).
pub fn llama3(cpts: &[char], pieces: &[usize], max_digits: usize, marks_are_letters: bool) -> Vec<usize> {
    let letter = move |f: Flags| f.is_letter() || (marks_are_letters && f.is_mark());
    let other = move |f: Flags| !(f.is_whitespace() || letter(f) || f.is_number());
    let newline = |c: Option<char>| matches!(c, Some('\r' | '\n'));
    each_piece(cpts, pieces, |p| {
        let mut pos = p.start;
        while pos < p.end {
            let n = contraction(p, pos, true);
            if n > 0 {
                pos += p.add(pos + n);
                continue;
            }
            let cpt = p.cpt(pos);
            let flags = p.flags(pos).expect("inside the piece");
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(newline(cpt) || flags.is_number()) && (letter(flags) || is(p.flags(pos + 1), letter)) {
                pos += 1;
                while is(p.flags(pos), letter) {
                    pos += 1;
                }
                p.add(pos);
                continue;
            }
            // \p{N}{1,D}
            if flags.is_number() {
                let mut ini = pos;
                while is(p.flags(pos), Flags::is_number) {
                    pos += 1;
                    if pos - ini >= max_digits {
                        p.add(pos);
                        ini = pos;
                    }
                }
                p.add(pos);
                continue;
            }
            // <space>?[^\s\p{L}\p{N}]+[\r\n]*
            let space = cpt == Some(' ');
            let first = if space { p.flags(pos + 1) } else { Some(flags) };
            if is(first, other) {
                pos += space as usize;
                while is(p.flags(pos), other) {
                    pos += 1;
                }
                while newline(p.cpt(pos)) {
                    pos += 1;
                }
                p.add(pos);
                continue;
            }
            // \s*[\r\n]+: the whitespace run up to its last newline.
            let n = whitespace_run(p, pos);
            if let Some(last) = (pos..pos + n).rev().find(|&i| newline(p.cpt(i))) {
                pos = last + 1;
                p.add(pos);
                continue;
            }
            pos = whitespace_then(p, pos);
        }
    })
}

/// `[^\n]+|[\n]+`: runs of newlines and runs of anything else
/// (`unicode_regex_split_custom_newlines`).
pub fn newlines(cpts: &[char], pieces: &[usize]) -> Vec<usize> {
    each_piece(cpts, pieces, |p| {
        let mut pos = p.start;
        while pos < p.end {
            let is_newline = cpts[pos] == '\n';
            while pos < p.end && (cpts[pos] == '\n') == is_newline {
                pos += 1;
            }
            p.add(pos);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::split_words as words;
    use super::*;

    #[test]
    fn gpt2_words() {
        let w = words("Hello world's  3x!!  \n", gpt2);
        assert_eq!(w, ["Hello", " world", "'s", " ", " 3", "x", "!!", "  \n"]);
        assert_eq!(words("a  b", gpt2), ["a", " ", " b"]);
    }

    #[test]
    fn llama3_words() {
        let l3 = |c: &[char], p: &[usize]| llama3(c, p, 3, false);
        assert_eq!(words("I'VE 12345 ok!\n\n x", l3), ["I", "'VE", " ", "123", "45", " ok", "!\n\n", " x"]);
        let q2 = |c: &[char], p: &[usize]| llama3(c, p, 1, false);
        assert_eq!(words("a 123\t\n b", q2), ["a", " ", "1", "2", "3", "\t\n", " b"]);
    }

    #[test]
    fn newline_runs() {
        assert_eq!(words("a b\n\ncd\n", newlines), ["a b", "\n\n", "cd", "\n"]);
    }
}
