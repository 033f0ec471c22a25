//! IA³ vectors on a LLaMA model: attach fresh ones for training, list the trainable
//! tensors, save and load them in PEFT's layout (an output vector of q or k moved between
//! GGUF's and Hugging Face's row orders as needed). Merging is in `adapters.rs`.

use super::{rope_layout, Llama};
use crate::error::{ModelError, Result};
use crate::ia3::{peft, Ia3Block, Ia3Config, Ia3Vector};
use crate::lora::Target;
use lamina_tensor::{Device, Tensor};
use std::path::Path;

impl Llama {
    /// Attach fresh vectors (ones: the identity) to `cfg.targets` of every block, as this
    /// model has them (`lora_targets`: k on Phi-3 is its fused qkv), replacing any there.
    pub fn attach_ia3(&mut self, cfg: &Ia3Config) -> Result<Ia3Config> {
        cfg.validate()?;
        let targets = self.lora_targets(&cfg.targets)?;
        let feedforward = match cfg.feedforward.is_empty() {
            true => Vec::new(),
            false => self.lora_targets(&cfg.feedforward)?,
        };
        let device = self.device;
        for b in &mut self.blocks {
            for &t in &targets {
                let [out, inp] = b.proj(t).expect("lora_targets keeps the block's projections").shape();
                b.ia3.set(t, Some(Ia3Vector::ones(out, inp, feedforward.contains(&t), device)?));
            }
        }
        Ok(Ia3Config { targets, feedforward })
    }

    /// The vectors with their PEFT names, in a fixed order.
    pub fn ia3_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            for (t, v) in b.ia3.iter() {
                out.push((peft::tensor_name(i, t), v.l.clone()));
            }
        }
        out
    }

    /// An output vector of q or k in the other row order (`to_hf`: GGUF's to Hugging
    /// Face's), where this model keeps GGUF's; any other vector as it is.
    fn ia3_rows(&self, t: Target, v: &Ia3Vector, to_hf: bool) -> Result<Tensor> {
        match (self.rope_heads(t), self.gguf_row_order() && !v.feedforward) {
            (Some(heads), true) => {
                let col = v.l.detach().to_device(Device::Cpu)?.reshape(&[v.l.numel(), 1])?;
                let moved = if to_hf {
                    rope_layout::hf_rows_from_gguf(&col, heads)?
                } else {
                    rope_layout::gguf_rows_from_hf(&col, heads)?
                };
                Ok(moved.reshape(&[v.l.numel()])?)
            }
            _ => Ok(v.l.clone()),
        }
    }

    /// Write the vectors to `dir` in PEFT's layout (`target_modules`: the projections that
    /// hold vectors).
    pub fn save_ia3(&self, dir: &Path, base_model: &str) -> Result<()> {
        let mut targets: Vec<Target> = self.blocks.iter().flat_map(|b| b.ia3.iter().map(|(t, _)| t)).collect();
        targets.sort();
        targets.dedup();
        let feedforward = targets
            .iter()
            .copied()
            .filter(|&t| self.blocks.iter().any(|b| b.ia3.get(t).is_some_and(|v| v.feedforward)));
        let cfg = Ia3Config { feedforward: feedforward.collect(), targets };
        let mut layers = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let mut out = Ia3Block::default();
            for (t, v) in b.ia3.iter() {
                out.set(t, Some(Ia3Vector { l: self.ia3_rows(t, v, true)?, feedforward: v.feedforward }));
            }
            layers.push(out);
        }
        peft::save(dir, &cfg, base_model, &layers)
    }

    /// Load a PEFT IA³ directory onto this model (replacing any vectors). The vectors are
    /// frozen unless `trainable`.
    pub fn load_ia3(&mut self, dir: &Path, trainable: bool) -> Result<Ia3Config> {
        let Some(first) = self.blocks.first() else {
            return Err(ModelError::Invalid("the model has no blocks to adapt".into()));
        };
        let shapes: Vec<Option<(usize, usize)>> =
            Target::ALL.iter().map(|&t| first.proj(t).map(|p| (p.shape()[0], p.shape()[1]))).collect();
        let (cfg, layers) = peft::load(dir, self.blocks.len(), |t| shapes[t as usize], Device::Cpu)?;
        for (i, layer) in layers.into_iter().enumerate() {
            let mut set = Ia3Block::default();
            for (t, v) in layer.iter() {
                let l = self.ia3_rows(t, v, false)?.to_device(self.device)?;
                let l = if trainable { l.requires_grad_() } else { l };
                set.set(t, Some(Ia3Vector { l, feedforward: v.feedforward }));
            }
            self.blocks[i].ia3 = set;
        }
        Ok(cfg)
    }
}
