//! Code point classes as llama.cpp's `src/unicode.cpp` sees them: one general category
//! per code point (its `unicode_cpt_flags`: letter, number, punctuation, mark, symbol,
//! separator, control, or undefined for unassigned code points) and the White_Space
//! property, plus the two normalizations its WordPiece path uses (the first code point of
//! the NFD decomposition, and the simple lowercase mapping).
//!
//! llama.cpp generates its tables from UnicodeData.txt (`scripts/gen-unicode-data.py`);
//! here they are built once from the `regex-syntax` crate's Unicode 16 tables, so both
//! read the same database.

use regex_syntax::hir::{Class, HirKind};
use std::sync::OnceLock;
use unicode_normalization_alignments::UnicodeNormalization;

/// The general category groups llama.cpp distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Category {
    /// Unassigned code points (`Cn`).
    Undefined = 0,
    Number,
    Letter,
    Separator,
    Mark,
    Punctuation,
    Symbol,
    /// `Cc`, `Cf`, `Co`, `Cs`.
    Control,
}

const CATEGORIES: [Category; 8] = [
    Category::Undefined,
    Category::Number,
    Category::Letter,
    Category::Separator,
    Category::Mark,
    Category::Punctuation,
    Category::Symbol,
    Category::Control,
];

/// A code point's category and whether it is White_Space (llama.cpp's `\s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(u8);

const WHITESPACE_BIT: u8 = 0x80;

impl Flags {
    pub fn category(self) -> Category {
        CATEGORIES[(self.0 & 7) as usize]
    }
    pub fn is_whitespace(self) -> bool {
        self.0 & WHITESPACE_BIT != 0
    }
    pub fn is_letter(self) -> bool {
        self.category() == Category::Letter
    }
    pub fn is_number(self) -> bool {
        self.category() == Category::Number
    }
    pub fn is_mark(self) -> bool {
        self.category() == Category::Mark
    }
    pub fn is_punctuation(self) -> bool {
        self.category() == Category::Punctuation
    }
    pub fn is_symbol(self) -> bool {
        self.category() == Category::Symbol
    }
    pub fn is_control(self) -> bool {
        self.category() == Category::Control
    }
}

/// The White_Space code points (llama.cpp's `unicode_set_whitespace`).
const WHITESPACE: &[(u32, u32)] = &[
    (0x09, 0x0D),
    (0x20, 0x20),
    (0x85, 0x85),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
];

/// The flags of every code point (1.1 MB, built on first use in a few milliseconds).
fn table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = vec![Category::Undefined as u8; 0x11_0000];
        let classes = [
            (r"\p{Cc}|\p{Cf}|\p{Co}", Category::Control),
            (r"\p{L}", Category::Letter),
            (r"\p{M}", Category::Mark),
            (r"\p{N}", Category::Number),
            (r"\p{P}", Category::Punctuation),
            (r"\p{S}", Category::Symbol),
            (r"\p{Z}", Category::Separator),
        ];
        for (pattern, cat) in classes {
            for (lo, hi) in class_ranges(pattern) {
                t[lo as usize..=hi as usize].fill(cat as u8);
            }
        }
        for &(lo, hi) in WHITESPACE {
            for x in &mut t[lo as usize..=hi as usize] {
                *x |= WHITESPACE_BIT;
            }
        }
        t
    })
}

/// The code point ranges of a Unicode class pattern, from regex-syntax's tables.
fn class_ranges(pattern: &str) -> Vec<(u32, u32)> {
    let hir = regex_syntax::ParserBuilder::new().build().parse(pattern).expect("a valid Unicode class");
    let mut out = Vec::new();
    let mut collect = |h: &regex_syntax::hir::Hir| {
        if let HirKind::Class(Class::Unicode(c)) = h.kind() {
            out.extend(c.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)));
        }
    };
    match hir.kind() {
        HirKind::Alternation(alts) => alts.iter().for_each(&mut collect),
        _ => collect(&hir),
    }
    assert!(!out.is_empty(), "{pattern} has no code points");
    out
}

pub fn flags(c: char) -> Flags {
    Flags(table()[c as usize])
}

/// llama.cpp's `unicode_tolower`: the simple (one code point) lowercase mapping.
/// `char::to_lowercase` gives the full mapping, which differs only where it has several
/// code points (U+0130 -> "i\u{307}"), and the simple mapping is its first.
pub fn to_lower(c: char) -> char {
    c.to_lowercase().next().unwrap_or(c)
}

/// llama.cpp's `unicode_cpts_normalize_nfd` maps each code point to the FIRST code point
/// of its canonical decomposition (the base letter; accents are dropped by the caller).
pub fn nfd_first(c: char) -> char {
    if c.is_ascii() {
        return c;
    }
    let mut buf = [0u8; 4];
    let s: &str = c.encode_utf8(&mut buf);
    s.nfd().next().map_or(c, |(first, _)| first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_whitespace() {
        assert!(flags('a').is_letter() && flags('Ж').is_letter() && flags('漢').is_letter());
        assert!(flags('7').is_number() && flags('٣').is_number() && flags('½').is_number());
        assert!(flags('!').is_punctuation() && flags('、').is_punctuation());
        assert!(flags('+').is_symbol() && flags('😀').is_symbol() && flags('$').is_symbol());
        assert!(flags('\u{301}').is_mark());
        assert_eq!(flags('\u{0}').category(), Category::Control);
        assert_eq!(flags('\u{200d}').category(), Category::Control);
        assert_eq!(flags('\u{378}').category(), Category::Undefined);
        assert_eq!(flags(' ').category(), Category::Separator);
        for c in [' ', '\t', '\n', '\u{b}', '\u{85}', '\u{a0}', '\u{3000}'] {
            assert!(flags(c).is_whitespace(), "{c:?}");
        }
        assert!(!flags('\u{1c}').is_whitespace() && !flags('\u{200b}').is_whitespace());
    }

    #[test]
    fn normalizations() {
        assert_eq!(nfd_first('é'), 'e');
        assert_eq!(nfd_first('Ä'), 'A');
        assert_eq!(nfd_first('ử'), 'u');
        assert_eq!(nfd_first('x'), 'x');
        assert_eq!(to_lower('Ä'), 'ä');
        assert_eq!(to_lower('\u{130}'), 'i');
    }
}
