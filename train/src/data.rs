//! Token streams and batches: seeded random windows over a stream of token ids, and the
//! corpus statistics a loss is compared with.

use crate::TrainError;
use lamina_model::CharTokenizer;
use lamina_tensor::{Result, Tensor};
use std::collections::HashMap;

/// The text the repository ships (`data/corpus.txt`, see `data/README.md`), built into
/// the binary so the demo and the end-to-end test need no files and no network.
pub const SHIPPED_CORPUS: &str = include_str!("../../data/corpus.txt");

/// A text as every train-demo model sees it: one character vocabulary (that of the whole
/// text, so a character met only in validation still has an id) and one split, the last
/// `val_fraction` of the characters held out for validation.
#[derive(Clone, Debug)]
pub struct CharSplit {
    pub tokenizer: CharTokenizer,
    pub train: Vec<u32>,
    pub val: Vec<u32>,
}

impl CharSplit {
    pub fn new(text: &str, val_fraction: f32) -> std::result::Result<CharSplit, TrainError> {
        if !(val_fraction > 0.0 && val_fraction < 1.0) {
            return Err(TrainError::Config(format!("val_fraction must be in (0, 1), got {val_fraction}")));
        }
        let tokenizer = CharTokenizer::from_corpus(text)?;
        let mut train = tokenizer.encode(text)?;
        let split = ((train.len() as f64) * (1.0 - val_fraction as f64)) as usize;
        let val = train.split_off(split);
        Ok(CharSplit { tokenizer, train, val })
    }

    /// The training text (for statistics such as its unigram entropy).
    pub fn train_text(&self) -> String {
        self.tokenizer.decode(&self.train).unwrap_or_default()
    }
}

/// The workspace's small seedable generator (SplitMix64), for picking windows and orders.
pub use lamina_tensor::random::SplitMix64 as Rng;

/// Random (input, target) windows of `block` tokens from a token stream, nanoGPT's
/// `get_batch`: x = tokens[i..i+T], y = tokens[i+1..i+T+1].
#[derive(Clone, Debug)]
pub struct BatchSampler {
    tokens: Vec<i32>,
    batch: usize,
    block: usize,
    rng: Rng,
}

impl BatchSampler {
    /// Needs at least `block + 1` tokens.
    pub fn new(tokens: &[u32], batch: usize, block: usize, seed: u64) -> std::result::Result<BatchSampler, String> {
        if batch == 0 || block == 0 {
            return Err(format!("batch ({batch}) and block ({block}) must be positive"));
        }
        if tokens.len() < block + 1 {
            return Err(format!("{} tokens cannot fill a window of {} (+1 target)", tokens.len(), block));
        }
        Ok(BatchSampler { tokens: tokens.iter().map(|&t| t as i32).collect(), batch, block, rng: Rng::new(seed) })
    }

    /// B * T: the tokens of one batch.
    pub fn tokens_per_batch(&self) -> usize {
        self.batch * self.block
    }

    /// x (B, T) and y (B, T), I32.
    pub fn next_batch(&mut self) -> Result<(Tensor, Tensor)> {
        let (b, t) = (self.batch, self.block);
        let mut x = Vec::with_capacity(b * t);
        let mut y = Vec::with_capacity(b * t);
        for _ in 0..b {
            let i = self.rng.below(self.tokens.len() - t);
            x.extend_from_slice(&self.tokens[i..i + t]);
            y.extend_from_slice(&self.tokens[i + 1..i + t + 1]);
        }
        Ok((Tensor::from_vec(x, &[b, t])?, Tensor::from_vec(y, &[b, t])?))
    }
}

/// Entropy of the character distribution of `text`, in nats per character: the loss of
/// the best model that ignores context. A model that learned anything beats it.
pub fn unigram_entropy(text: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in text.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.ln()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_shifted_windows() {
        let tokens: Vec<u32> = (0..100).collect();
        let mut s = BatchSampler::new(&tokens, 4, 8, 1).unwrap();
        let (x, y) = s.next_batch().unwrap();
        assert_eq!(x.shape(), &[4, 8]);
        let (x, y) = (x.to_vec::<i32>().unwrap(), y.to_vec::<i32>().unwrap());
        for r in 0..4 {
            for j in 0..8 {
                assert_eq!(y[r * 8 + j], x[r * 8 + j] + 1);
            }
            assert!(x[r * 8 + 7] < 99);
        }
        assert!(BatchSampler::new(&tokens[..8], 1, 8, 0).is_err());
        assert!(BatchSampler::new(&tokens, 0, 8, 0).is_err());
    }

    #[test]
    fn entropy_of_known_distributions() {
        assert!(unigram_entropy("aaaa").abs() < 1e-12);
        assert!((unigram_entropy("abab") - 2f64.ln()).abs() < 1e-12);
        assert!((unigram_entropy("abcd") - 4f64.ln()).abs() < 1e-12);
    }
}
