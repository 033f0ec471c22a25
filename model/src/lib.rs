//! Lamina's models. `nn` holds the layers (Linear, Embedding, LayerNorm), `gpt` a
//! GPT-2-style transformer (trainable, and GPT-2 checkpoints from GGUF), `llama` the
//! LLaMA-shaped decoder of every other decoder family, `bert` a BERT-style encoder (sentence
//! embeddings), `arch` the registry that maps a file's architecture to its family and
//! loader, `generation`/`sampling`/`chat` inference, `perplexity` evaluation and `kl` the
//! divergence of a model from a base model,
//! `tokenizer` the tokenizers (a character tokenizer, and those of pretrained models:
//! SentencePiece, BPE and WordPiece from GGUF as llama.cpp runs them, or
//! `tokenizer.json`), and `gguf`, `safetensors`, `hf` read (and write)
//! model files; `quantize` rewrites a model in ggml block formats, `convert` reads a Hugging
//! Face LLaMA directory as GGUF for it; `atomic` writes output files safely (checked paths,
//! temp + fsync + rename, temporaries removed on interruption).

pub mod arch;
pub mod atomic;
pub mod bert;
pub mod bottleneck;
pub mod causal_lm;
pub mod chat;
pub mod chat_encode;
pub mod convert;
mod error;
mod file_bytes;
mod generate;
pub mod generation;
pub mod gguf;
pub mod gpt;
mod gpt_gguf;
pub mod hf;
pub mod ia3;
pub mod kl;
pub mod kv_cache;
pub mod llama;
pub mod lora;
pub mod models;
pub mod nn;
pub mod perplexity;
pub mod prefix;
pub mod prompt;
pub mod prune;
pub mod qnn;
pub mod quantize;
pub mod safetensors;
pub mod sampling;
pub mod stop;
pub mod tokenizer;

/// The former home of the pretrained models' tokenizer (when it was byte-level BPE only).
pub mod bpe {
    pub use crate::tokenizer::{byte_level, pretokenize, special, TokenStream, Tokenizer};
}

pub use causal_lm::{CausalLm, LogitsFor, SeqStep};
pub use error::{ModelError, Result};
pub use gpt::{Block, CausalSelfAttention, Gpt, GptConfig, Mlp};
pub use kv_cache::KvCache;
pub use llama::{Activation, Llama, LlamaConfig, LoadOptions};
pub use nn::{Embedding, LayerNorm, Linear, SeedStream};
pub use tokenizer::{CharTokenizer, TokenizerError};
pub use tokenizer::{TokenStream, Tokenizer, Tokenizer as BpeTokenizer};
