//! Gemma 2: embeddings scaled by sqrt(dim), RMSNorms scaling by (1 + w), a GeGLU MLP (tanh
//! GELU), norms before and after both attention and MLP, attention scores and logits
//! soft-capped (cap * tanh(x / cap)), and local (sliding-window) and global layers
//! alternating, local first.

use super::{Decoder, Family, Kind, LLAMA_SHAPED};
use crate::error::Result;
use crate::hf::HfConfig;
use crate::llama::{Activation, LlamaConfig};
use lamina_tensor::RopeConvention;

/// Gemma 2 and 3 name their four norms differently from LLaMA (GGUF, HF).
pub(crate) const GEMMA_NORMS: [(&str, &str); 3] = [
    ("post_attention_norm", "post_attention_layernorm"),
    ("ffn_norm", "pre_feedforward_layernorm"),
    ("post_ffw_norm", "post_feedforward_layernorm"),
];

/// What Gemma 2 and 3 share.
pub(crate) const GEMMA: Decoder = Decoder {
    gguf_rope: RopeConvention::SplitHalves,
    post_norms: true,
    embed_scale: true,
    activation: Activation::GeluTanh,
    hf_modules: &GEMMA_NORMS,
    hf_norm_shift: 1.0,
    ..LLAMA_SHAPED
};

pub const FAMILY: Family = Family {
    name: "Gemma 2",
    gguf: &["gemma2"],
    hf: &["gemma2"],
    kind: Kind::Decoder(Decoder {
        gguf_arch: "gemma2",
        gguf_swa_period: 2,
        gguf_extra: |c, _| gemma_attention_scale(c, 46),
        hf_extra: |c, h| gemma_layers(c, h, 2),
        ..GEMMA
    }),
};

/// GGUF files carry no `query_pre_attn_scalar`: llama.cpp scales by 1/sqrt(head_dim),
/// except for the 27B model (`layers_27b` layers), scaled by 1/sqrt(dim / heads).
pub(crate) fn gemma_attention_scale(c: &mut LlamaConfig, layers_27b: usize) -> Result<()> {
    let d = if c.n_layers == layers_27b { c.dim / c.n_heads } else { c.head_dim };
    c.attn_scale = Some((d as f64).powf(-0.5) as f32);
    Ok(())
}

/// transformers 4 configs have no `layer_types`: every `period`-th layer is global, the
/// rest slide (`sliding_window_pattern` where given).
pub(crate) fn gemma_layers(c: &mut LlamaConfig, h: &HfConfig, period: usize) -> Result<()> {
    if h.layer_types.is_none() && c.sliding_window.is_some() {
        let period = h.sliding_window_pattern.map_or(period, |p| p as usize);
        c.swa_layers = Some(super::gguf_hparams::periodic(c.n_layers, period));
    }
    if c.attn_scale.is_none() {
        c.attn_scale = Some((c.head_dim as f64).powf(-0.5) as f32);
    }
    Ok(())
}
