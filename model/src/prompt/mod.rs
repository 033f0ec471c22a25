//! Prompt tuning (Lester et al. 2021, "The Power of Scale for Parameter-Efficient Prompt
//! Tuning"): K trainable virtual-token embeddings (K, dim) put before every sequence; the
//! model stays frozen. At inference the virtual tokens are run once when a KV cache is
//! made and pinned at its front (`KvCache::pin_filled`), so each request pays for them
//! only in cache positions. Positions count them, as in PEFT: the first real token is at
//! position K.
//!
//! P-tuning (`encoder`) makes the virtual tokens with a small trainable prompt encoder
//! while training; saved, its output is a soft prompt like any other.
//!
//! `peft` reads and writes them in Hugging Face PEFT's layout (`peft_type` PROMPT_TUNING
//! or P_TUNING).

pub mod encoder;
pub mod learning;
pub mod peft;

use crate::error::{ModelError, Result};
use crate::nn::SeedStream;
pub use encoder::{PTuningConfig, PromptEncoder};
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
        learning::check_count("the number of virtual tokens", self.num_virtual_tokens, learning::MAX_VIRTUAL_TOKENS)
    }
}

/// The trainable virtual tokens (K, dim), or with P-tuning's encoder, its input.
#[derive(Clone)]
pub struct SoftPrompt {
    pub embeddings: Tensor,
    /// P-tuning's prompt encoder (training only: saved as its output).
    pub encoder: Option<PromptEncoder>,
}

impl SoftPrompt {
    pub fn len(&self) -> usize {
        self.embeddings.shape()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Virtual tokens used as they are (prompt tuning, or any loaded adapter).
    pub fn plain(embeddings: Tensor) -> SoftPrompt {
        SoftPrompt { embeddings, encoder: None }
    }

    /// N(0, 1) virtual tokens of width `dim`.
    pub fn random(k: usize, dim: usize, seed: u64, device: Device) -> Result<SoftPrompt> {
        let e = Tensor::randn(&[k, dim], 0.0, 1.0, seed, DType::F32)?.to_device(device)?;
        Ok(SoftPrompt::plain(e.requires_grad_()))
    }

    /// P-tuning's start, as PEFT's: N(0, 1) embeddings (K, dim) and a fresh encoder.
    pub fn p_tuning(cfg: &PTuningConfig, dim: usize, seed: u64, device: Device) -> Result<SoftPrompt> {
        cfg.validate()?;
        let mut seeds = SeedStream::new(seed);
        let e = Tensor::randn(&[cfg.num_virtual_tokens, dim], 0.0, 1.0, seeds.next_seed(), DType::F32)?;
        let encoder = PromptEncoder::random(dim, cfg.hidden, &mut seeds, device)?;
        Ok(SoftPrompt { embeddings: e.to_device(device)?.requires_grad_(), encoder: Some(encoder) })
    }

    /// The virtual tokens (K, dim): the embeddings, through the encoder when there is one.
    pub fn tokens(&self) -> Result<Tensor> {
        match &self.encoder {
            Some(enc) => enc.forward(&self.embeddings),
            None => Ok(self.embeddings.clone()),
        }
    }

    /// The trainable tensors with PEFT's names (the checkpoint's names too).
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let Some(enc) = &self.encoder else { return vec![(peft::TENSOR_NAME.to_string(), self.embeddings.clone())] };
        let mut out = vec![("prompt_encoder.embedding.weight".to_string(), self.embeddings.clone())];
        enc.parameters(&mut out);
        out
    }

    /// The token ids PEFT's TEXT initialisation embeds: `ids` cut or repeated to `k`.
    pub fn text_ids(ids: &[u32], k: usize) -> Result<Vec<u32>> {
        if ids.is_empty() {
            return Err(ModelError::Invalid("the prompt-tuning init text has no tokens".into()));
        }
        Ok(ids.iter().copied().cycle().take(k).collect())
    }
}
