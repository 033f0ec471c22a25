//! Autoregressive sampling: run the model on the last `ctx` tokens, take the logits of the
//! final position, and draw the next token (temperature, optional top-k).

use crate::Gpt;
use lamina_tensor::{no_grad, random::uniform_at, Error, Result, Tensor};

impl Gpt {
    /// Extend `prompt` by `max_new` sampled tokens and return the whole sequence
    /// (prompt first). Runs without recording gradients and without dropout.
    ///
    /// `temperature` divides the logits (0 means greedy: always the most likely token);
    /// `top_k` keeps only the k most likely tokens before sampling. The draws are a pure
    /// function of `seed`. No KV cache: each step recomputes the window (fine at this size).
    pub fn generate(
        &self,
        prompt: &[u32],
        max_new: usize,
        temperature: f32,
        top_k: Option<usize>,
        seed: u64,
    ) -> Result<Vec<u32>> {
        let bad = |msg: String| Err(Error::InvalidArgument { op: "generate", msg });
        if prompt.is_empty() {
            return bad("the prompt must hold at least one token".into());
        }
        if let Some(&id) = prompt.iter().find(|&&id| id as usize >= self.cfg.vocab) {
            return bad(format!("prompt token {id} is out of range for vocab {}", self.cfg.vocab));
        }
        if !(temperature.is_finite() && temperature >= 0.0) {
            return bad(format!("temperature must be finite and >= 0, got {temperature}"));
        }
        if top_k == Some(0) {
            return bad("top_k must be at least 1".into());
        }
        let v = self.cfg.vocab;
        let mut seq = prompt.to_vec();
        no_grad(|| {
            for step in 0..max_new {
                let window = &seq[seq.len().saturating_sub(self.cfg.ctx)..];
                let t = window.len();
                let ids = Tensor::from_vec(window.iter().map(|&i| i as i32).collect::<Vec<_>>(), &[1, t])?;
                let logits = self.forward_mode(&ids, false)?; // (1, T, V)
                let last = logits.narrow(1, t - 1, 1)?.reshape(&[v])?.to_vec::<f32>()?; // (V)
                seq.push(sample(&last, temperature, top_k, uniform_at(seed, step as u64)));
            }
            Ok(seq)
        })
    }
}

/// Draw from softmax(logits / temperature) restricted to the top k, using the uniform `u`
/// in [0, 1). Ties at the k-th value are all kept.
fn sample(logits: &[f32], temperature: f32, top_k: Option<usize>, u: f32) -> u32 {
    let argmax = logits.iter().enumerate().fold(0, |best, (i, &x)| if x > logits[best] { i } else { best });
    if temperature == 0.0 {
        return argmax as u32;
    }
    let cutoff = match top_k {
        Some(k) if k < logits.len() => {
            let mut sorted = logits.to_vec();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            sorted[k - 1]
        }
        _ => f32::NEG_INFINITY,
    };
    let max = logits[argmax];
    let weights: Vec<f64> =
        logits.iter().map(|&x| if x >= cutoff { (((x - max) / temperature) as f64).exp() } else { 0.0 }).collect();
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return argmax as u32; // NaN logits: fall back to something valid
    }
    let mut target = u as f64 * total;
    for (i, w) in weights.iter().enumerate() {
        if target < *w {
            return i as u32;
        }
        target -= w;
    }
    // Rounding left a sliver past the end: the last token with weight.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(argmax) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GptConfig;

    #[test]
    fn sample_respects_top_k_and_greedy() {
        let logits = [0.0, 5.0, 1.0, 4.0];
        assert_eq!(sample(&logits, 0.0, None, 0.9), 1);
        for i in 0..100 {
            let s = sample(&logits, 1.0, Some(2), i as f32 / 100.0);
            assert!(s == 1 || s == 3);
        }
        assert_eq!(sample(&logits, 1.0, None, 0.0), 0);
    }

    #[test]
    fn generate_extends_the_prompt_deterministically() {
        let cfg = GptConfig { vocab: 7, ctx: 4, n_layer: 1, n_head: 1, n_embd: 8, dropout: 0.0 };
        let m = Gpt::new(cfg, 5).unwrap();
        let a = m.generate(&[1, 2], 10, 1.0, Some(3), 9).unwrap();
        assert_eq!(a.len(), 12);
        assert_eq!(&a[..2], &[1, 2]);
        assert!(a.iter().all(|&i| i < 7));
        assert_eq!(a, m.generate(&[1, 2], 10, 1.0, Some(3), 9).unwrap());
        assert!(m.generate(&[], 3, 1.0, None, 0).is_err());
        assert!(m.generate(&[7], 3, 1.0, None, 0).is_err());
        assert!(m.generate(&[1], 3, f32::NAN, None, 0).is_err());
    }
}
