//! What every decoder-only language model offers the generation loop, the CLI, the
//! evaluators and the server: a forward pass over new tokens that extends a KV cache, for
//! one sequence or for several at once (continuous batching), and the final hidden states
//! (embeddings).

use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use lamina_tensor::{Device, Tensor};

/// Which positions of a forward pass get logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogitsFor {
    /// Only the last token (generation): skips the vocabulary projection of the rest.
    Last,
    /// Every token (perplexity, training).
    All,
}

/// One sequence's part of a batched forward: its new tokens, run after what its own
/// cache holds.
pub struct SeqStep<'a> {
    pub tokens: &'a [u32],
    pub cache: &'a mut KvCache,
}

pub trait CausalLm {
    fn vocab_size(&self) -> usize;
    /// The longest context the model was trained for.
    fn context_length(&self) -> usize;
    fn device(&self) -> Device;
    /// An empty cache for up to `capacity` positions (capped at the context length).
    fn new_cache(&self, capacity: usize) -> Result<KvCache>;
    /// Run `tokens` after what `cache` holds; returns logits (positions, vocab) and
    /// extends the cache. Runs without recording gradients only if the caller says so.
    fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: LogitsFor) -> Result<Tensor>;

    /// Several sequences in one pass, each extending its own cache: logits (rows, vocab)
    /// with the sequences' rows in order (one row each for `LogitsFor::Last`, one per new
    /// token for `All`). A model that batches overrides this so the projections run once
    /// over every sequence's tokens (M > 1 rows: the weights are read once per step, not
    /// once per sequence); this default runs the sequences one after the other. On an
    /// error no cache has advanced, so the step can be retried.
    fn forward_batch(&self, seqs: &mut [SeqStep<'_>], which: LogitsFor) -> Result<Tensor> {
        let mut rows = Vec::with_capacity(seqs.len());
        let start: Vec<usize> = seqs.iter().map(|s| s.cache.len()).collect();
        for s in seqs.iter_mut() {
            match self.forward(s.tokens, s.cache, which) {
                Ok(r) => rows.push(r),
                Err(e) => {
                    seqs.iter_mut().zip(&start).for_each(|(s, &n)| s.cache.truncate(n));
                    return Err(e);
                }
            }
        }
        let refs: Vec<&Tensor> = rows.iter().collect();
        Ok(Tensor::cat(&refs, 0)?)
    }

    /// The last hidden state of `tokens` (positions, dim): the output of the final norm,
    /// before the vocabulary projection, as Hugging Face's `last_hidden_state`. What the
    /// server's embeddings are pooled from.
    fn hidden_states(&self, tokens: &[u32]) -> Result<Tensor> {
        let _ = tokens;
        Err(ModelError::Unsupported("hidden states (embeddings) for this architecture".into()))
    }
}
