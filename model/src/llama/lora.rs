//! Adapters on a LLaMA model: attach fresh ones for training, list the trainable
//! tensors, save and load them in PEFT's layout (q/k rows moved between GGUF's and
//! Hugging Face's orders as needed); and full fine-tuning's trainable weights. Merging
//! is in `adapters.rs`.

use super::{rope_layout, Llama};
use crate::error::{ModelError, Result};
use crate::lora::{peft, BlockAdapters, LoraConfig, LoraLayer, Target};
use crate::nn::{splitmix, Linear};
use crate::qnn::Proj;
use lamina_tensor::{Device, RopeConvention, Tensor};
use std::path::Path;

impl Llama {
    /// Attach fresh adapters (A random from `seed`, B zero) to `cfg.targets` of every
    /// block (as this model has them: `lora_targets`), replacing any already there.
    pub fn attach_lora(&mut self, cfg: &LoraConfig, seed: u64) -> Result<()> {
        cfg.validate()?;
        let targets = self.lora_targets(&cfg.targets)?;
        let device = self.device;
        for (i, b) in self.blocks.iter_mut().enumerate() {
            for &t in &targets {
                let [out, inp] = b.proj(t).expect("lora_targets keeps the block's projections").shape();
                let s = splitmix(seed ^ splitmix(((i as u64) << 8) | t as u64));
                b.lora.set(t, Some(LoraLayer::new(cfg, out, inp, s, device)?));
            }
        }
        Ok(())
    }

    /// The adapters' tensors with their PEFT names, in a fixed order.
    pub fn lora_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            for (t, l) in b.lora.iter() {
                out.push((peft::tensor_name(i, t, 'A'), l.a.clone()));
                out.push((peft::tensor_name(i, t, 'B'), l.b.clone()));
            }
        }
        out
    }

    pub fn has_lora(&self) -> bool {
        self.blocks.iter().any(|b| !b.lora.is_empty())
    }

    /// Heads whose rows a q or k adapter's B spans (None for other targets).
    pub(super) fn rope_heads(&self, t: Target) -> Option<usize> {
        match t {
            Target::Q => Some(self.config.n_heads),
            Target::K => Some(self.config.n_kv_heads),
            _ => None,
        }
    }

    /// Whether q/k rows are in GGUF's order here (interleaved RoPE), and so must be moved
    /// to Hugging Face's order in a PEFT file.
    pub(super) fn gguf_row_order(&self) -> bool {
        self.config.rope_convention == RopeConvention::Interleaved
    }

    /// Write the adapters to `dir` in PEFT's layout (`target_modules`: the projections
    /// that hold adapters, whatever `cfg.targets` asked for).
    pub fn save_lora(&self, dir: &Path, cfg: &LoraConfig, base_model: &str) -> Result<()> {
        let mut targets: Vec<Target> = self.blocks.iter().flat_map(|b| b.lora.iter().map(|(t, _)| t)).collect();
        targets.sort();
        targets.dedup();
        let cfg = LoraConfig { targets, ..cfg.clone() };
        let mut layers = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let mut out = BlockAdapters::default();
            for (t, l) in b.lora.iter() {
                let mut l = l.clone();
                if let (Some(heads), true) = (self.rope_heads(t), self.gguf_row_order()) {
                    l.b = rope_layout::hf_rows_from_gguf(&l.b.detach().to_device(Device::Cpu)?, heads)?;
                }
                out.set(t, Some(l));
            }
            layers.push(out);
        }
        peft::save(dir, &cfg, base_model, &layers)
    }

    /// Load a PEFT adapter directory onto this model (replacing any adapters). The
    /// tensors are frozen unless `trainable`.
    pub fn load_lora(&mut self, dir: &Path, trainable: bool) -> Result<LoraConfig> {
        let n = self.blocks.len();
        if n == 0 {
            return Err(ModelError::Invalid("the model has no blocks to adapt".into()));
        }
        let shapes: Vec<Option<(usize, usize)>> =
            Target::ALL.iter().map(|&t| self.blocks[0].proj(t).map(|p| (p.shape()[0], p.shape()[1]))).collect();
        let adapter = peft::load(dir, n, |t| shapes[t as usize], Device::Cpu)?;
        let gguf_order = self.gguf_row_order();
        for (i, layer) in adapter.layers.into_iter().enumerate() {
            let mut set = BlockAdapters::default();
            for (t, l) in layer.iter() {
                let mut l = l.clone();
                if let (Some(heads), true) = (self.rope_heads(t), gguf_order) {
                    l.b = rope_layout::gguf_rows_from_hf(&l.b, heads)?;
                }
                l.dropout = adapter.config.dropout;
                let (a, b) = (l.a.to_device(self.device)?, l.b.to_device(self.device)?);
                (l.a, l.b) = if trainable { (a.requires_grad_(), b.requires_grad_()) } else { (a, b) };
                set.set(t, Some(l));
            }
            self.blocks[i].lora = set;
        }
        Ok(adapter.config)
    }

    /// Full fine-tuning: every weight becomes a trainable leaf, returned with its GGUF
    /// name. Needs float weights (load with `keep_quantized: false`).
    pub fn make_trainable(&mut self) -> Result<Vec<(String, Tensor)>> {
        let quantized = |p: &Proj| matches!(p, Proj::Quant(_));
        if matches!(self.embed, crate::qnn::Table::Quant(_))
            || quantized(&self.head)
            || self.blocks.iter().any(|b| b.targets().any(|t| b.proj(t).is_some_and(quantized)))
        {
            return Err(ModelError::Invalid(
                "full fine-tuning needs float weights: load the model dequantized (--dequantize)".into(),
            ));
        }
        let mut params = Vec::new();
        let mut leaf = |name: String, t: &mut Tensor| {
            *t = t.detach().requires_grad_();
            params.push((name, t.clone()));
        };
        if let crate::qnn::Table::Float(e) = &mut self.embed {
            leaf("token_embd.weight".into(), e);
        }
        for (i, b) in self.blocks.iter_mut().enumerate() {
            for (name, norm) in b.norms_mut() {
                leaf(format!("blk.{i}.{name}.weight"), norm);
            }
            for t in Target::ALL {
                let gguf = t.gguf_module();
                if let Some(Proj::Float(lin)) = b.proj_mut(t) {
                    leaf(format!("blk.{i}.{gguf}.weight"), &mut lin.weight);
                    if let Some(bias) = &mut lin.bias {
                        leaf(format!("blk.{i}.{gguf}.bias"), bias);
                    }
                }
            }
        }
        leaf("output_norm.weight".into(), &mut self.out_norm);
        // A tied head shares the embedding's leaf; a separate one is its own.
        match (&self.embed, self.tied) {
            (crate::qnn::Table::Float(e), true) => {
                self.head = Proj::Float(Linear { weight: e.clone(), bias: None });
            }
            _ => {
                if let Proj::Float(lin) = &mut self.head {
                    leaf("output.weight".into(), &mut lin.weight);
                }
            }
        }
        Ok(params)
    }
}
