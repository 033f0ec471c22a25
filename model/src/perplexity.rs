//! Perplexity as llama.cpp's `llama-perplexity` measures it: the text is cut into chunks
//! of `n_ctx` tokens, each chunk is evaluated from an empty context, and only the second
//! half of each chunk is scored (every scored token has at least n_ctx/2 tokens of
//! context), so the figure is comparable with llama.cpp's for the same n_ctx.

use crate::causal_lm::{CausalLm, LogitsFor};
use crate::error::{ModelError, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct PerplexityReport {
    pub n_ctx: usize,
    /// Mean negative log-likelihood (nats) of each chunk's scored tokens.
    pub chunk_nll: Vec<f64>,
    pub tokens_scored: usize,
    pub mean_nll: f64,
    pub perplexity: f64,
}

/// Score `tokens` in chunks of `n_ctx` (at most `max_chunks`). With `bos`, each chunk's
/// first token is replaced by BOS, as llama-perplexity does for models that add one.
/// `progress(done, total, running_ppl)` is called after each chunk. A chunk whose
/// log-likelihood is not finite (a model with NaN weights) is an error, never a NaN result.
pub fn perplexity(
    model: &dyn CausalLm,
    tokens: &[u32],
    n_ctx: usize,
    max_chunks: Option<usize>,
    bos: Option<u32>,
    mut progress: impl FnMut(usize, usize, f64),
) -> Result<PerplexityReport> {
    let chunks = chunks(tokens, n_ctx, max_chunks, bos)?;
    let n_chunks = chunks.len();
    let _no_grad = lamina_tensor::NoGradGuard::new();
    let first = first_scored(n_ctx);
    let (mut total, mut count) = (0f64, 0usize);
    let mut chunk_nll = Vec::with_capacity(n_chunks);
    for (i, chunk) in chunks.iter().enumerate() {
        let mut cache = model.new_cache(n_ctx)?;
        let logits = model.forward(chunk, &mut cache, LogitsFor::All)?.to_vec_f32()?;
        let vocab = model.vocab_size();
        let mut nll = 0f64;
        for j in first..n_ctx - 1 {
            nll -= log_softmax_at(&logits[j * vocab..(j + 1) * vocab], chunk[j + 1] as usize);
        }
        if !nll.is_finite() {
            return Err(ModelError::Invalid(format!(
                "chunk {}: the negative log-likelihood is {nll}: the model's outputs are not finite \
                 (NaN or infinite weights, or hyperparameters that cannot be right)",
                i + 1
            )));
        }
        let n = n_ctx - 1 - first;
        chunk_nll.push(nll / n as f64);
        total += nll;
        count += n;
        progress(i + 1, n_chunks, (total / count as f64).exp());
    }
    let mean_nll = total / count as f64;
    Ok(PerplexityReport { n_ctx, chunk_nll, tokens_scored: count, mean_nll, perplexity: mean_nll.exp() })
}

/// The chunks llama-perplexity evaluates: consecutive windows of `n_ctx` tokens (at most
/// `max_chunks`), each with its first token replaced by `bos` when given.
pub fn chunks(tokens: &[u32], n_ctx: usize, max_chunks: Option<usize>, bos: Option<u32>) -> Result<Vec<Vec<u32>>> {
    if n_ctx < 4 {
        return Err(ModelError::Invalid(format!("the chunk size must be at least 4 tokens, got {n_ctx}")));
    }
    let available = tokens.len() / n_ctx;
    let n_chunks = max_chunks.map_or(available, |m| m.min(available));
    if n_chunks == 0 {
        return Err(ModelError::Invalid(format!(
            "the text has {} tokens, fewer than one chunk of {n_ctx}",
            tokens.len()
        )));
    }
    Ok(tokens
        .chunks_exact(n_ctx)
        .take(n_chunks)
        .map(|c| {
            let mut chunk = c.to_vec();
            if let Some(b) = bos {
                chunk[0] = b;
            }
            chunk
        })
        .collect())
}

/// The first position whose prediction is scored: every scored token has at least
/// `n_ctx / 2` tokens of context. Positions `first..n_ctx - 1` predict tokens `first + 1..`.
pub fn first_scored(n_ctx: usize) -> usize {
    n_ctx / 2
}

/// log softmax(row)[target], in f64.
pub fn log_softmax_at(row: &[f32], target: usize) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    row[target] as f64 - max - sum.ln()
}
