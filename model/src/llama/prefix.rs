//! Prefix tuning on a LLaMA model: prefixes attached, trained, saved and loaded in PEFT's
//! layout (keys moved between GGUF's and Hugging Face's per-head order as needed); put
//! before each layer's keys and values in training, written into every new KV cache
//! (pinned there) at inference.

use super::{rope_layout, Llama};
use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use crate::prefix::{peft, Prefix, PrefixShape, PrefixTuningConfig};
use lamina_tensor::{Device, Tensor};
use std::path::Path;

impl Llama {
    /// What the prefixes of this model are made of: its layers and key/value heads.
    pub fn prefix_shape(&self) -> PrefixShape {
        let c = &self.config;
        PrefixShape { layers: c.n_layers, kv_heads: c.n_kv_heads, head_dim: c.head_dim }
    }

    /// Attach fresh prefixes (replacing any), as PEFT starts them (see `Prefix::random`).
    pub fn attach_prefix(&mut self, cfg: &PrefixTuningConfig, seed: u64) -> Result<()> {
        self.prefix = Some(Prefix::random(cfg, self.prefix_shape(), seed, self.device)?);
        Ok(())
    }

    /// Prefix positions before every sequence (0 without prefixes).
    pub fn prefix_tokens(&self) -> usize {
        self.prefix.as_ref().map_or(0, Prefix::len)
    }

    /// The trainable prefix tensors with PEFT's names.
    pub fn prefix_parameters(&self) -> Vec<(String, Tensor)> {
        self.prefix.iter().flat_map(Prefix::parameters).collect()
    }

    /// Write the prefixes to `dir` in PEFT's layout (the MLP's output when reparameterised).
    pub fn save_prefix(&self, dir: &Path, cfg: &PrefixTuningConfig, base_model: &str) -> Result<()> {
        let prefix = self.prefix.as_ref().ok_or_else(|| ModelError::Invalid("there are no prefixes to save".into()))?;
        let values = prefix.values()?.detach().to_device(Device::Cpu)?;
        let cfg = PrefixTuningConfig { num_virtual_tokens: prefix.len(), ..cfg.clone() };
        let values = self.prefix_key_order(&values, true)?;
        peft::save(dir, values, &peft::config_json(&cfg, base_model, self.prefix_shape()))
    }

    /// Load a PEFT prefix-tuning directory (replacing any prefixes). Frozen unless
    /// `trainable`; a reparameterised adapter loads as the prefixes its MLP made.
    pub fn load_prefix(&mut self, dir: &Path, trainable: bool) -> Result<PrefixTuningConfig> {
        let (cfg, values) = peft::load(dir, self.prefix_shape())?;
        let values = self.prefix_key_order(&values, false)?.to_device(self.device)?;
        self.prefix = Some(Prefix::Direct(if trainable { values.requires_grad_() } else { values }));
        Ok(cfg)
    }

    /// The prefixes (K, width) with each layer's keys moved to Hugging Face's per-head
    /// order (`to_hf`) or back, where this model keeps q/k in GGUF's order; the values,
    /// and everything on a model in Hugging Face's order, as they are.
    fn prefix_key_order(&self, values: &Tensor, to_hf: bool) -> Result<Tensor> {
        if !self.gguf_row_order() {
            return Ok(values.clone());
        }
        let s = self.prefix_shape();
        let k = values.shape()[0];
        let x = values.reshape(&[k, s.layers, 2, s.kv_dim()])?;
        // Keys as rows (kv_dim, K * layers): the rows rope_layout permutes.
        let keys = x.narrow(2, 0, 1)?.reshape(&[k * s.layers, s.kv_dim()])?.t()?.contiguous()?;
        let moved = match to_hf {
            true => rope_layout::hf_rows_from_gguf(&keys, s.kv_heads)?,
            false => rope_layout::gguf_rows_from_hf(&keys, s.kv_heads)?,
        };
        let keys = moved.t()?.reshape(&[k, s.layers, 1, s.kv_dim()])?;
        Ok(Tensor::cat(&[&keys, &x.narrow(2, 1, 1)?], 2)?.reshape(&[k, s.width()])?)
    }

    /// k and v (batch, kv_heads, T, head_dim) of layer `layer` with the prefixes' K keys
    /// and values before them: (batch, kv_heads, K + T, head_dim). `values`: the
    /// prefixes (K, width) of this pass.
    pub(super) fn prepend_prefix(
        &self,
        values: &Tensor,
        layer: usize,
        k: Tensor,
        v: Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (pk, pv) = Prefix::layer_kv(values, self.prefix_shape(), layer)?;
        let mut full = k.shape().to_vec();
        full[2] = values.shape()[0];
        let join = |p: Tensor, x: Tensor| -> Result<Tensor> { Ok(Tensor::cat(&[&p.broadcast_to(&full)?, &x], 2)?) };
        Ok((join(pk, k)?, join(pv, v)?))
    }

    /// Write the prefixes into an empty cache's first positions and pin them there.
    pub(super) fn fill_prefix(&self, cache: &mut KvCache) -> Result<()> {
        let Some(prefix) = &self.prefix else { return Ok(()) };
        let values = prefix.values()?.detach();
        for layer in 0..self.blocks.len() {
            let (k, v) = Prefix::layer_kv(&values, self.prefix_shape(), layer)?;
            cache.append(layer, &k.contiguous()?, &v.contiguous()?)?;
        }
        cache.advance(prefix.len());
        cache.pin_filled();
        Ok(())
    }
}
