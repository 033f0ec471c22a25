//! Hyperparameters of a LLaMA-shaped decoder: LLaMA's own, plus the options by which the
//! other families' blocks differ from it (all off for LLaMA). `crate::arch` fills them
//! from GGUF metadata or a Hugging Face `config.json`.

use crate::error::Result;
use crate::gguf::GgufFile;
use crate::hf::HfConfig;
use lamina_tensor::RopeConvention;

/// The MLP's gate activation: SwiGLU (LLaMA) or GeGLU (Gemma).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    #[default]
    Silu,
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`).
    GeluTanh,
    /// GELU with erf (`gelu`).
    GeluErf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// The GGUF architecture name (`llama`, `qwen2`, `gemma2`, ...), also for models read
    /// from Hugging Face directories (Mistral's is `llama`, as llama.cpp's converter writes).
    pub arch: String,
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// Features per head; `dim / n_heads` for most models, not for Gemma or Qwen3.
    pub head_dim: usize,
    pub ffn_dim: usize,
    pub norm_eps: f32,
    pub rope_base: f32,
    /// How q/k features are paired for rotation: GGUF LLaMA weights are stored for the
    /// interleaved form (llama.cpp's "normal" RoPE); everything else (and every Hugging
    /// Face checkpoint) uses split halves ("neox").
    pub rope_convention: RopeConvention,
    pub context_length: usize,
    /// q/k/v projections carry a bias (Qwen2).
    pub qkv_bias: bool,
    /// RMSNorm over each head of q and k before RoPE (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// q, k and v come from one projection (Phi-3's `qkv_proj`).
    pub fused_qkv: bool,
    /// Gate and up come from one projection, gate first (Phi-3's `gate_up_proj`).
    pub fused_gate_up: bool,
    /// RMSNorms on the attention and MLP outputs before the residual add (Gemma 2 and 3).
    pub post_norms: bool,
    pub activation: Activation,
    /// Embeddings multiplied by sqrt(dim) (Gemma).
    pub embed_scale: bool,
    /// Attention scale; `None` is 1 / sqrt(head_dim).
    pub attn_scale: Option<f32>,
    /// Attention scores pass through cap * tanh(s / cap) before the softmax (Gemma 2).
    pub attn_softcap: Option<f32>,
    /// Logits pass through cap * tanh(l / cap) (Gemma 2).
    pub final_softcap: Option<f32>,
    /// Sliding-window attention: a position attends to itself and the `w - 1` before it.
    pub sliding_window: Option<usize>,
    /// Which layers use the window (`None`: all of them).
    pub swa_layers: Option<Vec<bool>>,
    /// RoPE base of the sliding-window layers, when it differs (Gemma 3).
    pub rope_base_swa: Option<f32>,
}

impl Default for LlamaConfig {
    /// A LLaMA with no layers: the base that tests and the family readers start from.
    fn default() -> Self {
        LlamaConfig {
            arch: "llama".into(),
            vocab_size: 0,
            dim: 0,
            n_layers: 0,
            n_heads: 1,
            n_kv_heads: 1,
            head_dim: 0,
            ffn_dim: 0,
            norm_eps: 1e-5,
            rope_base: 10_000.0,
            rope_convention: RopeConvention::Interleaved,
            context_length: 0,
            qkv_bias: false,
            qk_norm: false,
            fused_qkv: false,
            fused_gate_up: false,
            post_norms: false,
            activation: Activation::Silu,
            embed_scale: false,
            attn_scale: None,
            attn_softcap: None,
            final_softcap: None,
            sliding_window: None,
            swa_layers: None,
            rope_base_swa: None,
        }
    }
}

impl LlamaConfig {
    /// From GGUF metadata, through the architecture registry.
    pub fn from_gguf(f: &GgufFile) -> Result<LlamaConfig> {
        crate::arch::decoder_for_gguf(f)?.config_from_gguf(f)
    }

    /// From a Hugging Face `config.json`, through the architecture registry.
    /// Checkpoints saved by `transformers` keep q/k in the split-halves layout that its
    /// RoPE rotates (GGUF LLaMA converters permute them).
    pub fn from_hf(h: &HfConfig) -> Result<LlamaConfig> {
        crate::arch::decoder_for_hf(h)?.config_from_hf(h)
    }

    /// Width of the concatenated query heads (the attention output's input width).
    pub fn q_dim(&self) -> usize {
        self.n_heads * self.head_dim
    }

    /// Width of the keys (and of the values).
    pub fn kv_dim(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }

    /// The window of layer `layer`'s attention, if it slides.
    pub fn window(&self, layer: usize) -> Option<usize> {
        let w = self.sliding_window?;
        match &self.swa_layers {
            Some(layers) => layers.get(layer).copied().unwrap_or(false).then_some(w),
            None => Some(w),
        }
    }

    /// Layer `layer`'s RoPE base.
    pub fn rope_base_of(&self, layer: usize) -> f32 {
        match (self.window(layer), self.rope_base_swa) {
            (Some(_), Some(b)) => b,
            _ => self.rope_base,
        }
    }

    /// Parameters, embedding included once (tied heads are not counted twice).
    pub fn n_params(&self, tied: bool) -> usize {
        let (q, kv) = (self.q_dim(), self.kv_dim());
        let attn = self.dim * (q + 2 * kv) + q * self.dim;
        let ffn = 3 * self.dim * self.ffn_dim;
        let norms = if self.post_norms { 4 } else { 2 } * self.dim + if self.qk_norm { 2 * self.head_dim } else { 0 };
        let head = if tied { 0 } else { self.vocab_size * self.dim };
        self.vocab_size * self.dim + self.n_layers * (attn + ffn + norms) + self.dim + head
    }
}

/// GGUF and Hugging Face (`transformers`) names of the modules of a LLaMA layer.
pub(crate) const LAYER_MODULES: [(&str, &str); 9] = [
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

/// The Hugging Face name of a weight given its GGUF name, with a family's module names
/// (`overrides`, (GGUF, HF)) taking precedence over LLaMA's.
pub(crate) fn hf_name_with(gguf: &str, overrides: &[(&str, &str)]) -> String {
    if let Some((_, hf)) = GLOBAL_TENSORS.iter().find(|(g, _)| *g == gguf) {
        return hf.to_string();
    }
    let Some(rest) = gguf.strip_prefix("blk.") else { return gguf.to_string() };
    let Some((layer, part)) = rest.split_once('.') else { return gguf.to_string() };
    let (module, suffix) = part.split_once('.').unwrap_or((part, ""));
    let hf = overrides.iter().chain(&LAYER_MODULES).find(|(g, _)| *g == module).map_or(module, |(_, h)| h);
    format!("model.layers.{layer}.{hf}.{suffix}")
}

/// The GGUF name of a Hugging Face weight (the inverse of [`hf_name_with`]), or `None`
/// for a name that is not one.
pub(crate) fn gguf_name_with(hf: &str, overrides: &[(&str, &str)]) -> Option<String> {
    if let Some((g, _)) = GLOBAL_TENSORS.iter().find(|(_, h)| *h == hf) {
        return Some(g.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    overrides.iter().chain(&LAYER_MODULES).find_map(|(g, h)| {
        let suffix = part.strip_prefix(h)?.strip_prefix('.')?;
        matches!(suffix, "weight" | "bias").then(|| format!("blk.{layer}.{g}.{suffix}"))
    })
}

/// The Hugging Face name of a LLaMA weight given its GGUF name (`blk.3.attn_q.weight` ->
/// `model.layers.3.self_attn.q_proj.weight`).
pub fn hf_name(gguf: &str) -> String {
    hf_name_with(gguf, &[])
}

/// The GGUF name of a Hugging Face LLaMA weight (the inverse of [`hf_name`]), or `None`
/// for a name that is not one.
pub fn gguf_name(hf: &str) -> Option<String> {
    gguf_name_with(hf, &[])
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

    #[test]
    fn family_names_take_precedence() {
        let gemma = [("ffn_norm", "pre_feedforward_layernorm"), ("post_attention_norm", "post_attention_layernorm")];
        assert_eq!(hf_name_with("blk.1.ffn_norm.weight", &gemma), "model.layers.1.pre_feedforward_layernorm.weight");
        assert_eq!(
            gguf_name_with("model.layers.1.post_attention_layernorm.weight", &gemma).as_deref(),
            Some("blk.1.post_attention_norm.weight")
        );
    }

    #[test]
    fn windows_and_bases_per_layer() {
        let c = LlamaConfig {
            sliding_window: Some(4),
            swa_layers: Some(vec![true, false]),
            rope_base_swa: Some(10.0),
            rope_base: 100.0,
            ..Default::default()
        };
        assert_eq!((c.window(0), c.window(1), c.window(2)), (Some(4), None, None));
        assert_eq!((c.rope_base_of(0), c.rope_base_of(1)), (10.0, 100.0));
        let all = LlamaConfig { sliding_window: Some(3), ..Default::default() };
        assert_eq!(all.window(5), Some(3));
    }
}
