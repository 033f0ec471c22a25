//! WordPiece for BERT-style encoders, as llama.cpp runs it for
//! `tokenizer.ggml.model = bert` (`llm_tokenizer_wpm_session` in `src/llama-vocab.cpp`).
//!
//! The text is normalized and split into words (BERT's basic tokenizer: whitespace
//! splits; punctuation, ASCII symbols and CJK ideographs stand alone; controls are
//! dropped; optionally lowercased and stripped of accents). Each word gets the phantom
//! space `▁` in front (llama.cpp's converter writes word-initial tokens with `▁` and
//! drops BERT's `##` from the others), then is cut greedily into the longest tokens; a
//! word with any part that matches no token becomes the unknown token as a whole.

use super::unicode::{flags, nfd_first, to_lower};
use super::Vocab;
use crate::error::{ModelError, Result};

#[derive(Debug)]
pub struct WordPiece {
    lowercase: bool,
    strip_accents: bool,
    /// The longest token text in bytes: no match is tried beyond it.
    max_token_len: usize,
}

impl WordPiece {
    pub fn new(vocab: &Vocab, lowercase: bool, strip_accents: bool) -> WordPiece {
        let max_token_len = vocab.texts().iter().map(String::len).max().unwrap_or(0);
        WordPiece { lowercase, strip_accents, max_token_len }
    }

    /// Append the tokens of a text fragment.
    pub fn encode(&self, text: &str, vocab: &Vocab, unk: Option<u32>, out: &mut Vec<u32>) -> Result<()> {
        for word in self.words(text) {
            let word = format!("\u{2581}{word}");
            let n = word.len();
            let before = out.len();
            let mut i = 0;
            while i < n {
                let longest = (i + 1..=n.min(i + self.max_token_len + 1))
                    .rev()
                    .find_map(|j| Some((j, vocab.id(word.get(i..j)?)?)));
                match longest {
                    Some((j, id)) => {
                        out.push(id);
                        i = j;
                    }
                    None => {
                        out.truncate(before);
                        break;
                    }
                }
            }
            if out.len() == before {
                out.push(unk.ok_or_else(|| {
                    ModelError::Tokenizer(format!("{word:?} has no WordPiece tokens and there is no unknown token"))
                })?);
            }
        }
        Ok(())
    }

    /// BERT's basic tokenizer (llama.cpp's `preprocess`).
    fn words(&self, text: &str) -> Vec<String> {
        let mut words = vec![String::new()];
        for c in text.chars() {
            let c = if self.strip_accents { nfd_first(c) } else { c };
            // Classified before lowercasing, as llama.cpp does.
            let f = flags(c);
            let alone = f.is_punctuation() || ((c as u32) < 0x7F && f.is_symbol()) || is_chinese_char(c);
            if f.is_whitespace() {
                if !words.last().expect("never empty").is_empty() {
                    words.push(String::new());
                }
                continue;
            }
            if c == '\0' || c == '\u{FFFD}' || f.is_control() || (self.strip_accents && f.is_mark()) {
                continue;
            }
            let c = if self.lowercase { to_lower(c) } else { c };
            if alone {
                if !words.last().expect("never empty").is_empty() {
                    words.push(String::new());
                }
                words.last_mut().expect("never empty").push(c);
                words.push(String::new());
            } else {
                words.last_mut().expect("never empty").push(c);
            }
        }
        if words.last().is_some_and(String::is_empty) {
            words.pop();
        }
        words
    }
}

/// CJK ideographs, as BERT's `_is_chinese_char` (and llama.cpp) list them.
fn is_chinese_char(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        // llama.cpp: "this should be 0x2B820 but in hf rust code it is 0x2B920"
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_tokenizer_words() {
        let wp = WordPiece { lowercase: true, strip_accents: true, max_token_len: 8 };
        assert_eq!(wp.words(" Äpfel, 3$x\t漢字\u{7}ok "), ["apfel", ",", "3", "$", "x", "漢", "字", "ok"]);
        let cased = WordPiece { lowercase: false, strip_accents: false, max_token_len: 8 };
        assert_eq!(cased.words("Äpfel"), ["Äpfel"]);
    }
}
