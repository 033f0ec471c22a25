//! What every decoder-only language model offers the generation loop, the CLI and the
//! evaluators: a forward pass over new tokens that extends a KV cache.

use crate::error::Result;
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
}
