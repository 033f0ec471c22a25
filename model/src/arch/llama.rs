//! LLaMA 1-3 and the models that share its GGUF architecture (SmolLM2, TinyLlama,
//! Mistral converted by llama.cpp): the decoder as it is, q/k rows permuted in GGUF.

use super::{Family, Kind, LLAMA_SHAPED};

pub const FAMILY: Family =
    Family { name: "LLaMA", gguf: &["llama"], hf: &["llama"], kind: Kind::Decoder(LLAMA_SHAPED) };
