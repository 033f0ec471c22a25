//! Autoregressive sampling: run the model on the last `ctx` tokens, take the logits of the
//! final position, and draw the next token (temperature, optional top-k) with the LLM
//! commands' sampler (`sampling.rs`).

use crate::sampling::{Sampler, SamplerConfig};
use crate::Gpt;
use lamina_tensor::{no_grad, Error, Result, Tensor};

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
        let config = SamplerConfig::temperature_top_k(temperature, top_k, seed);
        let invalid = |e: crate::ModelError| Error::InvalidArgument { op: "generate", msg: e.to_string() };
        let mut sampler = Sampler::new(config).map_err(invalid)?;
        let v = self.cfg.vocab;
        let mut seq = prompt.to_vec();
        no_grad(|| {
            for _ in 0..max_new {
                let window = &seq[seq.len().saturating_sub(self.cfg.ctx)..];
                let t = window.len();
                let ids = Tensor::from_vec(window.iter().map(|&i| i as i32).collect::<Vec<_>>(), &[1, t])?;
                let logits = self.forward_mode(&ids, false)?; // (1, T, V)
                let last = logits.narrow(1, t - 1, 1)?.reshape(&[v])?.to_vec::<f32>()?; // (V)
                let next = sampler.sample(&last, &seq).map_err(invalid)?;
                seq.push(next);
            }
            Ok(seq)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GptConfig;

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
