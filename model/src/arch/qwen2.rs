//! Qwen2 and Qwen2.5: LLaMA with biases on q, k and v, RoPE on split halves in GGUF.

use super::{Decoder, Family, Kind, LLAMA_SHAPED};
use crate::error::Result;
use crate::hf::HfConfig;
use crate::llama::LlamaConfig;
use lamina_tensor::RopeConvention;

pub const FAMILY: Family = Family {
    name: "Qwen2",
    gguf: &["qwen2"],
    hf: &["qwen2"],
    kind: Kind::Decoder(Decoder {
        gguf_arch: "qwen2",
        gguf_rope: RopeConvention::SplitHalves,
        hf_qkv_bias: true,
        hf_extra: qwen_window,
        ..LLAMA_SHAPED
    }),
};

/// Qwen configs carry a `sliding_window` that applies only under `use_sliding_window`, to
/// the layers from `max_window_layers` on (transformers 4 writes no `layer_types`).
pub(crate) fn qwen_window(c: &mut LlamaConfig, h: &HfConfig) -> Result<()> {
    if h.use_sliding_window != Some(true) {
        c.sliding_window = None;
        c.swa_layers = None;
    } else if h.layer_types.is_none() {
        let from = h.max_window_layers.unwrap_or(0) as usize;
        c.swa_layers = Some((0..c.n_layers).map(|i| i >= from).collect());
    }
    Ok(())
}
