//! The generation loop shared by every causal LM: one batched prefill pass over the
//! prompt, then one decode pass per new token, with timing for `--stats`.

use crate::causal_lm::{CausalLm, LogitsFor};
use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use crate::sampling::Sampler;
use std::time::{Duration, Instant};

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The callback asked to stop (end-of-generation token, stop string, ...).
    Stopped,
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The KV cache (the context) is full.
    ContextFull,
}

#[derive(Clone, Debug, Default)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prompt_time: Duration,
    /// Decode passes only (the first token comes from the prefill pass).
    pub decode_time: Duration,
    pub time_to_first_token: Duration,
}

impl GenerationStats {
    pub fn prompt_tokens_per_s(&self) -> f64 {
        self.prompt_tokens as f64 / self.prompt_time.as_secs_f64().max(1e-9)
    }

    /// Tokens per second of the decode passes (the tokens after the first).
    pub fn decode_tokens_per_s(&self) -> f64 {
        self.generated_tokens.saturating_sub(1) as f64 / self.decode_time.as_secs_f64().max(1e-9)
    }
}

/// Extend `cache` with `prompt`, then sample up to `max_new_tokens` tokens. `history`
/// (prior tokens of the conversation, for the repetition penalty) gets the prompt and
/// the new tokens appended. `on_token(id)` sees each new token as soon as it exists and
/// returns `false` to stop (the token is kept).
pub fn generate(
    model: &dyn CausalLm,
    cache: &mut KvCache,
    prompt: &[u32],
    max_new_tokens: usize,
    sampler: &mut Sampler,
    history: &mut Vec<u32>,
    mut on_token: impl FnMut(u32) -> Result<bool>,
) -> Result<(Vec<u32>, StopReason, GenerationStats)> {
    if prompt.is_empty() {
        return Err(ModelError::Invalid("the prompt is empty: there is nothing to continue from".into()));
    }
    let _no_grad = lamina_tensor::NoGradGuard::new();
    let mut stats = GenerationStats { prompt_tokens: prompt.len(), ..Default::default() };
    let start = Instant::now();
    let mut logits = model.forward(prompt, cache, LogitsFor::Last)?.to_vec_f32()?;
    stats.prompt_time = start.elapsed();
    history.extend_from_slice(prompt);
    let mut out = Vec::new();
    let decode_start = Instant::now();
    let reason = loop {
        if out.len() == max_new_tokens {
            break StopReason::MaxTokens;
        }
        let next = sampler.sample(&logits, history)?;
        if out.is_empty() {
            stats.time_to_first_token = start.elapsed();
        }
        out.push(next);
        history.push(next);
        stats.generated_tokens += 1;
        if !on_token(next)? {
            break StopReason::Stopped;
        }
        if out.len() == max_new_tokens {
            break StopReason::MaxTokens;
        }
        if cache.len() + 1 > cache.capacity() {
            break StopReason::ContextFull;
        }
        logits = model.forward(&[next], cache, LogitsFor::Last)?.to_vec_f32()?;
    };
    stats.decode_time =
        decode_start.elapsed().saturating_sub(stats.time_to_first_token.saturating_sub(stats.prompt_time));
    Ok((out, reason, stats))
}
