//! Character-level tokenizer: the vocabulary is the sorted set of distinct characters of
//! a corpus, and a token id is a character's index in it.

use std::collections::HashMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizerError {
    /// The corpus a vocabulary was to be built from has no characters.
    EmptyCorpus,
    /// A character that is not in the vocabulary (`pos` counts characters, from 0).
    UnknownChar { ch: char, pos: usize },
    /// A token id outside `0..vocab`.
    UnknownId { id: u32, vocab: usize },
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerError::EmptyCorpus => write!(f, "cannot build a vocabulary from an empty corpus"),
            TokenizerError::UnknownChar { ch, pos } => {
                write!(f, "character {ch:?} (U+{:04X}) at position {pos} is not in the vocabulary", *ch as u32)
            }
            TokenizerError::UnknownId { id, vocab } => {
                write!(f, "token id {id} is out of range for a vocabulary of {vocab}")
            }
        }
    }
}

impl std::error::Error for TokenizerError {}

#[derive(Clone, Debug)]
pub struct CharTokenizer {
    chars: Vec<char>,
    ids: HashMap<char, u32>,
}

impl CharTokenizer {
    /// The vocabulary of `text`: its distinct characters, sorted.
    pub fn from_corpus(text: &str) -> Result<CharTokenizer, TokenizerError> {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        if chars.is_empty() {
            return Err(TokenizerError::EmptyCorpus);
        }
        let ids = chars.iter().enumerate().map(|(i, &c)| (c, i as u32)).collect();
        Ok(CharTokenizer { chars, ids })
    }

    pub fn vocab_size(&self) -> usize {
        self.chars.len()
    }

    /// The vocabulary, in id order.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    pub fn contains(&self, ch: char) -> bool {
        self.ids.contains_key(&ch)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        text.chars()
            .enumerate()
            .map(|(pos, ch)| self.ids.get(&ch).copied().ok_or(TokenizerError::UnknownChar { ch, pos }))
            .collect()
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        ids.iter()
            .map(|&id| {
                self.chars.get(id as usize).copied().ok_or(TokenizerError::UnknownId { id, vocab: self.chars.len() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sorted_vocab() {
        let tok = CharTokenizer::from_corpus("hello, world\n").unwrap();
        assert_eq!(tok.chars(), &['\n', ' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
        let ids = tok.encode("world, hello").unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), "world, hello");
    }

    #[test]
    fn unknown_input_is_a_clear_error() {
        let tok = CharTokenizer::from_corpus("abc").unwrap();
        let e = tok.encode("abz").unwrap_err();
        assert_eq!(e, TokenizerError::UnknownChar { ch: 'z', pos: 2 });
        assert!(e.to_string().contains("'z'"));
        assert!(tok.decode(&[3]).is_err());
        assert!(CharTokenizer::from_corpus("").is_err());
    }
}
