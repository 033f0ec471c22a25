//! The general split regexes, run the way llama.cpp's `unicode_regex_split` runs those it
//! has no hand-written version of (`src/unicode.cpp`).
//!
//! llama.cpp uses C++ `std::regex`, which knows no Unicode classes, so a regex that uses
//! `\p{L}`, `\p{N}`, `\p{P}`, `\p{S}` or `\p{M}` runs on a "collapsed" text: ASCII stays
//! itself, other whitespace becomes `\x0B`, and every other code point becomes one
//! stand-in character for its category, which the rewritten regex matches next to the
//! category's ASCII members. A regex without those classes runs on the text itself (with
//! non-ASCII whitespace again replaced by `\x0B`, which C++'s `\s` matches). Doing the
//! same here, with private-use characters as stand-ins, gives llama.cpp's splits even
//! where they differ from a true Unicode regex (a non-ASCII letter inside `[^a-z]`, for
//! example). `std::regex` (ECMAScript) and `fancy-regex` are both backtracking engines
//! with leftmost-first alternation, so matches agree.

use super::super::unicode::{flags, Category};
use crate::error::{ModelError, Result};
use fancy_regex::Regex;

/// The stand-in of a category in collapsed text (llama.cpp uses the bytes 0xD0..0xD5).
fn stand_in(cat: Category) -> char {
    match cat {
        Category::Number => '\u{E0D1}',
        Category::Letter => '\u{E0D2}',
        Category::Punctuation => '\u{E0D3}',
        Category::Mark => '\u{E0D4}',
        Category::Symbol => '\u{E0D5}',
        _ => '\u{E0D0}',
    }
}

/// The classes llama.cpp rewrites, with the ASCII members each keeps (`k_ucat_map`).
const CLASSES: &[(&str, Category, &str)] = &[
    (r"\p{N}", Category::Number, "0-9"),
    (r"\p{L}", Category::Letter, "A-Za-z"),
    (r"\p{P}", Category::Punctuation, r"!-#%-*,-/:-;?-@\[-\]_\{\}"),
    (r"\p{M}", Category::Mark, ""),
    (r"\p{S}", Category::Symbol, r"\$\+<->\^`\|\~"),
    (r"\p{Lu}", Category::Letter, "A-Za-z"),
    (r"\p{Ll}", Category::Letter, "A-Za-z"),
    (r"\p{Lt}", Category::Letter, "A-Za-z"),
    (r"\p{Lm}", Category::Letter, "A-Za-z"),
    (r"\p{Lo}", Category::Letter, "A-Za-z"),
];

/// One compiled split regex.
#[derive(Debug)]
pub struct SplitRegex {
    regex: Regex,
    collapsed: bool,
}

impl SplitRegex {
    pub fn new(pattern: &str) -> Result<SplitRegex> {
        let collapsed = CLASSES.iter().any(|(name, _, _)| pattern.contains(name));
        let rewritten = if collapsed { collapse_regex(pattern)? } else { pattern.to_string() };
        let regex = Regex::new(&rewritten)
            .map_err(|e| ModelError::Tokenizer(format!("pre-tokenizer regex {pattern:?} ({rewritten:?}): {e}")))?;
        Ok(SplitRegex { regex, collapsed })
    }

    /// Split each piece (lengths in code points of `cpts`) into its matches and the runs
    /// between them (llama.cpp's `unicode_regex_split_stl`).
    pub fn split(&self, cpts: &[char], pieces: &[usize]) -> Result<Vec<usize>> {
        let text: String = cpts.iter().map(|&c| self.map_char(c)).collect();
        // Byte offset of each code point in `text`, to slice pieces and count matches.
        let mut at = Vec::with_capacity(cpts.len() + 1);
        let mut offset = 0;
        for c in text.chars() {
            at.push(offset);
            offset += c.len_utf8();
        }
        at.push(offset);
        let mut out = Vec::with_capacity(pieces.len());
        let mut start = 0;
        for &len in pieces {
            let piece = &text[at[start]..at[start + len]];
            let chars = |s: &str| s.chars().count();
            let mut prev = 0;
            for m in self.regex.find_iter(piece) {
                let m = m.map_err(|e| ModelError::Tokenizer(format!("pre-tokenizer regex: {e}")))?;
                if m.start() > prev {
                    out.push(chars(&piece[prev..m.start()]));
                }
                if m.end() > m.start() {
                    out.push(chars(m.as_str()));
                }
                prev = m.end();
            }
            if prev < piece.len() {
                out.push(chars(&piece[prev..]));
            }
            start += len;
        }
        Ok(out)
    }

    fn map_char(&self, c: char) -> char {
        if c.is_ascii() {
            return c;
        }
        let f = flags(c);
        if f.is_whitespace() {
            '\u{0B}'
        } else if self.collapsed {
            stand_in(f.category())
        } else {
            c
        }
    }
}

/// The regex for collapsed text: each `\p{..}` becomes its stand-in plus its ASCII
/// members, inside the enclosing brackets or in new ones (as llama.cpp rewrites it).
fn collapse_regex(pattern: &str) -> Result<String> {
    if !pattern.is_ascii() {
        return Err(ModelError::Tokenizer(format!(
            "pre-tokenizer regex {pattern:?} mixes Unicode classes and non-ASCII characters (llama.cpp refuses it too)"
        )));
    }
    let b = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut inside = false;
    let mut i = 0;
    while i < b.len() {
        let escaped = i > 0 && b[i - 1] == b'\\';
        if b[i] == b'[' && !escaped {
            inside = true;
        } else if b[i] == b']' && inside && !escaped {
            inside = false;
        } else if let Some((name, cat, ascii)) = CLASSES.iter().find(|(name, _, _)| pattern[i..].starts_with(name)) {
            out.push_str(if inside { "" } else { "[" });
            out.push(stand_in(*cat));
            out.push_str(ascii);
            out.push_str(if inside { "" } else { "]" });
            i += name.len();
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(re: &str, text: &str) -> Vec<String> {
        let re = SplitRegex::new(re).unwrap();
        super::super::split_words(text, |cpts, pieces| re.split(cpts, pieces).unwrap())
    }

    #[test]
    fn collapsed_classes_match_non_ascii_by_category() {
        assert_eq!(collapse_regex(r"\p{N}+|[^\s\p{L}]").unwrap(), "[\u{E0D1}0-9]+|[^\\s\u{E0D2}A-Za-z]");
        assert_eq!(words(r"\p{N}", "a12٣b"), ["a", "1", "2", "٣", "b"]);
        assert_eq!(words(r"\s?\p{L}+", "ab жи\u{3000}ç"), ["ab", " жи", "\u{3000}ç"]);
        assert_eq!(words(r"[\p{P}\$\+<=>\^~\|`]+", "a,.$b"), ["a", ",.$", "b"]);
    }

    #[test]
    fn plain_regexes_see_the_text_and_pieces_stay_apart() {
        assert_eq!(words("[0-9][0-9][0-9]", "12345"), ["123", "45"]);
        assert_eq!(words("[一-龥]+", "ab漢字c"), ["ab", "漢字", "c"]);
        let cpts: Vec<char> = "ab cd".chars().collect();
        // A lookahead does not see past its piece: "ab " and "cd" are separate pieces.
        let split = SplitRegex::new(r"\s+(?!\S)").unwrap().split(&cpts, &[3, 2]).unwrap();
        assert_eq!(split, [2, 1, 2]);
    }

    #[test]
    fn non_ascii_with_classes_is_refused() {
        assert!(SplitRegex::new(r"\p{L}|é").is_err());
    }
}
