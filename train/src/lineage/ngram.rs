//! The statistical generation: an interpolated Kneser-Ney n-gram model over token ids
//! (Chen & Goodman, "An Empirical Study of Smoothing Techniques for Language Modeling",
//! 1998, section 3.5, with one discount per order). Counting only: no tensors, no
//! gradients, CPU only.
//!
//! For a context h of k - 1 tokens and a token w, with h' the context without its first
//! token and p_0(w) = 1 / V:
//!
//! ```text
//! p_k(w | h) = max(c_k(h w) - D_k, 0) / c_k(h .)  +  D_k * N_k(h .) / c_k(h .) * p_{k-1}(w | h')
//! ```
//!
//! where c_N is the raw count at the model's order N and, below it, c_k(g) is the
//! continuation count N1+(. g): how many distinct tokens precede g. N_k(h .) is the
//! number of distinct w with c_k(h w) > 0. A context never seen (c_k(h .) = 0) backs off
//! entirely: p_k = p_{k-1}. Since D_k <= 1 and counts are whole numbers, the discounted
//! mass is exactly D_k N_k(h .) / c_k(h .), so every p_k sums to 1 over the vocabulary.
//!
//! Positions before the start of a text read as a boundary token (id V, never
//! predicted), so every k-gram has a left neighbour and continuation counts exist for
//! every context that occurs.

use crate::TrainError;
use lamina_model::sampling::{Sampler, SamplerConfig};
use std::collections::HashMap;

/// How the discount of each order is chosen.
#[derive(Clone, Debug, PartialEq)]
pub enum Discounts {
    /// Ney's estimate from the count-of-counts of each order, D = n1 / (n1 + 2 n2),
    /// kept in [0.1, 1] so that every token keeps some probability.
    Estimated,
    /// D_1 ..= D_N, each in [0, 1].
    Fixed(Vec<f64>),
}

/// The counts of one order k: every k-gram (c_k) and every (k - 1)-token context.
#[derive(Clone, Debug, Default)]
struct Level {
    grams: HashMap<Vec<u32>, u64>,
    /// c_k(h .) and N_k(h .).
    contexts: HashMap<Vec<u32>, (u64, u64)>,
}

impl Level {
    fn from_grams(grams: HashMap<Vec<u32>, u64>) -> Level {
        let mut contexts: HashMap<Vec<u32>, (u64, u64)> = HashMap::new();
        for (g, &c) in &grams {
            let e = contexts.entry(g[..g.len() - 1].to_vec()).or_default();
            e.0 += c;
            e.1 += 1;
        }
        Level { grams, contexts }
    }

    /// Ney's discount estimate.
    fn estimated_discount(&self) -> f64 {
        let n1 = self.grams.values().filter(|&&c| c == 1).count() as f64;
        let n2 = self.grams.values().filter(|&&c| c == 2).count() as f64;
        let d = if n1 + n2 > 0.0 { n1 / (n1 + 2.0 * n2) } else { 0.5 };
        d.clamp(0.1, 1.0)
    }
}

#[derive(Clone, Debug)]
pub struct KneserNey {
    order: usize,
    vocab: usize,
    /// levels[k - 1] holds order k.
    levels: Vec<Level>,
    discounts: Vec<f64>,
}

impl KneserNey {
    /// Count `tokens` (ids below `vocab`) for a model of order `order` (>= 1).
    pub fn fit(tokens: &[u32], vocab: usize, order: usize, discounts: Discounts) -> Result<KneserNey, TrainError> {
        let bad = |m: String| Err(TrainError::Config(format!("n-gram: {m}")));
        if order == 0 || vocab == 0 || tokens.is_empty() {
            return bad(format!("need order >= 1, a vocabulary and tokens (order {order}, vocab {vocab})"));
        }
        if let Some(&t) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return bad(format!("token {t} is outside the vocabulary of {vocab}"));
        }
        if let Discounts::Fixed(d) = &discounts {
            if d.len() != order || d.iter().any(|d| !(0.0..=1.0).contains(d)) {
                return bad(format!("need {order} discounts in [0, 1], got {d:?}"));
            }
        }
        let boundary = vocab as u32;
        let padded: Vec<u32> = std::iter::repeat_n(boundary, order - 1).chain(tokens.iter().copied()).collect();
        // Raw counts of the order-N grams ending at each token.
        let mut top: HashMap<Vec<u32>, u64> = HashMap::new();
        for end in order - 1..padded.len() {
            *top.entry(padded[end + 1 - order..=end].to_vec()).or_default() += 1;
        }
        // Each lower order: c_k(g) = the number of distinct (k + 1)-grams x g.
        let mut levels = vec![Level::from_grams(top)];
        for _ in 1..order {
            let mut cont: HashMap<Vec<u32>, u64> = HashMap::new();
            for g in levels[0].grams.keys() {
                *cont.entry(g[1..].to_vec()).or_default() += 1;
            }
            levels.insert(0, Level::from_grams(cont));
        }
        let discounts = match discounts {
            Discounts::Estimated => levels.iter().map(Level::estimated_discount).collect(),
            Discounts::Fixed(d) => d,
        };
        Ok(KneserNey { order, vocab, levels, discounts })
    }

    pub fn order(&self) -> usize {
        self.order
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// D_1 ..= D_N.
    pub fn discounts(&self) -> &[f64] {
        &self.discounts
    }

    /// c_k(gram) for k = gram.len(): the raw count at the model's order, the
    /// continuation count below (the boundary token is id V).
    pub fn count(&self, gram: &[u32]) -> u64 {
        let level = gram.len().checked_sub(1).and_then(|k| self.levels.get(k));
        level.and_then(|l| l.grams.get(gram)).copied().unwrap_or(0)
    }

    /// How many n-grams of every order the model stores.
    pub fn num_counts(&self) -> usize {
        self.levels.iter().map(|l| l.grams.len()).sum()
    }

    /// p(w | history) for every w of the vocabulary; only the last N - 1 tokens of
    /// `history` matter, and a short history is preceded by the boundary.
    pub fn distribution(&self, history: &[u32]) -> Vec<f64> {
        let ctx = self.context(history);
        (0..self.vocab as u32).map(|w| self.prob(&ctx, w)).collect()
    }

    /// p(w | ctx) for a boundary-padded context of N - 1 tokens: the recursion from p_0.
    fn prob(&self, ctx: &[u32], w: u32) -> f64 {
        let mut p = 1.0 / self.vocab as f64;
        let mut gram = Vec::with_capacity(self.order);
        for (k, (level, &d)) in (1..).zip(self.levels.iter().zip(&self.discounts)) {
            let h = &ctx[ctx.len() + 1 - k..]; // the last k - 1 tokens
            let Some(&(total, distinct)) = level.contexts.get(h) else { continue };
            gram.clear();
            gram.extend_from_slice(h);
            gram.push(w);
            let c = level.grams.get(&gram).copied().unwrap_or(0) as f64;
            p = (c - d).max(0.0) / total as f64 + d * distinct as f64 / total as f64 * p;
        }
        p
    }

    /// The N - 1 tokens before the next one: the end of `history`, boundary-padded.
    fn context(&self, history: &[u32]) -> Vec<u32> {
        let n = self.order - 1;
        let tail = &history[history.len().saturating_sub(n)..];
        let mut ctx = vec![self.vocab as u32; n - tail.len()];
        ctx.extend_from_slice(tail);
        ctx
    }

    /// Total nats of tokens[1..] each given the tokens before it (token 0 is context
    /// only, as for the neural models), and how many were scored.
    pub fn score(&self, tokens: &[u32]) -> (f64, usize) {
        let nats = (1..tokens.len()).map(|i| -self.prob(&self.context(&tokens[..i]), tokens[i]).ln()).sum();
        (nats, tokens.len().saturating_sub(1))
    }

    /// `prompt` followed by `n` tokens drawn one at a time (the GPT's sampler: temperature
    /// over log-probabilities, optional top-k).
    pub fn generate(
        &self,
        prompt: &[u32],
        n: usize,
        temperature: f32,
        top_k: Option<usize>,
        seed: u64,
    ) -> Result<Vec<u32>, TrainError> {
        let bad = |e: lamina_model::ModelError| TrainError::Config(format!("n-gram sampling: {e}"));
        let mut sampler = Sampler::new(SamplerConfig::temperature_top_k(temperature, top_k, seed)).map_err(bad)?;
        let mut seq = prompt.to_vec();
        for _ in 0..n {
            let logits: Vec<f32> = self.distribution(&seq).iter().map(|&p| p.ln() as f32).collect();
            seq.push(sampler.sample(&logits, &seq).map_err(bad)?);
        }
        Ok(seq)
    }
}
