//! Prompt tuning (Lester et al. 2021, "The Power of Scale for Parameter-Efficient Prompt
//! Tuning"): K trainable virtual-token embeddings (K, dim) put before every sequence; the
//! model stays frozen. At inference the virtual tokens are run once when a KV cache is
//! made and pinned at its front (`KvCache::pin_filled`), so each request pays for them
//! only in cache positions. Positions count them, as in PEFT: the first real token is at
//! position K.
//!
//! `peft` reads and writes them in Hugging Face PEFT's layout (`peft_type` PROMPT_TUNING).

pub mod learning;
pub mod peft;

use crate::error::{ModelError, Result};
use lamina_tensor::{DType, Device, Tensor};

/// How the virtual tokens start (PEFT's `prompt_tuning_init`).
#[derive(Clone, Debug, PartialEq)]
pub enum PromptInit {
    /// N(0, 1), as PEFT's RANDOM (`torch.nn.Embedding`'s default).
    Random,
    /// The embeddings of a text's tokens, cut or repeated to K, as PEFT's TEXT.
    Text(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct PromptTuningConfig {
    pub num_virtual_tokens: usize,
    pub init: PromptInit,
}

impl PromptTuningConfig {
    pub fn validate(&self) -> Result<()> {
        if self.num_virtual_tokens == 0 || self.num_virtual_tokens > 4096 {
            return Err(ModelError::Invalid(format!(
                "the number of virtual tokens must be in 1..=4096, got {}",
                self.num_virtual_tokens
            )));
        }
        Ok(())
    }
}

/// The trainable virtual tokens (K, dim).
#[derive(Clone)]
pub struct SoftPrompt {
    pub embeddings: Tensor,
}

impl SoftPrompt {
    pub fn len(&self) -> usize {
        self.embeddings.shape()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// N(0, 1) virtual tokens of width `dim`.
    pub fn random(k: usize, dim: usize, seed: u64, device: Device) -> Result<SoftPrompt> {
        let e = Tensor::randn(&[k, dim], 0.0, 1.0, seed, DType::F32)?.to_device(device)?;
        Ok(SoftPrompt { embeddings: e.requires_grad_() })
    }

    /// The token ids PEFT's TEXT initialisation embeds: `ids` cut or repeated to `k`.
    pub fn text_ids(ids: &[u32], k: usize) -> Result<Vec<u32>> {
        if ids.is_empty() {
            return Err(ModelError::Invalid("the prompt-tuning init text has no tokens".into()));
        }
        Ok(ids.iter().copied().cycle().take(k).collect())
    }
}
