//! Lamina's models. `nn` holds the layers (Linear, Embedding, LayerNorm), `gpt` a
//! GPT-2-style transformer, `generate` its sampler, `tokenizer` a character tokenizer.
//! `gguf`, `safetensors` and `hf` read (and write) model files.

mod atomic;
mod error;
pub mod fixtures;
mod generate;
pub mod gguf;
pub mod gpt;
pub mod hf;
pub mod nn;
pub mod safetensors;
pub mod tokenizer;

pub use error::{ModelError, Result};
pub use gpt::{Block, CausalSelfAttention, Gpt, GptConfig, Mlp};
pub use nn::{Embedding, LayerNorm, Linear, SeedStream};
pub use tokenizer::{CharTokenizer, TokenizerError};
