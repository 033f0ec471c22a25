//! A Hugging Face LLaMA directory read as a GGUF model, for the quantizer: what llama.cpp's
//! `convert_hf_to_gguf.py` writes for `LlamaForCausalLM`, without the intermediate file.
//!
//! - metadata: `general.*`, the `llama.*` hyperparameters from `config.json`, and the
//!   tokenizer (`tokenizer.rs`);
//! - tensors: HF names mapped to GGUF's (`llama::gguf_name`), dimensions reversed (GGUF's
//!   `ne[0]` is the row length), f32/f16/bf16 kept as stored (the quantizer converts);
//! - q/k projections permuted back: `transformers` rotates split halves of each head,
//!   GGUF LLaMA files are laid out for interleaved pairs, so row `2i + s` of a head in
//!   GGUF is row `s * head_dim / 2 + i` of the same head in the checkpoint.
//!
//! Anything else (another architecture, RoPE scaling, biases, other dtypes, a missing or
//! unexpected tensor, a tokenizer that is not byte-level BPE) is an error that says so.

mod tokenizer;

use crate::error::{ModelError, Result};
use crate::gguf::MetaValue;
use crate::hf::HfModel;
use crate::llama::{gguf_name, hf_name, LlamaConfig};
use crate::quantize::{Source, SourceTensor};
use crate::safetensors::SafeDtype;
use lamina_tensor::quant::GgmlType;
use std::borrow::Cow;
use std::path::Path;

pub use tokenizer::tokenizer_metadata;

/// One output tensor: where it comes from and whether its rows are permuted.
struct Plan {
    hf: String,
    /// Heads to un-split (q: query heads, k: key/value heads).
    permute_heads: Option<usize>,
}

/// A Hugging Face LLaMA checkpoint presented as GGUF metadata and tensors.
pub struct HfLlamaSource {
    model: HfModel,
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<SourceTensor>,
    plans: Vec<Plan>,
}

impl HfLlamaSource {
    /// Open `dir` and check that it converts.
    pub fn open(dir: impl AsRef<Path>) -> Result<HfLlamaSource> {
        let model = HfModel::open(dir)?;
        let h = &model.config;
        let arch = h.model_type.as_deref().unwrap_or("");
        if arch != "llama" {
            return Err(ModelError::Unsupported(format!(
                "converting Hugging Face model_type `{arch}` (architectures {:?}); only LLaMA (`llama`) is supported",
                h.architectures
            )));
        }
        let unsupported = |what: &str| Err(ModelError::Unsupported(format!("{}: {what}", model.dir.display())));
        if model.config_json.get("rope_scaling").is_some_and(|v| !v.is_null()) {
            return unsupported("RoPE scaling (config.json rope_scaling) does not convert yet");
        }
        if h.attention_bias == Some(true) || model.config_json.get("mlp_bias").and_then(|v| v.as_bool()) == Some(true) {
            return unsupported("LLaMA with biases (attention_bias / mlp_bias) does not convert yet");
        }
        let c = LlamaConfig::from_hf(h)?;
        let (tensors, plans) = tensor_table(&model, &c)?;
        let mut metadata = hyperparameters(&model, &c);
        metadata.extend(tokenizer_metadata(&model, c.vocab_size)?);
        Ok(HfLlamaSource { model, metadata, tensors, plans })
    }
}

/// `general.*` and `llama.*` keys, in the converter's order.
fn hyperparameters(m: &HfModel, c: &LlamaConfig) -> Vec<(String, MetaValue)> {
    let name = m.dir.canonicalize().ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    let s = |v: &str| MetaValue::String(v.to_string());
    let u = |v: usize| MetaValue::U32(v as u32);
    let mut meta = vec![("general.architecture".to_string(), s("llama")), ("general.type".to_string(), s("model"))];
    if let Some(n) = name {
        meta.push(("general.name".into(), MetaValue::String(n)));
    }
    meta.extend([
        ("llama.block_count".to_string(), u(c.n_layers)),
        ("llama.context_length".to_string(), u(c.context_length)),
        ("llama.embedding_length".to_string(), u(c.dim)),
        ("llama.feed_forward_length".to_string(), u(c.ffn_dim)),
        ("llama.attention.head_count".to_string(), u(c.n_heads)),
        ("llama.attention.head_count_kv".to_string(), u(c.n_kv_heads)),
        ("llama.rope.freq_base".to_string(), MetaValue::F32(c.rope_base)),
        ("llama.attention.layer_norm_rms_epsilon".to_string(), MetaValue::F32(c.norm_eps)),
        ("llama.vocab_size".to_string(), u(c.vocab_size)),
        ("llama.rope.dimension_count".to_string(), u(c.head_dim)),
    ]);
    meta
}

/// The GGUF tensors in the converter's layer order, each checked against the config.
fn tensor_table(m: &HfModel, c: &LlamaConfig) -> Result<(Vec<SourceTensor>, Vec<Plan>)> {
    let kv = c.n_kv_heads * c.head_dim;
    let mut want: Vec<(String, Vec<usize>)> = vec![("token_embd.weight".into(), vec![c.vocab_size, c.dim])];
    for i in 0..c.n_layers {
        let p = |s: &str| format!("blk.{i}.{s}.weight");
        want.extend([
            (p("attn_norm"), vec![c.dim]),
            (p("attn_q"), vec![c.dim, c.dim]),
            (p("attn_k"), vec![kv, c.dim]),
            (p("attn_v"), vec![kv, c.dim]),
            (p("attn_output"), vec![c.dim, c.dim]),
            (p("ffn_norm"), vec![c.dim]),
            (p("ffn_gate"), vec![c.ffn_dim, c.dim]),
            (p("ffn_up"), vec![c.ffn_dim, c.dim]),
            (p("ffn_down"), vec![c.dim, c.ffn_dim]),
        ]);
    }
    want.push(("output_norm.weight".into(), vec![c.dim]));
    let has_head = m.weights.tensor_info("lm_head.weight").is_some();
    if has_head || m.config.tie_word_embeddings == Some(false) {
        want.push(("output.weight".into(), vec![c.vocab_size, c.dim]));
    }
    // Every checkpoint tensor must be one of those (or RoPE's cached frequencies, which
    // the converter drops too).
    for t in m.weights.tensors() {
        let known = gguf_name(&t.name).is_some_and(|g| want.iter().any(|(w, _)| *w == g));
        if !known && !t.name.ends_with("rotary_emb.inv_freq") {
            return Err(ModelError::Unsupported(format!(
                "tensor `{}` ({:?}) is not part of a LLaMA checkpoint as Lamina converts it",
                t.name, t.shape
            )));
        }
    }
    let mut tensors = Vec::with_capacity(want.len());
    let mut plans = Vec::with_capacity(want.len());
    for (name, shape) in want {
        let hf = hf_name(&name);
        let info = m
            .weights
            .tensor_info(&hf)
            .ok_or_else(|| ModelError::Missing(format!("tensor `{hf}` (GGUF `{name}`) is not in the checkpoint")))?;
        if info.shape != shape {
            return Err(ModelError::Missing(format!(
                "tensor `{hf}` has shape {:?}, config.json says {shape:?}",
                info.shape
            )));
        }
        let ty = match info.dtype {
            SafeDtype::F32 => GgmlType::F32,
            SafeDtype::F16 => GgmlType::F16,
            SafeDtype::BF16 => GgmlType::BF16,
            other => {
                return Err(ModelError::Unsupported(format!(
                    "tensor `{hf}` has dtype {other}; F32, F16 and BF16 checkpoints convert"
                )))
            }
        };
        let permute_heads = if name.ends_with("attn_q.weight") {
            Some(c.n_heads)
        } else if name.ends_with("attn_k.weight") {
            Some(c.n_kv_heads)
        } else {
            None
        };
        tensors.push(SourceTensor { name, ne: shape.iter().rev().map(|&d| d as u64).collect(), ty });
        plans.push(Plan { hf, permute_heads });
    }
    Ok((tensors, plans))
}

/// Rows of a (heads * head_dim, cols) matrix of `row_bytes`-byte rows, from the
/// split-halves order of each head to the interleaved one: `llama::gguf_rows_from_hf` on
/// the raw bytes, so f16/bf16 rows move without being decoded.
fn interleave_heads(src: &[u8], heads: usize, row_bytes: usize) -> Vec<u8> {
    let rows = src.len() / row_bytes;
    let hd = rows / heads;
    let mut out = vec![0u8; src.len()];
    for (r, dst) in out.chunks_exact_mut(row_bytes).enumerate() {
        let (h, j) = (r / hd, r % hd);
        let from = h * hd + (j % 2) * (hd / 2) + j / 2;
        dst.copy_from_slice(&src[from * row_bytes..(from + 1) * row_bytes]);
    }
    out
}

impl Source for HfLlamaSource {
    fn metadata(&self) -> Vec<(String, MetaValue)> {
        self.metadata.clone()
    }

    fn tensors(&self) -> Vec<SourceTensor> {
        self.tensors.clone()
    }

    fn tensor_bytes(&self, i: usize) -> Result<Cow<'_, [u8]>> {
        let plan = &self.plans[i];
        let (_, bytes) = self
            .model
            .weights
            .tensor_bytes(&plan.hf)
            .ok_or_else(|| ModelError::Missing(format!("tensor `{}` is not in the checkpoint", plan.hf)))?;
        Ok(match plan.permute_heads {
            None => Cow::Borrowed(bytes),
            Some(heads) => {
                let t = &self.tensors[i];
                let row_bytes = t.ty.row_bytes(t.ne[0]).expect("float rows") as usize;
                Cow::Owned(interleave_heads(bytes, heads, row_bytes))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::interleave_heads;

    #[test]
    fn heads_are_interleaved() {
        // Two heads of 4 rows (1 byte each): halves [0 1 | 2 3] -> pairs (0 2) (1 3).
        let src = [0u8, 1, 2, 3, 10, 11, 12, 13];
        assert_eq!(interleave_heads(&src, 2, 1), vec![0, 2, 1, 3, 10, 12, 11, 13]);
        // Rows of 2 bytes move whole.
        let src = [0u8, 0, 1, 1, 2, 2, 3, 3];
        assert_eq!(interleave_heads(&src, 1, 2), vec![0, 0, 2, 2, 1, 1, 3, 3]);
    }
}
