//! (IA)³ (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and
//! Cheaper than In-Context Learning"): one learned vector per adapted projection that
//! rescales its output (keys, values: y = l ⊙ (W x + b)) or, for feed-forward modules,
//! its input (the MLP's activations: y = W (l ⊙ x) + b). The vectors start at one, so an
//! adapter starts as the identity on the base model; they are the only trainable tensors.
//! Both forms fold into the weight (rows or columns scaled), so a merged model costs
//! nothing extra.
//!
//! `peft` reads and writes them in Hugging Face PEFT's layout (`peft_type` IA3).

pub mod peft;

use crate::error::{ModelError, Result};
use crate::lora::{PerTarget, Target};
use lamina_tensor::{DType, Device, Tensor};

/// Which projections carry a vector, and which of those scale their input.
#[derive(Clone, Debug, PartialEq)]
pub struct Ia3Config {
    pub targets: Vec<Target>,
    /// The targets whose input is scaled (PEFT's `feedforward_modules`); the others'
    /// output is.
    pub feedforward: Vec<Target>,
}

impl Default for Ia3Config {
    /// PEFT's default for LLaMA models (and the paper's choice): keys, values and the MLP's
    /// activations (the input of the down projection).
    fn default() -> Self {
        Ia3Config { targets: vec![Target::K, Target::V, Target::Down], feedforward: vec![Target::Down] }
    }
}

impl Ia3Config {
    /// The config for `targets`, with the feed-forward ones chosen as PEFT's default
    /// mapping for LLaMA does: the down projection (whose input is the MLP's activations).
    pub fn for_targets(targets: Vec<Target>) -> Ia3Config {
        let feedforward = targets.iter().copied().filter(|&t| t == Target::Down).collect();
        Ia3Config { targets, feedforward }
    }

    pub fn validate(&self) -> Result<()> {
        if self.targets.is_empty() {
            return Err(ModelError::Invalid("no IA3 targets given".into()));
        }
        if let Some(t) = self.feedforward.iter().find(|t| !self.targets.contains(t)) {
            return Err(ModelError::Invalid(format!(
                "IA3 feed-forward module {} is not among the targets (PEFT requires a subset)",
                t.hf_module()
            )));
        }
        Ok(())
    }
}

/// One learned vector: (in) when it scales the projection's input, (out) otherwise.
#[derive(Clone)]
pub struct Ia3Vector {
    pub l: Tensor,
    pub feedforward: bool,
}

impl Ia3Vector {
    /// A fresh vector of ones (the identity) for a projection (out, in).
    pub fn ones(out: usize, inp: usize, feedforward: bool, device: Device) -> Result<Ia3Vector> {
        let n = if feedforward { inp } else { out };
        let l = Tensor::ones(&[n], DType::F32)?.to_device(device)?;
        Ok(Ia3Vector { l: l.requires_grad_(), feedforward })
    }

    /// The projection's input as the base sees it: x (N, in) scaled per column when
    /// feed-forward, unchanged otherwise.
    pub fn scale_input(&self, x: &Tensor) -> Result<Tensor> {
        Ok(if self.feedforward { x.mul(&self.l)? } else { x.clone() })
    }

    /// The projection's output y (N, out) scaled per column unless feed-forward.
    pub fn scale_output(&self, y: Tensor) -> Result<Tensor> {
        Ok(if self.feedforward { y } else { y.mul(&self.l)? })
    }

    /// (W, b) with the vector folded in: W's columns scaled (feed-forward) or its rows and
    /// the bias scaled, as PEFT's `merge` does. W (out, in) and b are f32 CPU tensors.
    pub fn merge(&self, w: &Tensor, bias: Option<&Tensor>) -> Result<(Tensor, Option<Tensor>)> {
        let l = self.l.detach().to_device(Device::Cpu)?;
        if self.feedforward {
            return Ok((w.mul(&l)?, bias.cloned()));
        }
        let rows = w.mul(&l.reshape(&[l.numel(), 1])?)?;
        Ok((rows, bias.map(|b| b.mul(&l)).transpose()?))
    }
}

/// The IA³ vectors of one decoder block.
pub type Ia3Block = PerTarget<Ia3Vector>;
