//! Gemma 3 (text): Gemma 2's block without the soft-caps, with an RMSNorm (1 + w) over
//! each head of q and k; five local layers (sliding window, their own RoPE base) to each
//! global one.

use super::gemma2::{gemma_attention_scale, gemma_layers, GEMMA, GEMMA_NORMS};
use super::{Decoder, Family, Kind};

pub const FAMILY: Family = Family {
    name: "Gemma 3",
    gguf: &["gemma3"],
    hf: &["gemma3_text"],
    kind: Kind::Decoder(Decoder {
        gguf_arch: "gemma3",
        qk_norm: true,
        gguf_swa_period: 6,
        hf_modules: &[
            GEMMA_NORMS[0],
            GEMMA_NORMS[1],
            GEMMA_NORMS[2],
            ("attn_q_norm", "self_attn.q_norm"),
            ("attn_k_norm", "self_attn.k_norm"),
        ],
        gguf_extra: |c, _| gemma_attention_scale(c, 62),
        hf_extra: |c, h| gemma_layers(c, h, 6),
        ..GEMMA
    }),
};
