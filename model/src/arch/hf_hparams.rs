//! A LLaMA-shaped decoder's hyperparameters from a Hugging Face `config.json`: the keys
//! transformers' LLaMA-like configs share (4.x and 5.x spellings). Family-specific
//! structure is set by the family (`Decoder`) afterwards.

use super::gguf_hparams::{MAX_DIM, MAX_LAYERS};
use crate::error::{ModelError, Result};
use crate::hf::HfConfig;
use crate::llama::{Activation, LlamaConfig};
use lamina_tensor::RopeConvention;

/// `model_type` for messages.
pub(crate) fn model_type(h: &HfConfig) -> &str {
    h.model_type.as_deref().unwrap_or("(no model_type)")
}

fn unsupported(h: &HfConfig, what: String) -> ModelError {
    ModelError::Unsupported(format!("{} (config.json): {what}", model_type(h)))
}

/// A required count in 1..=max.
pub(crate) fn need(h: &HfConfig, v: Option<u64>, key: &str, max: u64) -> Result<usize> {
    match v {
        Some(v) if v > 0 && v <= max => Ok(v as usize),
        Some(v) => Err(unsupported(h, format!("{key} = {v} is outside 1..={max}"))),
        None => Err(ModelError::Missing(format!("{} (config.json): no `{key}`", model_type(h)))),
    }
}

/// The activation named by `hidden_act` / `hidden_activation`.
pub(crate) fn activation(h: &HfConfig, default: Activation) -> Result<Activation> {
    Ok(match h.activation() {
        None => default,
        Some("silu" | "swish") => Activation::Silu,
        Some("gelu_pytorch_tanh" | "gelu_new" | "gelu_tanh" | "gelu_fast") => Activation::GeluTanh,
        Some("gelu") => Activation::GeluErf,
        Some(other) => return Err(unsupported(h, format!("hidden_act `{other}`"))),
    })
}

/// Refuse RoPE variants this implementation does not compute.
fn check_rope(h: &HfConfig) -> Result<()> {
    for kind in ["full_attention", "sliding_attention"] {
        let Some(p) = h.rope_settings(kind) else { continue };
        let ty = p.get("rope_type").or(p.get("type")).and_then(|v| v.as_str()).unwrap_or("default");
        if !matches!(ty, "default" | "none") {
            return Err(unsupported(h, format!("RoPE scaling (rope_type `{ty}`)")));
        }
        if let Some(f) = p.get("partial_rotary_factor").and_then(|v| v.as_f64()).filter(|f| *f != 1.0) {
            return Err(unsupported(h, format!("partial rotary embeddings (partial_rotary_factor = {f})")));
        }
    }
    if let Some(f) = h.partial_rotary_factor.filter(|f| *f != 1.0) {
        return Err(unsupported(h, format!("partial rotary embeddings (partial_rotary_factor = {f})")));
    }
    Ok(())
}

fn positive(h: &HfConfig, v: Option<f64>, key: &str) -> Result<Option<f32>> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x as f32)),
        Some(x) => Err(unsupported(h, format!("{key} = {x} is not a positive number"))),
    }
}

/// Everything the shared keys say; `arch` is the GGUF architecture name to record.
pub(crate) fn read(h: &HfConfig, arch: &str) -> Result<LlamaConfig> {
    check_rope(h)?;
    if h.mlp_bias == Some(true) {
        return Err(unsupported(h, "biases on the MLP projections (mlp_bias = true)".into()));
    }
    let dim = need(h, h.hidden_size, "hidden_size", MAX_DIM)?;
    let n_heads = need(h, h.num_attention_heads, "num_attention_heads", MAX_DIM)?;
    let n_kv_heads = need(h, h.head_count_kv(), "num_key_value_heads", MAX_DIM)?;
    if !n_heads.is_multiple_of(n_kv_heads) {
        return Err(unsupported(h, format!("{n_heads} heads do not group over num_key_value_heads = {n_kv_heads}")));
    }
    let head_dim = match h.head_dim {
        Some(d) => need(h, Some(d), "head_dim", MAX_DIM)?,
        None if dim.is_multiple_of(n_heads) => dim / n_heads,
        None => return Err(unsupported(h, format!("hidden_size {dim} does not divide over {n_heads} heads"))),
    };
    let n_layers = need(h, h.num_hidden_layers, "num_hidden_layers", MAX_LAYERS)?;
    let window = match h.sliding_window {
        Some(0) | None => None,
        Some(w) => Some(need(h, Some(w), "sliding_window", 1 << 24)?),
    };
    let swa_layers = match &h.layer_types {
        None => None,
        Some(types) if types.len() == n_layers => Some(
            types
                .iter()
                .map(|t| match t.as_str() {
                    "sliding_attention" => Ok(true),
                    "full_attention" => Ok(false),
                    other => Err(unsupported(h, format!("layer_types entry `{other}`"))),
                })
                .collect::<Result<Vec<bool>>>()?,
        ),
        Some(types) => {
            return Err(unsupported(h, format!("{} layer_types for {n_layers} layers", types.len())));
        }
    };
    // A window no layer uses is no window.
    let sliding_window = window.filter(|_| swa_layers.as_ref().is_none_or(|l| l.iter().any(|&s| s)));
    Ok(LlamaConfig {
        arch: arch.to_string(),
        vocab_size: need(h, h.vocab_size, "vocab_size", 1 << 24)?,
        dim,
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn_dim: need(h, h.intermediate_size, "intermediate_size", 1 << 20)?,
        norm_eps: crate::error::positive("config.json rms_norm_eps", h.rms_norm_eps.unwrap_or(1e-6))?,
        rope_base: positive(h, h.rope_base(), "rope_theta")?.unwrap_or(10_000.0),
        rope_base_swa: positive(h, h.rope_base_swa(), "sliding_attention rope_theta")?,
        rope_convention: RopeConvention::SplitHalves,
        context_length: need(h, h.max_position_embeddings, "max_position_embeddings", 1 << 24)?,
        qkv_bias: h.attention_bias.unwrap_or(false),
        activation: activation(h, Activation::Silu)?,
        // In f64 then rounded, as transformers computes `query_pre_attn_scalar**-0.5`.
        attn_scale: positive(h, h.query_pre_attn_scalar, "query_pre_attn_scalar")?
            .map(|_| h.query_pre_attn_scalar.unwrap_or(1.0).powf(-0.5) as f32),
        attn_softcap: positive(h, h.attn_logit_softcapping, "attn_logit_softcapping")?,
        final_softcap: positive(h, h.final_logit_softcapping, "final_logit_softcapping")?,
        sliding_window,
        swa_layers,
        ..LlamaConfig::default()
    })
}
