//! P-tuning (Liu et al. 2021, "GPT Understands, Too"; PEFT's P_TUNING): the virtual tokens
//! are not trained directly but made by a small prompt encoder from K trainable
//! embeddings, which smooths and couples them while training. PEFT's MLP encoder:
//!
//! ```text
//! e (K, dim) -> Linear(dim, H) -> ReLU -> Linear(H, H) -> ReLU -> Linear(H, dim) -> (K, dim)
//! ```
//!
//! What is saved is the encoder's output (PEFT's `prompt_embeddings`), so at inference a
//! P-tuning adapter is a soft prompt like prompt tuning's, pinned in the KV cache.

use super::learning::{check_count, MAX_ENCODER_WIDTH, MAX_VIRTUAL_TOKENS};
use crate::error::Result;
use crate::nn::{Linear, SeedStream};
use lamina_tensor::{Device, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub struct PTuningConfig {
    pub num_virtual_tokens: usize,
    /// The encoder's hidden width (PEFT's `encoder_hidden_size`; its default is the
    /// model's embedding width).
    pub hidden: usize,
}

impl PTuningConfig {
    pub fn validate(&self) -> Result<()> {
        check_count("the number of virtual tokens", self.num_virtual_tokens, MAX_VIRTUAL_TOKENS)?;
        check_count("the prompt encoder's hidden size", self.hidden, MAX_ENCODER_WIDTH)
    }
}

/// PEFT's `PromptEncoder` with the MLP reparameterisation (`mlp_head`).
#[derive(Clone)]
pub struct PromptEncoder {
    pub layers: [Linear; 3],
}

impl PromptEncoder {
    /// Initialised as `torch.nn.Linear` is: weights and biases U(±1/sqrt(in)).
    pub fn random(dim: usize, hidden: usize, seeds: &mut SeedStream, device: Device) -> Result<PromptEncoder> {
        let mut linear = |inp: usize, out: usize| Linear::torch_init(inp, out, seeds, device);
        Ok(PromptEncoder { layers: [linear(dim, hidden)?, linear(hidden, hidden)?, linear(hidden, dim)?] })
    }

    /// The virtual tokens (K, dim) made from the embeddings e (K, dim).
    pub fn forward(&self, e: &Tensor) -> Result<Tensor> {
        let [a, b, c] = &self.layers;
        Ok(c.forward(&b.forward(&a.forward(e)?.relu()?)?.relu()?)?)
    }

    /// The trainable tensors with PEFT's names (`prompt_encoder.mlp_head.{0,2,4}`).
    pub fn parameters(&self, out: &mut Vec<(String, Tensor)>) {
        for (i, l) in self.layers.iter().enumerate() {
            l.parameters(&format!("prompt_encoder.mlp_head.{}", 2 * i), out);
        }
    }
}
