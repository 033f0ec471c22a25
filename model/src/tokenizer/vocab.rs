//! The token table every tokenizer family shares: text, kind and score by id, and the id
//! of each text (llama.cpp's `id_to_token` and `token_to_id`).

use super::special::TokenKind;
use std::collections::HashMap;

#[derive(Debug)]
pub struct Vocab {
    texts: Vec<String>,
    kinds: Vec<TokenKind>,
    /// SentencePiece scores by id (empty for vocabularies without them: all 0).
    scores: Vec<f32>,
    by_text: HashMap<String, u32>,
}

impl Vocab {
    /// A later token with the same text as an earlier one takes its place in the lookup,
    /// as in llama.cpp (GGUF files with repeated texts are refused before this).
    pub fn new(texts: Vec<String>, kinds: Vec<TokenKind>, scores: Vec<f32>) -> Vocab {
        debug_assert_eq!(texts.len(), kinds.len());
        debug_assert!(scores.is_empty() || scores.len() == texts.len());
        let mut by_text = HashMap::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            by_text.insert(t.clone(), i as u32);
        }
        Vocab { texts, kinds, scores, by_text }
    }

    /// The first token whose text an earlier token has: `(earlier, later)`.
    pub fn first_repeat(&self) -> Option<(usize, usize)> {
        if self.by_text.len() == self.texts.len() {
            return None;
        }
        let mut seen = HashMap::with_capacity(self.texts.len());
        self.texts.iter().enumerate().find_map(|(i, t)| seen.insert(t.as_str(), i).map(|first| (first, i)))
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// The token whose text is `text`.
    pub fn id(&self, text: &str) -> Option<u32> {
        self.by_text.get(text).copied()
    }

    pub fn text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(String::as_str)
    }

    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    pub fn kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }

    pub fn kinds(&self) -> &[TokenKind] {
        &self.kinds
    }

    pub fn set_kind(&mut self, id: u32, kind: TokenKind) {
        self.kinds[id as usize] = kind;
    }

    pub fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }
}
