//! Qwen3: Qwen2's block without the q/k/v biases and with an RMSNorm over each head of q
//! and k before RoPE; head_dim is its own setting (128 where hidden / heads is 64).

use super::{Decoder, Family, Kind, LLAMA_SHAPED};
use lamina_tensor::RopeConvention;

pub const FAMILY: Family = Family {
    name: "Qwen3",
    gguf: &["qwen3"],
    hf: &["qwen3"],
    kind: Kind::Decoder(Decoder {
        gguf_arch: "qwen3",
        gguf_rope: RopeConvention::SplitHalves,
        qk_norm: true,
        hf_modules: &[("attn_q_norm", "self_attn.q_norm"), ("attn_k_norm", "self_attn.k_norm")],
        hf_extra: super::qwen2::qwen_window,
        ..LLAMA_SHAPED
    }),
};
