//! A tiny LLaMA GGUF written by a test: a toy byte-level vocabulary with ChatML's control
//! tokens, one block of width 8, seeded random weights, so that every LLM command runs on
//! it in milliseconds; with knobs for hostile variants (NaN weights, impossible
//! hyperparameters, an out-of-range BOS, a chat template). For a fixed small LLaMA with
//! reference outputs, use the committed `tests/fixtures/arch/llama` instead.

use lamina_model::bpe::byte_level::byte_to_char;
use lamina_model::gguf::{self, GgufTensor, MetaArray, MetaValue};
use lamina_tensor::quant::GgmlType;
use lamina_tensor::{DType, Tensor};
use std::path::Path;

/// The knobs of [`tiny_llama`].
#[derive(Clone, Debug)]
pub struct Tiny {
    /// Width (two heads, one KV head), feed-forward width, blocks.
    pub dim: u64,
    pub ffn: u64,
    pub layers: u64,
    /// The BOS id the metadata names.
    pub bos: u32,
    pub norm_eps: f32,
    pub rope_base: f32,
    /// Every weight of the first attention projection NaN.
    pub nan_weights: bool,
    pub chat_template: Option<String>,
}

impl Default for Tiny {
    fn default() -> Tiny {
        Tiny {
            dim: 8,
            ffn: 16,
            layers: 1,
            bos: 256,
            norm_eps: 1e-5,
            rope_base: 10_000.0,
            nan_weights: false,
            chat_template: None,
        }
    }
}

/// The control tokens after the 256 byte tokens: ids 256, 257, 258.
pub const CONTROL: [&str; 3] = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"];

/// Seeded values in [-0.5, 0.5).
fn values(n: u64, seed: u64) -> Vec<f32> {
    Tensor::rand_uniform(&[n as usize], -0.5, 0.5, seed, DType::F32).unwrap().to_vec::<f32>().unwrap()
}

/// Write a tiny LLaMA to `path` (F32 weights, tied output).
pub fn tiny_llama(path: &Path, tiny: &Tiny) {
    let mut tokens: Vec<String> = byte_to_char().iter().map(|c| c.to_string()).collect();
    tokens.extend(CONTROL.map(String::from));
    let mut types = vec![1i32; 256];
    types.extend([3, 3, 3]);
    let vocab = tokens.len() as u64;
    let mut meta = vec![
        ("general.architecture", MetaValue::String("llama".into())),
        ("general.name", MetaValue::String("tiny".into())),
        ("llama.context_length", MetaValue::U32(256)),
        ("llama.embedding_length", MetaValue::U32(tiny.dim as u32)),
        ("llama.block_count", MetaValue::U32(tiny.layers as u32)),
        ("llama.feed_forward_length", MetaValue::U32(tiny.ffn as u32)),
        ("llama.attention.head_count", MetaValue::U32(2)),
        ("llama.attention.head_count_kv", MetaValue::U32(1)),
        ("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(tiny.norm_eps)),
        ("llama.rope.freq_base", MetaValue::F32(tiny.rope_base)),
        ("tokenizer.ggml.model", MetaValue::String("gpt2".into())),
        ("tokenizer.ggml.pre", MetaValue::String("gpt-2".into())),
        ("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::String(tokens))),
        ("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(types))),
        ("tokenizer.ggml.merges", MetaValue::Array(MetaArray::String(Vec::new()))),
        ("tokenizer.ggml.bos_token_id", MetaValue::U32(tiny.bos)),
        ("tokenizer.ggml.eos_token_id", MetaValue::U32(257)),
    ];
    if let Some(t) = &tiny.chat_template {
        meta.push(("tokenizer.chat_template", MetaValue::String(t.clone())));
    }
    let (dim, ffn, kv) = (tiny.dim, tiny.ffn, tiny.dim / 2);
    let mut shapes: Vec<(String, Vec<u64>)> = vec![("token_embd.weight".into(), vec![dim, vocab])];
    for l in 0..tiny.layers {
        for (name, ne) in [
            ("attn_norm", vec![dim]),
            ("attn_q", vec![dim, dim]),
            ("attn_k", vec![dim, kv]),
            ("attn_v", vec![dim, kv]),
            ("attn_output", vec![dim, dim]),
            ("ffn_norm", vec![dim]),
            ("ffn_gate", vec![dim, ffn]),
            ("ffn_up", vec![dim, ffn]),
            ("ffn_down", vec![ffn, dim]),
        ] {
            shapes.push((format!("blk.{l}.{name}.weight"), ne));
        }
    }
    shapes.push(("output_norm.weight".into(), vec![dim]));
    let data: Vec<Vec<u8>> = shapes
        .iter()
        .enumerate()
        .map(|(i, (name, ne))| {
            let n = ne.iter().product();
            let v: Vec<f32> = match name.as_str() {
                _ if name.ends_with("norm.weight") => vec![1.0; n as usize],
                "blk.0.attn_q.weight" if tiny.nan_weights => vec![f32::NAN; n as usize],
                _ => values(n, i as u64 + 1),
            };
            v.iter().flat_map(|x| x.to_le_bytes()).collect()
        })
        .collect();
    let tensors: Vec<GgufTensor> =
        shapes.iter().zip(&data).map(|((name, ne), d)| GgufTensor { name, ty: GgmlType::F32, ne, data: d }).collect();
    let meta = meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    gguf::write_gguf(path, meta, &tensors).unwrap();
}
