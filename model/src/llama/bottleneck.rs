//! Bottleneck adapters on a LLaMA model: attached for training (after the attention's
//! output projection and/or the MLP's down projection of every block), listed, saved and
//! loaded in Lamina's own layout (`bottleneck::files`). The forward applies them in
//! `block.rs`.

use super::Llama;
use crate::bottleneck::{files, Bottleneck, BottleneckBlock, BottleneckConfig};
use crate::error::{ModelError, Result};
use crate::nn::SeedStream;
use lamina_tensor::Tensor;
use std::path::Path;

impl Llama {
    /// Attach fresh adapters to every block (replacing any): each the identity at first.
    pub fn attach_bottleneck(&mut self, cfg: &BottleneckConfig, seed: u64) -> Result<()> {
        let dim = self.config.dim;
        cfg.validate(dim)?;
        let mut seeds = SeedStream::new(seed);
        let device = self.device;
        for b in &mut self.blocks {
            let attn = match cfg.placement.after_attention() {
                true => Some(Bottleneck::new(dim, cfg, &mut seeds, device)?),
                false => None,
            };
            b.bottleneck = BottleneckBlock { attn, mlp: Some(Bottleneck::new(dim, cfg, &mut seeds, device)?) };
        }
        Ok(())
    }

    /// The adapters' tensors with their file names, in a fixed order.
    pub fn bottleneck_parameters(&self) -> Vec<(String, Tensor)> {
        let layers: Vec<BottleneckBlock> = self.blocks.iter().map(|b| b.bottleneck.clone()).collect();
        files::named_tensors(&layers)
    }

    /// Write the adapters to `dir` (Lamina's layout, see `bottleneck::files`).
    pub fn save_bottleneck(&self, dir: &Path, cfg: &BottleneckConfig, base_model: &str) -> Result<()> {
        if self.blocks.iter().all(|b| b.bottleneck.is_empty()) {
            return Err(ModelError::Invalid("there are no bottleneck adapters to save".into()));
        }
        let layers: Vec<BottleneckBlock> = self.blocks.iter().map(|b| b.bottleneck.clone()).collect();
        files::save(dir, &files::config_json(cfg, base_model, self.config.dim, self.blocks.len()), &layers)
    }

    /// Load a bottleneck-adapter directory (replacing any). Frozen unless `trainable`.
    pub fn load_bottleneck(&mut self, dir: &Path, trainable: bool) -> Result<BottleneckConfig> {
        let (cfg, layers) = files::load(dir, self.config.dim, self.blocks.len(), self.device)?;
        for (b, mut adapters) in self.blocks.iter_mut().zip(layers) {
            if trainable {
                for a in [adapters.attn.as_mut(), adapters.mlp.as_mut()].into_iter().flatten() {
                    for l in [&mut a.down, &mut a.up] {
                        l.params_mut().into_iter().for_each(|t| *t = t.detach().requires_grad_());
                    }
                }
            }
            b.bottleneck = adapters;
        }
        Ok(cfg)
    }
}
