//! Phi-3 (and Phi-4, which shares its architecture): LLaMA with q, k, v in one projection
//! (`qkv_proj`, GGUF `attn_qkv`) and gate and up in another (`gate_up_proj`, gate first;
//! GGUF keeps it as `ffn_up`), RoPE on split halves, sliding-window attention on every
//! layer where the config sets one. (llama.cpp currently ignores Phi-3's window; Lamina
//! follows transformers, so the two differ beyond it.)

use super::{Decoder, Family, Kind, LLAMA_SHAPED};
use lamina_tensor::RopeConvention;

pub const FAMILY: Family = Family {
    name: "Phi-3",
    gguf: &["phi3"],
    hf: &["phi3"],
    kind: Kind::Decoder(Decoder {
        gguf_arch: "phi3",
        gguf_rope: RopeConvention::SplitHalves,
        fused: true,
        hf_modules: &[("attn_qkv", "self_attn.qkv_proj"), ("ffn_up", "mlp.gate_up_proj")],
        ..LLAMA_SHAPED
    }),
};
