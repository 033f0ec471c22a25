//! Log-likelihood of a continuation given a context, as EleutherAI's lm-evaluation-harness
//! computes it (v0.4, `TemplateLM._encode_pair` and `HFLM._loglikelihood_tokens`):
//!
//! - Token boundary: whitespace at the end of the context moves to the front of the
//!   continuation; context + continuation is tokenized as one text and the context alone;
//!   the continuation's tokens are the whole's tokens after as many tokens as the context
//!   has. (Where BPE joins text across the boundary the model still reads the context's own
//!   tokens: that is the harness's rule, kept as it is.) An empty context is the prefix
//!   token (BOS, else EOS) and the continuation is tokenized alone.
//! - The model reads (context + continuation)[:-1], left-truncated to the context window;
//!   the log-probabilities of the continuation tokens are summed, and the continuation is
//!   "greedy" when each of its tokens is the argmax.
//!
//! [`Scorer`] keeps the KV cache of the previous request and recomputes only from the
//! first token that differs: the choices of a question share their context, so after the
//! first choice each one costs a forward pass over its own tokens only.

use super::error::{EvalError, Result};
use lamina_model::perplexity::log_softmax_at;
use lamina_model::{BpeTokenizer, CausalLm, KvCache, LogitsFor};

/// One log-likelihood request, as token ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub context: Vec<u32>,
    pub continuation: Vec<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Sum of the continuation tokens' log-probabilities (nats).
    pub loglik: f64,
    /// Every continuation token was the most likely one.
    pub greedy: bool,
}

/// Python's `str.isspace`, which the harness's `rstrip()` uses: Unicode White_Space plus
/// the four ASCII separators U+001C..U+001F.
fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// The harness's tokens for `context` followed by `continuation`. `parse_special` lets
/// control-token text (a chat template's) become control tokens.
pub fn encode_pair(
    tokenizer: &BpeTokenizer,
    context: &str,
    continuation: &str,
    parse_special: bool,
) -> Result<Request> {
    if context.is_empty() {
        let prefix = tokenizer.bos_id().or(tokenizer.eos_id()).ok_or_else(|| {
            EvalError::Config("an empty context needs a prefix token, and the tokenizer has no BOS or EOS".into())
        })?;
        let continuation = tokenizer.encode(continuation, false, parse_special)?;
        return Ok(Request { context: vec![prefix], continuation });
    }
    let kept = context.trim_end_matches(python_space);
    let (context, continuation) = if kept.len() < context.len() {
        (kept, format!("{}{continuation}", &context[kept.len()..]))
    } else {
        (context, continuation.to_string())
    };
    let whole = tokenizer.encode(&format!("{context}{continuation}"), false, parse_special)?;
    let context = tokenizer.encode(context, false, parse_special)?;
    let continuation = whole.get(context.len()..).unwrap_or(&[]).to_vec();
    Ok(Request { context, continuation })
}

/// Scores requests one after another, reusing the KV cache over a shared prefix.
pub struct Scorer<'m> {
    model: &'m dyn CausalLm,
    cache: KvCache,
    /// The tokens whose keys and values the cache holds.
    cached: Vec<u32>,
}

impl<'m> Scorer<'m> {
    /// A scorer whose window is `ctx` tokens (capped at the model's context length).
    pub fn new(model: &'m dyn CausalLm, ctx: usize) -> Result<Scorer<'m>> {
        let cache = model.new_cache(ctx.min(model.context_length()))?;
        Ok(Scorer { model, cache, cached: Vec::new() })
    }

    pub fn score(&mut self, request: &Request) -> Result<Scored> {
        let (ctx, cont) = (&request.context, &request.continuation);
        if ctx.is_empty() || cont.is_empty() {
            return Err(EvalError::Config(format!(
                "a log-likelihood request needs context and continuation tokens (got {} and {}): \
                 the continuation may have merged into the context's last token",
                ctx.len(),
                cont.len()
            )));
        }
        let window = self.cache.capacity();
        if cont.len() > window {
            return Err(EvalError::Config(format!(
                "a continuation of {} tokens does not fit the context window of {window}",
                cont.len()
            )));
        }
        let full: Vec<u32> = ctx.iter().chain(cont).copied().collect();
        let full = &full[full.len().saturating_sub(window + 1)..];
        let input = &full[..full.len() - 1];
        let first = input.len() - (cont.len() - 1) - 1;
        let rows = match self.forward(input, first) {
            Ok(r) => r,
            Err(e) => {
                self.cached.clear();
                self.cache.clear();
                return Err(e);
            }
        };
        let vocab = self.model.vocab_size();
        let mut scored = Scored { loglik: 0.0, greedy: true };
        for (row, &target) in rows.chunks_exact(vocab).zip(cont) {
            scored.loglik += log_softmax_at(row, target as usize);
            scored.greedy &= argmax(row) == target as usize;
        }
        Ok(scored)
    }

    /// Logits of `input[first..]`, (input.len() - first, vocab) row-major, after bringing
    /// the cache to hold `input[..first]`.
    fn forward(&mut self, input: &[u32], first: usize) -> Result<Vec<f32>> {
        let _no_grad = lamina_tensor::NoGradGuard::new();
        let shared = self.cached.iter().zip(input).take_while(|(a, b)| a == b).count();
        let reuse = shared.min(first);
        self.cache.truncate(reuse);
        self.cached.truncate(reuse);
        if first > reuse {
            self.model.forward(&input[reuse..first], &mut self.cache, LogitsFor::Last)?;
        }
        let logits = self.model.forward(&input[first..], &mut self.cache, LogitsFor::All)?.to_vec_f32()?;
        self.cached = input.to_vec();
        Ok(logits)
    }
}

/// The first index of the largest value (numpy's and torch's argmax on ties).
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_whitespace_includes_the_separators() {
        assert!(python_space(' ') && python_space('\n') && python_space('\u{a0}') && python_space('\u{1f}'));
        assert!(!python_space('a') && !python_space('\u{200b}'));
        assert_eq!("ab \n\u{1c}".trim_end_matches(python_space), "ab");
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[0.0]), 0);
    }
}
