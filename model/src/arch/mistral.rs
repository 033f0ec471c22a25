//! Mistral: LLaMA with sliding-window attention where `config.json` sets `sliding_window`
//! (Mistral 7B v0.1). llama.cpp's converter writes Mistral as `llama` without the window,
//! so a GGUF Mistral loads (and runs, as in llama.cpp) as LLaMA.

use super::{Decoder, Family, Kind, LLAMA_SHAPED};

pub const FAMILY: Family =
    Family { name: "Mistral", gguf: &[], hf: &["mistral"], kind: Kind::Decoder(Decoder { ..LLAMA_SHAPED }) };
