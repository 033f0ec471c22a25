//! A LLaMA-shaped decoder's hyperparameters from GGUF metadata: the `<arch>.*` keys
//! llama.cpp's converter writes for every such family. Family-specific structure (q/k
//! norms, fused projections, ...) is set by the family (`Decoder`) afterwards.

use crate::error::{positive, ModelError, Result};
use crate::gguf::{GgufFile, MetaArray, MetaValue};
use crate::llama::LlamaConfig;

/// Hyperparameters beyond this are not a model anyone ships: refuse before allocating.
pub(crate) const MAX_DIM: u64 = 1 << 16;
pub(crate) const MAX_LAYERS: u64 = 1024;

/// Reads `<arch>.*` keys, naming the key in every error.
pub(crate) struct Keys<'f> {
    pub f: &'f GgufFile,
    pub arch: &'f str,
}

impl Keys<'_> {
    pub fn name(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    pub fn get(&self, k: &str) -> Option<&MetaValue> {
        self.f.get(&self.name(k))
    }

    /// A required count in 1..=max.
    pub fn count(&self, k: &str, max: u64) -> Result<usize> {
        let v = self.f.get_u64(&self.name(k))?;
        if v == 0 || v > max {
            return Err(ModelError::Unsupported(format!("{} = {v} is outside 1..={max}", self.name(k))));
        }
        Ok(v as usize)
    }

    /// An optional count in 1..=max.
    pub fn count_opt(&self, k: &str, max: u64) -> Result<Option<usize>> {
        match self.get(k) {
            Some(_) => self.count(k, max).map(Some),
            None => Ok(None),
        }
    }

    /// An optional number (a soft-cap, a base); zero reads as absent, as llama.cpp does.
    pub fn positive(&self, k: &str) -> Result<Option<f32>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => match v.as_f64() {
                Some(0.0) => Ok(None),
                Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x as f32)),
                _ => Err(ModelError::Unsupported(format!("{} = {v:?} is not a positive number", self.name(k)))),
            },
        }
    }
}

/// Everything the standard keys say.
pub(crate) fn read(f: &GgufFile, arch: &str) -> Result<LlamaConfig> {
    let keys = Keys { f, arch };
    let dim = keys.count("embedding_length", MAX_DIM)?;
    let n_heads = keys.count("attention.head_count", MAX_DIM)?;
    let n_kv_heads = keys.count_opt("attention.head_count_kv", MAX_DIM)?.unwrap_or(n_heads);
    if !n_heads.is_multiple_of(n_kv_heads) {
        return Err(ModelError::Unsupported(format!(
            "{arch}: {n_heads} heads do not group evenly over {n_kv_heads} kv heads ({})",
            keys.name("attention.head_count_kv")
        )));
    }
    let head_dim = match keys.count_opt("attention.key_length", MAX_DIM)? {
        Some(d) => d,
        None if dim.is_multiple_of(n_heads) => dim / n_heads,
        None => {
            return Err(ModelError::Unsupported(format!(
                "{arch}: {dim} features do not divide over {n_heads} heads and {} is not given",
                keys.name("attention.key_length")
            )))
        }
    };
    if let Some(v) = keys.count_opt("attention.value_length", MAX_DIM)? {
        if v != head_dim {
            return Err(ModelError::Unsupported(format!(
                "{arch}: values of {v} features ({}) with keys of {head_dim}",
                keys.name("attention.value_length")
            )));
        }
    }
    if let Some(rope_dim) = keys.count_opt("rope.dimension_count", MAX_DIM)? {
        if rope_dim != head_dim {
            return Err(ModelError::Unsupported(format!(
                "{arch}: partial rotary embeddings ({} = {rope_dim} of head dim {head_dim})",
                keys.name("rope.dimension_count")
            )));
        }
    }
    if let Some(t) = keys.get("rope.scaling.type").and_then(|v| v.as_str()).filter(|t| *t != "none") {
        return Err(ModelError::Unsupported(format!(
            "{arch}: RoPE scaling ({} = {t})",
            keys.name("rope.scaling.type")
        )));
    }
    let vocab_size = match keys.count_opt("vocab_size", 1 << 24)? {
        Some(v) => v,
        None => f.get_array("tokenizer.ggml.tokens")?.len(),
    };
    // Phi-4 writes a zero window for "none".
    let sliding_window = match keys.get("attention.sliding_window").and_then(|v| v.as_u64()) {
        Some(0) => None,
        _ => keys.count_opt("attention.sliding_window", 1 << 24)?,
    };
    Ok(LlamaConfig {
        arch: arch.to_string(),
        vocab_size,
        dim,
        n_layers: keys.count("block_count", MAX_LAYERS)?,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn_dim: keys.count("feed_forward_length", 1 << 20)?,
        // An epsilon or RoPE base that is not positive and finite makes every output NaN:
        // refused by name (0 is not "unset" here).
        norm_eps: positive(
            &keys.name("attention.layer_norm_rms_epsilon"),
            f.get_f64(&keys.name("attention.layer_norm_rms_epsilon"))?,
        )?,
        rope_base: match keys.get("rope.freq_base") {
            None => 10_000.0,
            Some(v) => positive(&keys.name("rope.freq_base"), v.as_f64().unwrap_or(f64::NAN))?,
        },
        rope_base_swa: keys.positive("rope.freq_base_swa")?,
        context_length: keys.count("context_length", 1 << 24)?,
        qkv_bias: f.tensor_info("blk.0.attn_q.bias").is_some(),
        attn_softcap: keys.positive("attn_logit_softcapping")?,
        final_softcap: keys.positive("final_logit_softcapping")?,
        sliding_window,
        ..LlamaConfig::default()
    })
}

/// Which layers slide: `<arch>.attention.sliding_window_pattern` as a per-layer list, or
/// llama.cpp's `set_swa_pattern(n)` (every n-th layer global, the last of each group of n)
/// with `n` from the key or the family's default.
pub(crate) fn swa_layers(f: &GgufFile, arch: &str, n_layers: usize, default_period: usize) -> Result<Vec<bool>> {
    let keys = Keys { f, arch };
    let key = "attention.sliding_window_pattern";
    let period = match keys.get(key) {
        None => default_period,
        Some(MetaValue::Array(MetaArray::Bool(v))) if v.len() == n_layers => return Ok(v.clone()),
        Some(v) => match v.as_u64() {
            Some(n) if n as usize <= n_layers.max(1) => n as usize,
            _ => {
                return Err(ModelError::Unsupported(format!(
                    "{} is neither a layer count nor {n_layers} booleans",
                    keys.name(key)
                )))
            }
        },
    };
    Ok(periodic(n_layers, period))
}

/// llama.cpp's `set_swa_pattern(period)`: layer i slides unless it is the last of its group
/// of `period` (0: every layer slides).
pub(crate) fn periodic(n_layers: usize, period: usize) -> Vec<bool> {
    (0..n_layers).map(|i| period == 0 || i % period < period - 1).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn llama_cpp_swa_pattern() {
        assert_eq!(super::periodic(4, 2), [true, false, true, false]);
        assert_eq!(super::periodic(7, 6), [true, true, true, true, true, false, true]);
        assert_eq!(super::periodic(2, 0), [true, true]);
    }
}
