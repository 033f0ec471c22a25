//! The guide's model lineage, trained from scratch on one corpus and scored one way:
//! the statistical generation (`ngram`: interpolated Kneser-Ney counts), the neural one
//! (`lstm`: an LSTM trained by truncated BPTT), and the pretrained-transformer one, both
//! sides of it (`encoder`: a BERT-style masked LM; `gpt`: train-demo's GPT, `crate::trainer`).
//!
//! Every model sees the same character vocabulary and the same train/validation split
//! (`CharSplit`); every neural model reads the same number of characters a step and
//! trains in the same loop (`crate::fit`); every model is scored in validation bits per
//! character (`score`). `run` trains any of them; given all four and a time budget it is
//! `lamina train-demo --compare`.

mod compare;
pub mod encoder;
pub mod lstm;
pub mod ngram;
pub mod score;

pub use compare::{run, Entry, LineageConfig, Sampling};

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Ngram,
    Lstm,
    Encoder,
    Gpt,
}

impl Arch {
    /// In the order of their history.
    pub const ALL: [Arch; 4] = [Arch::Ngram, Arch::Lstm, Arch::Encoder, Arch::Gpt];

    pub fn name(self) -> &'static str {
        match self {
            Arch::Ngram => "ngram",
            Arch::Lstm => "lstm",
            Arch::Encoder => "encoder",
            Arch::Gpt => "gpt",
        }
    }

    pub fn parse(s: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Trained by gradient descent (the n-gram is counted).
    pub fn is_neural(self) -> bool {
        self != Arch::Ngram
    }

    /// Predicts left to right, so it can generate text and its score is a probability
    /// of the text (the encoder's is a pseudo-likelihood).
    pub fn is_causal(self) -> bool {
        self != Arch::Encoder
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
