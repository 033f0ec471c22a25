//! Lamina's models. `nn` holds the layers (Linear, Embedding, LayerNorm), `gpt` a
//! GPT-2-style transformer, `generate` its sampler, `tokenizer` a character tokenizer,
//! `bpe` the byte-level BPE tokenizer of pretrained models (GGUF or `tokenizer.json`).

pub mod bpe;
mod error;
pub mod fixtures;
mod generate;
pub mod gguf;
pub mod gpt;
pub mod nn;
pub mod tokenizer;

pub use bpe::{TokenStream, Tokenizer as BpeTokenizer};
pub use error::{ModelError, Result};
pub use gpt::{Block, CausalSelfAttention, Gpt, GptConfig, Mlp};
pub use nn::{Embedding, LayerNorm, Linear, SeedStream};
pub use tokenizer::{CharTokenizer, TokenizerError};
