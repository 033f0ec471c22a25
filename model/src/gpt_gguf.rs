//! GPT-2 from a GGUF file (llama.cpp's `gpt2` architecture): tensor names mapped onto
//! `Gpt`'s GPT-2 layout.

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::gpt::{Block, CausalSelfAttention, Gpt, GptConfig, Mlp};
use crate::nn::{Embedding, LayerNorm, Linear};
use lamina_tensor::{DType, Device, Tensor};

impl Gpt {
    /// Load a GPT-2 GGUF onto `device`, weights as f32.
    pub fn from_gguf(f: &GgufFile, device: Device) -> Result<Gpt> {
        let arch = f.architecture()?;
        if arch != "gpt2" {
            return Err(ModelError::Unsupported(format!("architecture `{arch}` is not GPT-2")));
        }
        let size = |k: &str| -> Result<usize> {
            let v = f.get_u64(&format!("gpt2.{k}"))?;
            if v == 0 || v > 1 << 24 {
                return Err(ModelError::Unsupported(format!("gpt2.{k} = {v} is outside 1..=2^24")));
            }
            Ok(v as usize)
        };
        let (c, n_head) = (size("embedding_length")?, size("attention.head_count")?);
        let vocab =
            f.tensor_info("token_embd.weight").map(|t| t.shape()[0]).ok_or_else(|| missing("token_embd.weight"))?;
        let cfg = GptConfig {
            vocab,
            ctx: size("context_length")?,
            n_layer: size("block_count")?,
            n_head,
            n_embd: c,
            dropout: 0.0,
        };
        cfg.validate()?;
        let ffn = size("feed_forward_length").unwrap_or(4 * c);
        let eps = crate::error::positive(
            "gpt2.attention.layer_norm_epsilon",
            f.get_f64("gpt2.attention.layer_norm_epsilon").unwrap_or(1e-5),
        )?;
        if f.tensor_info("output.weight").is_some() {
            return Err(ModelError::Unsupported("GPT-2 with an output head separate from the embedding".into()));
        }
        let load = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let info = f.tensor_info(name).ok_or_else(|| missing(name))?;
            if info.shape() != shape {
                return Err(ModelError::Missing(format!(
                    "tensor `{name}` has shape {:?}, the hyperparameters say {shape:?}",
                    info.shape()
                )));
            }
            Ok(f.load(info, DType::F32)?.to_device(device)?)
        };
        let linear = |name: &str, out: usize, inp: usize| -> Result<Linear> {
            Ok(Linear {
                weight: load(&format!("{name}.weight"), &[out, inp])?,
                bias: Some(load(&format!("{name}.bias"), &[out])?),
            })
        };
        let norm = |name: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: load(&format!("{name}.weight"), &[c])?,
                bias: load(&format!("{name}.bias"), &[c])?,
                eps,
            })
        };
        let h = (0..cfg.n_layer)
            .map(|i| {
                let p = |s: &str| format!("blk.{i}.{s}");
                Ok(Block {
                    ln_1: norm(&p("attn_norm"))?,
                    attn: CausalSelfAttention {
                        c_attn: linear(&p("attn_qkv"), 3 * c, c)?,
                        c_proj: linear(&p("attn_output"), c, c)?,
                        n_head,
                    },
                    ln_2: norm(&p("ffn_norm"))?,
                    mlp: Mlp { c_fc: linear(&p("ffn_up"), ffn, c)?, c_proj: linear(&p("ffn_down"), c, ffn)? },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let wte = Embedding { weight: load("token_embd.weight", &[vocab, c])? };
        let wpe = Embedding { weight: load("position_embd.weight", &[cfg.ctx, c])? };
        Ok(Gpt::from_parts(cfg, wte, wpe, h, norm("output_norm")?))
    }
}

fn missing(name: &str) -> ModelError {
    ModelError::Missing(format!("tensor `{name}` is missing"))
}
