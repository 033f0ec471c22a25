//! How a LLaMA-shaped family differs from LLaMA: the block options its files do not
//! state (they are implied by the architecture), its Hugging Face tensor names, and any
//! rule of its own for reading hyperparameters.

use super::{gguf_hparams, hf_hparams};
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::hf::HfConfig;
use crate::llama::{gguf_name_with, hf_name_with, Activation, LlamaConfig};
use lamina_tensor::RopeConvention;

pub struct Decoder {
    /// The GGUF architecture name this family's files carry (`llama` for Mistral, as
    /// llama.cpp's converter writes it).
    pub gguf_arch: &'static str,
    /// How GGUF files of this architecture lay out q/k rows for RoPE: LLaMA's converter
    /// permutes them for interleaved pairs, every other one keeps Hugging Face's halves.
    pub gguf_rope: RopeConvention,
    pub qk_norm: bool,
    /// qkv and gate/up each one projection (Phi-3).
    pub fused: bool,
    pub post_norms: bool,
    pub embed_scale: bool,
    /// The activation when the file does not name one (GGUF never does).
    pub activation: Activation,
    /// GGUF files with a sliding window and no pattern key: llama.cpp's period of global
    /// layers for this architecture (0: every layer slides).
    pub gguf_swa_period: usize,
    /// Whether q/k/v have biases when `config.json` has no `attention_bias` (Qwen2).
    pub hf_qkv_bias: bool,
    /// Hugging Face module names that differ from LLaMA's, (GGUF, HF).
    pub hf_modules: &'static [(&'static str, &'static str)],
    /// Added to every `*norm.weight` read from Hugging Face: Gemma's RMSNorm scales by
    /// (1 + w), and llama.cpp's converter stores 1 + w in GGUF.
    pub hf_norm_shift: f32,
    /// Rules of the family's own, applied after everything above.
    pub gguf_extra: fn(&mut LlamaConfig, &GgufFile) -> Result<()>,
    pub hf_extra: fn(&mut LlamaConfig, &HfConfig) -> Result<()>,
}

fn nothing_gguf(_: &mut LlamaConfig, _: &GgufFile) -> Result<()> {
    Ok(())
}

fn nothing_hf(_: &mut LlamaConfig, _: &HfConfig) -> Result<()> {
    Ok(())
}

/// LLaMA itself; other families start from it (`Decoder { qk_norm: true, ..LLAMA_SHAPED }`).
pub const LLAMA_SHAPED: Decoder = Decoder {
    gguf_arch: "llama",
    gguf_rope: RopeConvention::Interleaved,
    qk_norm: false,
    fused: false,
    post_norms: false,
    embed_scale: false,
    activation: Activation::Silu,
    gguf_swa_period: 0,
    hf_qkv_bias: false,
    hf_modules: &[],
    hf_norm_shift: 0.0,
    gguf_extra: nothing_gguf,
    hf_extra: nothing_hf,
};

impl Decoder {
    fn structure(&self, c: &mut LlamaConfig) {
        c.qk_norm = self.qk_norm;
        c.fused_qkv = self.fused;
        c.fused_gate_up = self.fused;
        c.post_norms = self.post_norms;
        c.embed_scale = self.embed_scale;
    }

    /// The config of a GGUF file of this family.
    pub fn config_from_gguf(&self, f: &GgufFile) -> Result<LlamaConfig> {
        let arch = f.architecture()?;
        let mut c = gguf_hparams::read(f, arch)?;
        self.structure(&mut c);
        c.rope_convention = self.gguf_rope;
        c.activation = self.activation;
        if c.sliding_window.is_some() {
            c.swa_layers = Some(gguf_hparams::swa_layers(f, arch, c.n_layers, self.gguf_swa_period)?);
        }
        (self.gguf_extra)(&mut c, f)?;
        check(&c, arch)?;
        Ok(c)
    }

    /// The config of a Hugging Face directory of this family.
    pub fn config_from_hf(&self, h: &HfConfig) -> Result<LlamaConfig> {
        let mut c = hf_hparams::read(h, self.gguf_arch)?;
        self.structure(&mut c);
        c.activation = hf_hparams::activation(h, self.activation)?;
        c.qkv_bias = h.attention_bias.unwrap_or(self.hf_qkv_bias);
        (self.hf_extra)(&mut c, h)?;
        check(&c, hf_hparams::model_type(h))?;
        Ok(c)
    }

    /// The Hugging Face name of a weight given its GGUF name.
    pub fn hf_name(&self, gguf: &str) -> String {
        hf_name_with(gguf, self.hf_modules)
    }

    /// The GGUF name of a Hugging Face weight, if it is one of this family's.
    pub fn gguf_name(&self, hf: &str) -> Option<String> {
        gguf_name_with(hf, self.hf_modules)
    }
}

/// What the forward pass relies on, whatever the source said.
fn check(c: &LlamaConfig, source: &str) -> Result<()> {
    if !c.head_dim.is_multiple_of(2) {
        return Err(ModelError::Unsupported(format!("{source}: RoPE needs an even head size, got {}", c.head_dim)));
    }
    if c.swa_layers.as_ref().is_some_and(|l| l.len() != c.n_layers) {
        return Err(ModelError::Unsupported(format!(
            "{source}: the sliding-window pattern does not cover every layer"
        )));
    }
    Ok(())
}
