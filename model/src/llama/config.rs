//! LLaMA-family hyperparameters, read from GGUF metadata (`<arch>.*` keys).

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::hf::HfConfig;
use lamina_tensor::RopeConvention;

/// Hyperparameters of a LLaMA-family model (LLaMA 1-3, SmolLM2, TinyLlama, Qwen2).
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    pub arch: String,
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_dim: usize,
    pub norm_eps: f32,
    pub rope_base: f32,
    /// How q/k features are paired for rotation: GGUF LLaMA weights are stored for the
    /// interleaved form (llama.cpp's "normal" RoPE), Qwen2 uses split halves ("neox").
    pub rope_convention: RopeConvention,
    pub context_length: usize,
    /// q/k/v projections carry a bias (Qwen2).
    pub qkv_bias: bool,
}

/// Architectures this implementation runs, with their RoPE pairing.
const ARCHS: &[(&str, RopeConvention)] =
    &[("llama", RopeConvention::Interleaved), ("qwen2", RopeConvention::SplitHalves)];

/// Hyperparameters beyond this are not a model anyone ships: refuse before allocating.
const MAX_DIM: u64 = 1 << 16;
const MAX_LAYERS: u64 = 1024;

impl LlamaConfig {
    pub fn from_gguf(f: &GgufFile) -> Result<LlamaConfig> {
        let arch = f.architecture()?.to_string();
        let Some(&(_, rope_convention)) = ARCHS.iter().find(|(a, _)| *a == arch) else {
            return Err(ModelError::Unsupported(format!("architecture `{arch}` is not a LLaMA-family model")));
        };
        let key = |k: &str| format!("{arch}.{k}");
        let bounded = |k: &str, max: u64| -> Result<usize> {
            let v = f.get_u64(&key(k))?;
            if v == 0 || v > max {
                return Err(ModelError::Unsupported(format!("{} = {v} is outside 1..={max}", key(k))));
            }
            Ok(v as usize)
        };
        let dim = bounded("embedding_length", MAX_DIM)?;
        let n_heads = bounded("attention.head_count", MAX_DIM)?;
        let n_kv_heads = match f.get(&key("attention.head_count_kv")) {
            Some(_) => bounded("attention.head_count_kv", MAX_DIM)?,
            None => n_heads,
        };
        if !dim.is_multiple_of(n_heads) || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(ModelError::Unsupported(format!(
                "{dim} features over {n_heads} heads and {n_kv_heads} kv heads do not divide evenly"
            )));
        }
        let head_dim = dim / n_heads;
        let rope_dim = match f.get(&key("rope.dimension_count")) {
            Some(_) => bounded("rope.dimension_count", MAX_DIM)?,
            None => head_dim,
        };
        if rope_dim != head_dim {
            return Err(ModelError::Unsupported(format!(
                "partial rotary embeddings (rope dims {rope_dim} of head dim {head_dim})"
            )));
        }
        if f.get(&key("rope.scaling.type")).and_then(|v| v.as_str()).is_some_and(|t| t != "none") {
            return Err(ModelError::Unsupported("RoPE scaling (rope.scaling.type)".into()));
        }
        let vocab_size = match f.get(&key("vocab_size")) {
            Some(_) => bounded("vocab_size", 1 << 24)?,
            None => f.get_array("tokenizer.ggml.tokens")?.len(),
        };
        let qkv_bias = f.tensor_info("blk.0.attn_q.bias").is_some();
        Ok(LlamaConfig {
            vocab_size,
            dim,
            n_layers: bounded("block_count", MAX_LAYERS)?,
            n_heads,
            n_kv_heads,
            head_dim,
            ffn_dim: bounded("feed_forward_length", 1 << 20)?,
            norm_eps: f.get_f64(&key("attention.layer_norm_rms_epsilon"))? as f32,
            rope_base: f.get(&key("rope.freq_base")).and_then(|v| v.as_f64()).unwrap_or(10_000.0) as f32,
            rope_convention,
            context_length: bounded("context_length", 1 << 24)?,
            qkv_bias,
            arch,
        })
    }

    /// From a Hugging Face `config.json`. Checkpoints saved by `transformers` keep q/k in
    /// the split-halves layout that its RoPE rotates (GGUF converters permute them).
    pub fn from_hf(h: &HfConfig) -> Result<LlamaConfig> {
        let arch = h.model_type.clone().unwrap_or_default();
        if !matches!(arch.as_str(), "llama" | "qwen2" | "mistral") {
            return Err(ModelError::Unsupported(format!(
                "Hugging Face model_type `{arch}` (architectures {:?}) is not a LLaMA-family model",
                h.architectures
            )));
        }
        let need = |v: Option<u64>, key: &str, max: u64| -> Result<usize> {
            match v {
                Some(v) if v > 0 && v <= max => Ok(v as usize),
                Some(v) => Err(ModelError::Unsupported(format!("config.json {key} = {v} is outside 1..={max}"))),
                None => Err(ModelError::Missing(format!("config.json has no `{key}`"))),
            }
        };
        let dim = need(h.hidden_size, "hidden_size", MAX_DIM)?;
        let n_heads = need(h.num_attention_heads, "num_attention_heads", MAX_DIM)?;
        let n_kv_heads = need(h.head_count_kv(), "num_key_value_heads", MAX_DIM)?;
        if !dim.is_multiple_of(n_heads) || !n_heads.is_multiple_of(n_kv_heads) {
            return Err(ModelError::Unsupported(format!(
                "{dim} features over {n_heads} heads and {n_kv_heads} kv heads do not divide evenly"
            )));
        }
        if h.head_dim.is_some_and(|d| d as usize != dim / n_heads) {
            return Err(ModelError::Unsupported("head_dim different from hidden_size / num_attention_heads".into()));
        }
        Ok(LlamaConfig {
            vocab_size: need(h.vocab_size, "vocab_size", 1 << 24)?,
            dim,
            n_layers: need(h.num_hidden_layers, "num_hidden_layers", MAX_LAYERS)?,
            n_heads,
            n_kv_heads,
            head_dim: dim / n_heads,
            ffn_dim: need(h.intermediate_size, "intermediate_size", 1 << 20)?,
            norm_eps: h.rms_norm_eps.unwrap_or(1e-6) as f32,
            rope_base: h.rope_theta.unwrap_or(10_000.0) as f32,
            rope_convention: RopeConvention::SplitHalves,
            context_length: need(h.max_position_embeddings, "max_position_embeddings", 1 << 24)?,
            qkv_bias: h.attention_bias.unwrap_or(arch == "qwen2"),
            arch,
        })
    }

    /// Parameters, embedding included once (tied heads are not counted twice).
    pub fn n_params(&self, tied: bool) -> usize {
        let kv = self.n_kv_heads * self.head_dim;
        let attn = self.dim * (self.dim + 2 * kv) + self.dim * self.dim;
        let ffn = 3 * self.dim * self.ffn_dim;
        let head = if tied { 0 } else { self.vocab_size * self.dim };
        self.vocab_size * self.dim + self.n_layers * (attn + ffn + 2 * self.dim) + self.dim + head
    }
}

/// GGUF and Hugging Face (`transformers`) names of the modules of a LLaMA layer.
const LAYER_MODULES: [(&str, &str); 9] = [
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// The tensors outside the layers, (GGUF, Hugging Face).
const GLOBAL_TENSORS: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output_norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
];

/// The Hugging Face name of a weight given its GGUF name (`blk.3.attn_q.weight` ->
/// `model.layers.3.self_attn.q_proj.weight`).
pub fn hf_name(gguf: &str) -> String {
    if let Some((_, hf)) = GLOBAL_TENSORS.iter().find(|(g, _)| *g == gguf) {
        return hf.to_string();
    }
    let Some(rest) = gguf.strip_prefix("blk.") else { return gguf.to_string() };
    let Some((layer, part)) = rest.split_once('.') else { return gguf.to_string() };
    let (module, suffix) = part.split_once('.').unwrap_or((part, ""));
    let hf = LAYER_MODULES.iter().find(|(g, _)| *g == module).map_or(module, |(_, h)| h);
    format!("model.layers.{layer}.{hf}.{suffix}")
}

/// The GGUF name of a Hugging Face LLaMA weight (the inverse of [`hf_name`]), or `None`
/// for a name that is not one.
pub fn gguf_name(hf: &str) -> Option<String> {
    if let Some((g, _)) = GLOBAL_TENSORS.iter().find(|(_, h)| *h == hf) {
        return Some(g.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    LAYER_MODULES.iter().find_map(|(g, h)| {
        let suffix = part.strip_prefix(h)?.strip_prefix('.')?;
        matches!(suffix, "weight" | "bias").then(|| format!("blk.{layer}.{g}.{suffix}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        for g in
            ["token_embd.weight", "output.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight", "blk.3.attn_k.bias"]
        {
            assert_eq!(gguf_name(&hf_name(g)).as_deref(), Some(g), "{g}");
        }
        assert_eq!(hf_name("blk.7.ffn_norm.weight"), "model.layers.7.post_attention_layernorm.weight");
        for bad in ["model.layers.0.self_attn.rotary_emb.inv_freq", "model.layers.x.mlp.up_proj.weight", "lm_head"] {
            assert_eq!(gguf_name(bad), None, "{bad}");
        }
    }
}
