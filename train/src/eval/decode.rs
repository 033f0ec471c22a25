//! Generating one answer: greedy or sampled decoding from a prompt, stopping at an
//! end-of-generation token, at a stop string (the answer is cut before it, as
//! lm-evaluation-harness's `until` cuts), at the token limit or at the end of the context;
//! with the time of every token, for the efficiency measures.

use super::error::{EvalError, Result};
use lamina_model::generation::{generate, StopReason};
use lamina_model::sampling::{Sampler, SamplerConfig};
use lamina_model::{BpeTokenizer, CausalLm, KvCache};
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct DecodeOptions {
    pub max_tokens: usize,
    /// The answer ends before the first of these.
    pub stop: Vec<String>,
    pub sampler: SamplerConfig,
    /// Keep going past end-of-generation tokens (speed measurements want a fixed length).
    pub ignore_eos: bool,
}

/// Why an answer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// An end-of-generation token (EOS, `<|im_end|>`).
    EndOfGeneration,
    StopString,
    MaxTokens,
    ContextFull,
}

impl Ending {
    pub fn name(self) -> &'static str {
        match self {
            Ending::EndOfGeneration => "end_of_generation",
            Ending::StopString => "stop_string",
            Ending::MaxTokens => "max_tokens",
            Ending::ContextFull => "context_full",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Answer {
    /// The generated text without control tokens, cut before a stop string.
    pub text: String,
    pub prompt_tokens: usize,
    /// Tokens generated (the end-of-generation token included).
    pub tokens: usize,
    pub ending: Ending,
    /// The prefill pass over the prompt (seconds).
    pub prefill_s: f64,
    /// From the start to the first new token (prefill and its sampling).
    pub ttft_s: f64,
    /// The time between each new token and the one before it (one decode pass each).
    pub token_gaps_s: Vec<f64>,
}

/// The earliest byte at which one of `stop` starts in `text`.
pub fn first_stop(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str())).min()
}

/// Generate an answer to `prompt` (token ids) from an empty `cache`.
pub fn answer(
    model: &dyn CausalLm,
    tokenizer: &BpeTokenizer,
    cache: &mut KvCache,
    prompt: &[u32],
    options: &DecodeOptions,
) -> Result<Answer> {
    if prompt.len() >= cache.capacity() {
        return Err(EvalError::Config(format!(
            "a prompt of {} tokens leaves no room to answer in a context of {} (raise --ctx)",
            prompt.len(),
            cache.capacity()
        )));
    }
    cache.clear();
    let mut sampler = Sampler::new(options.sampler.clone())?;
    let (mut ids, mut times, mut cut) = (Vec::new(), Vec::new(), None);
    let start = Instant::now();
    let (_, reason, stats) = generate(model, cache, prompt, options.max_tokens, &mut sampler, &mut Vec::new(), |id| {
        times.push(start.elapsed().as_secs_f64());
        if tokenizer.is_end_of_generation(id) {
            return Ok(options.ignore_eos);
        }
        ids.push(id);
        if !options.stop.is_empty() {
            cut = first_stop(&tokenizer.decode(&ids, true)?, &options.stop);
            return Ok(cut.is_none());
        }
        Ok(true)
    })?;
    let mut text = tokenizer.decode(&ids, true)?;
    let ending = match (reason, cut) {
        (StopReason::Stopped, Some(at)) => {
            text.truncate(at);
            Ending::StopString
        }
        (StopReason::Stopped, None) => Ending::EndOfGeneration,
        (StopReason::MaxTokens, _) => Ending::MaxTokens,
        (StopReason::ContextFull, _) => Ending::ContextFull,
    };
    Ok(Answer {
        text,
        prompt_tokens: prompt.len(),
        tokens: times.len(),
        ending,
        prefill_s: stats.prompt_time.as_secs_f64(),
        ttft_s: times.first().copied().unwrap_or(0.0),
        token_gaps_s: times.windows(2).map(|w| w[1] - w[0]).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_stop_string_wins() {
        let stop = vec!["\n\n".to_string(), "Q:".to_string(), String::new()];
        assert_eq!(first_stop("42\nQ: next\n\n", &stop), Some(3));
        assert_eq!(first_stop("42", &stop), None);
        assert_eq!(first_stop("", &[]), None);
    }
}
