//! How far a model (quantized, pruned) has moved from a base model, measured as
//! llama-perplexity's `--kl-divergence` does: both score the same chunks (llama-perplexity's
//! chunks, second half scored) and each scored position compares the two next-token
//! distributions (KL(base || model), the true token's probability, the top token).
//!
//! llama.cpp stores the base logits of every chunk in a file first (16-bit log-probs);
//! here the base model runs next to the candidate one chunk at a time ([`Base::Model`]),
//! so only one chunk's logits of each model are in memory, and nothing is rounded. A
//! sweep that compares many candidates with one base can keep the base logits instead
//! ([`BaseCache`]) and run the base model once.

mod stats;

pub use stats::{compare_position, percentile, summarize, Distribution, Estimate, KlReport, Position, PERCENTILES};

use crate::causal_lm::{CausalLm, LogitsFor};
use crate::error::{ModelError, Result};
use crate::perplexity::{chunks, first_scored};
use crate::tokenizer::Tokenizer;
use rayon::prelude::*;
use std::borrow::Cow;

/// Which chunks to score: llama-perplexity's `-c` and `--chunks`, and the BOS that
/// replaces each chunk's first token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KlOptions {
    pub n_ctx: usize,
    pub max_chunks: Option<usize>,
    pub bos: Option<u32>,
}

/// Running figures after each chunk, for a progress line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KlProgress {
    pub done: usize,
    pub total: usize,
    pub ppl: f64,
    pub ppl_base: f64,
    pub mean_kld: f64,
}

/// Where the base model's logits come from.
pub enum Base<'a> {
    /// Run the base model on each chunk, next to the candidate.
    Model(&'a dyn CausalLm),
    /// Logits kept from an earlier run on the same chunks.
    Cached(&'a BaseCache),
}

/// The base model's logits at the scored positions of every chunk.
pub struct BaseCache {
    opts: KlOptions,
    vocab: usize,
    chunks: Vec<Vec<u32>>,
    /// Per chunk: (n_ctx - 1 - n_ctx/2, vocab) logits, row-major.
    logits: Vec<Vec<f32>>,
}

impl BaseCache {
    /// Bytes the cache would take for `n_chunks` chunks.
    pub fn bytes_needed(vocab: usize, n_ctx: usize, n_chunks: usize) -> u64 {
        (n_ctx - 1 - first_scored(n_ctx)) as u64 * vocab as u64 * 4 * n_chunks as u64
    }

    /// Run `model` over the chunks of `tokens`; `progress(done, total)` after each.
    pub fn compute(
        model: &dyn CausalLm,
        tokens: &[u32],
        opts: KlOptions,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<BaseCache> {
        let chunks = chunks(tokens, opts.n_ctx, opts.max_chunks, opts.bos)?;
        let mut logits = Vec::with_capacity(chunks.len());
        for (i, chunk) in chunks.iter().enumerate() {
            logits.push(scored_logits(model, chunk)?);
            progress(i + 1, chunks.len());
        }
        Ok(BaseCache { opts, vocab: model.vocab_size(), chunks, logits })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab
    }
}

impl Base<'_> {
    fn vocab_size(&self) -> usize {
        match self {
            Base::Model(m) => m.vocab_size(),
            Base::Cached(c) => c.vocab,
        }
    }

    fn scored_logits(&self, i: usize, chunk: &[u32], opts: &KlOptions) -> Result<Cow<'_, [f32]>> {
        match self {
            Base::Model(m) => Ok(Cow::Owned(scored_logits(*m, chunk)?)),
            Base::Cached(c) => {
                if c.opts != *opts || c.chunks.get(i).map(Vec::as_slice) != Some(chunk) {
                    return Err(ModelError::Invalid(
                        "the cached base logits were computed for other tokens or chunk options".into(),
                    ));
                }
                Ok(Cow::Borrowed(&c.logits[i]))
            }
        }
    }
}

/// The logits of positions `n_ctx/2 .. n_ctx - 1` of one chunk run from an empty cache:
/// (n_ctx - 1 - n_ctx/2, vocab), row-major.
fn scored_logits(model: &dyn CausalLm, chunk: &[u32]) -> Result<Vec<f32>> {
    let _no_grad = lamina_tensor::NoGradGuard::new();
    let n_ctx = chunk.len();
    let first = first_scored(n_ctx);
    let mut cache = model.new_cache(n_ctx)?;
    let logits = model.forward(chunk, &mut cache, LogitsFor::All)?;
    Ok(logits.narrow(0, first, n_ctx - 1 - first)?.to_vec_f32()?)
}

/// KL divergence and perplexity statistics of `model` against `base` on the chunks of
/// `tokens`. Both must share a vocabulary (check tokenizers with [`check_same_tokenizer`]).
pub fn kl_divergence(
    base: Base<'_>,
    model: &dyn CausalLm,
    tokens: &[u32],
    opts: KlOptions,
    mut progress: impl FnMut(KlProgress),
) -> Result<KlReport> {
    let vocab = model.vocab_size();
    if base.vocab_size() != vocab {
        return Err(ModelError::Invalid(format!(
            "the base model has a vocabulary of {} tokens and the model {vocab}: KL divergence compares \
             distributions over the same vocabulary",
            base.vocab_size()
        )));
    }
    let chunks = chunks(tokens, opts.n_ctx, opts.max_chunks, opts.bos)?;
    let first = first_scored(opts.n_ctx);
    let mut positions: Vec<Position> = Vec::with_capacity(chunks.len() * (opts.n_ctx - 1 - first));
    for (i, chunk) in chunks.iter().enumerate() {
        let base_rows = base.scored_logits(i, chunk, &opts)?;
        let rows = scored_logits(model, chunk)?;
        let targets = &chunk[first + 1..];
        let compared: Vec<Position> = lamina_tensor::cpu::parallel::install(|| {
            base_rows
                .par_chunks(vocab)
                .zip(rows.par_chunks(vocab))
                .zip(targets.par_iter())
                .map(|((b, q), &t)| compare_position(b, q, t as usize))
                .collect::<Result<_>>()
        })?;
        positions.extend(compared);
        let n = positions.len() as f64;
        progress(KlProgress {
            done: i + 1,
            total: chunks.len(),
            ppl: (positions.iter().map(|p| p.nll).sum::<f64>() / n).exp(),
            ppl_base: (positions.iter().map(|p| p.nll_base).sum::<f64>() / n).exp(),
            mean_kld: positions.iter().map(|p| p.kld).sum::<f64>() / n,
        });
    }
    summarize(&positions, opts.n_ctx, chunks.len())
}

/// Refuse to compare models whose tokenizers differ: the same id must mean the same text
/// (and BOS the same token) in both, or the two distributions are over different things.
pub fn check_same_tokenizer(base: &Tokenizer, model: &Tokenizer) -> Result<()> {
    if base.vocab_size() != model.vocab_size() {
        return Err(ModelError::Invalid(format!(
            "the tokenizers differ: the base has {} tokens, the model {}",
            base.vocab_size(),
            model.vocab_size()
        )));
    }
    if let Some(id) = (0..base.vocab_size() as u32).find(|&i| base.id_to_token(i) != model.id_to_token(i)) {
        return Err(ModelError::Invalid(format!(
            "the tokenizers differ at id {id}: {:?} in the base, {:?} in the model",
            base.id_to_token(id).unwrap_or(""),
            model.id_to_token(id).unwrap_or("")
        )));
    }
    if (base.bos_id(), base.adds_bos()) != (model.bos_id(), model.adds_bos()) {
        return Err(ModelError::Invalid(format!(
            "the tokenizers differ in BOS: base {:?} (added: {}), model {:?} (added: {})",
            base.bos_id(),
            base.adds_bos(),
            model.bos_id(),
            model.adds_bos()
        )));
    }
    Ok(())
}

/// `text`'s tokens, after checking that both tokenizers have the same vocabulary and
/// split this text the same way (different merges would give different ids).
pub fn tokenize_for_both(base: &Tokenizer, model: &Tokenizer, text: &str) -> Result<Vec<u32>> {
    check_same_tokenizer(base, model)?;
    let ids = model.encode(text, false, false)?;
    let base_ids = base.encode(text, false, false)?;
    if ids != base_ids {
        // The first difference (or the end of the shorter list).
        let i = ids.iter().zip(&base_ids).take_while(|(a, b)| a == b).count();
        return Err(ModelError::Invalid(format!(
            "the tokenizers split the text differently (first at token {i}): they have the same vocabulary but not the same merges"
        )));
    }
    Ok(ids)
}
