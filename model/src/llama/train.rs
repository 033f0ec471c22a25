//! The training forward pass: whole sequences at once, no KV cache, with autograd
//! through whatever requires gradients (LoRA adapters, IA³ vectors, a soft prompt,
//! prefixes, or every float weight for full fine-tuning). Frozen weights, float or quantized,
//! contribute only the gradient with respect to their input.

use super::block::PassContext;
use super::{Llama, Pass};
use crate::error::{ModelError, Result};
use lamina_tensor::Tensor;

/// PyTorch's `ignore_index`: labels with this value are not scored.
pub const IGNORE: i32 = -100;

impl Llama {
    /// Logits (batch * seq, vocab) for `tokens` (batch rows of `seq` = len / batch ids, row
    /// major). Attention is causal within each row, so right padding never reaches a real
    /// token. `step_seed` turns on the adapters' dropout (training); `None` evaluates.
    pub fn forward_train(&self, tokens: &[u32], batch: usize, step_seed: Option<u64>) -> Result<Tensor> {
        lamina_tensor::cpu::parallel::install(|| self.logits(&self.hidden_train(tokens, batch, step_seed)?))
    }

    /// The final normed hidden states (batch * seq, dim), before the output head.
    fn hidden_train(&self, tokens: &[u32], batch: usize, step_seed: Option<u64>) -> Result<Tensor> {
        let c = &self.config;
        if batch == 0 || tokens.is_empty() || !tokens.len().is_multiple_of(batch) {
            return Err(ModelError::Invalid(format!(
                "a training batch needs batch * seq tokens, got {} tokens for batch {batch}",
                tokens.len()
            )));
        }
        let seq = tokens.len() / batch;
        let k = self.virtual_tokens();
        let pinned = self.pinned_positions();
        if seq + pinned > c.context_length {
            return Err(ModelError::Invalid(format!(
                "sequence length {seq} (+ {pinned} virtual or prefix tokens) exceeds the model's context of {}",
                c.context_length
            )));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(ModelError::Invalid(format!("token id {bad} is outside the vocabulary of {}", c.vocab_size)));
        }
        // (B*(K+T), dim): a soft prompt's K virtual tokens before each row's T tokens.
        let mut x = self.prepend_prompt(self.embed_tokens(tokens)?, batch, seq)?;
        // Prefixes (K', width) take positions 0..K' of every layer's keys, before the rows.
        let prefix = self.prefix.as_ref().map(|p| p.values()).transpose()?;
        let ctx = PassContext::new(c, self.prefix_tokens(), k + seq, self.device)?;
        for i in 0..self.blocks.len() {
            x = self.block(i, &x, (batch, k + seq), &ctx, Pass::Train { step_seed, prefix: prefix.as_ref() })?;
        }
        let x = self.drop_prompt_rows(x, batch, seq)?; // (B*T, dim)
        Ok(x.rms_norm(Some(&self.out_norm), c.norm_eps)?)
    }

    /// Mean cross-entropy over the scored positions: `labels[i]` is the id to predict at
    /// position i, or [`IGNORE`]. Returns the 0-d loss tensor (backward-ready) and the
    /// number of scored positions.
    pub fn loss(
        &self,
        tokens: &[u32],
        labels: &[i32],
        batch: usize,
        step_seed: Option<u64>,
    ) -> Result<(Tensor, usize)> {
        if labels.len() != tokens.len() {
            return Err(ModelError::Invalid(format!("{} labels for {} tokens", labels.len(), tokens.len())));
        }
        let vocab = self.config.vocab_size as i32;
        if let Some(&bad) = labels.iter().find(|&&l| l != IGNORE && !(0..vocab).contains(&l)) {
            return Err(ModelError::Invalid(format!("label {bad} is outside the vocabulary of {vocab}")));
        }
        let scored = labels.iter().filter(|&&l| l != IGNORE).count();
        if scored == 0 {
            return Err(ModelError::Invalid("the batch has no scored tokens".into()));
        }
        let logits = self.forward_train(tokens, batch, step_seed)?;
        // Targets stay on the host: the loss kernels read them as indices, not as data.
        let targets = Tensor::from_slice(labels, &[labels.len()])?;
        let loss = lamina_tensor::cpu::parallel::install(|| logits.cross_entropy(&targets, IGNORE as i64))?;
        Ok((loss, scored))
    }
}
