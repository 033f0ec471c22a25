//! Low-rank adapters (LoRA, Hu et al. 2021) over frozen projections: y = W x + s B A x,
//! with A (r, in) and B (out, r) the only trainable tensors. B starts at zero, so an
//! adapter starts as the identity on the base model; A starts uniform as PEFT's
//! `kaiming_uniform_(a = sqrt(5))` does. The base weight (float or quantized blocks) is
//! never copied and never gets a gradient: only x and the adapter record history.
//!
//! `peft` reads and writes adapters in Hugging Face PEFT's layout, so adapters trained
//! here load in PEFT and PEFT adapters load here.

mod config;
pub mod peft;

pub use config::{LoraConfig, Target};

use crate::error::{ModelError, Result};
use crate::nn::splitmix;
use lamina_tensor::{DType, Device, Tensor};

/// One adapter: the trainable pair (A, B) and its scale.
#[derive(Clone)]
pub struct LoraLayer {
    pub a: Tensor, // (r, in)
    pub b: Tensor, // (out, r)
    pub scale: f32,
    pub dropout: f32,
}

impl LoraLayer {
    /// A fresh adapter for a projection (out, in): A uniform in ±1/sqrt(in), B zero.
    pub fn new(cfg: &LoraConfig, out: usize, inp: usize, seed: u64, device: Device) -> Result<LoraLayer> {
        let bound = 1.0 / (inp as f32).sqrt();
        let a = Tensor::rand_uniform(&[cfg.rank, inp], -bound, bound, seed, DType::F32)?.to_device(device)?;
        let b = Tensor::zeros(&[out, cfg.rank], DType::F32)?.to_device(device)?;
        Ok(LoraLayer { a: a.requires_grad_(), b: b.requires_grad_(), scale: cfg.scale(), dropout: cfg.dropout })
    }

    /// An adapter from trained tensors (checked against the projection's shape).
    pub fn from_tensors(a: Tensor, b: Tensor, scale: f32, out: usize, inp: usize) -> Result<LoraLayer> {
        let (ra, rb) = (a.shape().first().copied().unwrap_or(0), b.shape().get(1).copied().unwrap_or(0));
        if a.rank() != 2 || b.rank() != 2 || a.shape()[1] != inp || b.shape()[0] != out || ra != rb || ra == 0 {
            return Err(ModelError::Invalid(format!(
                "LoRA tensors A {:?} and B {:?} do not fit a projection (out {out}, in {inp})",
                a.shape(),
                b.shape()
            )));
        }
        Ok(LoraLayer { a, b, scale, dropout: 0.0 })
    }

    pub fn rank(&self) -> usize {
        self.a.shape()[0]
    }

    /// s B A x for x (N, in) -> (N, out). `dropout_seed` is `Some` while training: the
    /// adapter's input is dropped out as PEFT does (the base path never is).
    pub fn delta(&self, x: &Tensor, dropout_seed: Option<u64>) -> Result<Tensor> {
        let x = match dropout_seed {
            Some(seed) if self.dropout > 0.0 => x.dropout(self.dropout, seed)?,
            _ => x.clone(),
        };
        // (N, in) A^T -> (N, r), scaled there (r wide, not out wide: the tape keeps one
        // small tensor instead of another (N, out) one), then B^T -> (N, out): two thin
        // GEMMs, never the (out, in) product B A.
        let h = x.matmul(&self.a.t()?)?.scale(self.scale)?;
        Ok(h.matmul(&self.b.t()?)?)
    }

    /// s B A as an (out, in) f32 tensor on the CPU: what merging adds to the base weight.
    pub fn merged_delta(&self) -> Result<Tensor> {
        let a = self.a.detach().to_device(Device::Cpu)?;
        let b = self.b.detach().to_device(Device::Cpu)?;
        Ok(b.matmul(&a)?.scale(self.scale)?)
    }
}

/// One optional slot per target projection of a decoder block: where a block keeps its
/// adapters of one kind (LoRA pairs, IA³ vectors).
#[derive(Clone)]
pub struct PerTarget<T> {
    slots: [Option<T>; Target::ALL.len()],
}

impl<T> Default for PerTarget<T> {
    fn default() -> Self {
        PerTarget { slots: std::array::from_fn(|_| None) }
    }
}

impl<T> PerTarget<T> {
    pub fn get(&self, t: Target) -> Option<&T> {
        self.slots[t as usize].as_ref()
    }

    pub fn set(&mut self, t: Target, item: Option<T>) {
        self.slots[t as usize] = item;
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// (target, item) for the slots that hold one.
    pub fn iter(&self) -> impl Iterator<Item = (Target, &T)> {
        Target::ALL.iter().filter_map(|&t| self.get(t).map(|l| (t, l)))
    }
}

/// The LoRA adapters of one decoder block.
pub type BlockAdapters = PerTarget<LoraLayer>;

/// The dropout seed of one adapter in one step: a pure function of the step's seed and
/// the adapter's place, so a resumed run draws the same masks.
pub fn dropout_seed(step_seed: u64, layer: usize, target: Target) -> u64 {
    splitmix(step_seed ^ splitmix(((layer as u64) << 8) | target as u64))
}
