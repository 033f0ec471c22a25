//! The LLaMA family (LLaMA 1-3, SmolLM2, TinyLlama, Qwen2): pre-norm decoder blocks with
//! RMSNorm, rotary position embeddings, grouped-query attention and a SwiGLU MLP. One
//! implementation for both backends and every weight dtype the loader produces.

mod config;

pub use config::{hf_name, LlamaConfig};

use crate::causal_lm::{CausalLm, LogitsFor};
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::hf::HfModel;
use crate::kv_cache::KvCache;
use crate::nn::Linear;
use lamina_tensor::{rope_tables, scaled_dot_product_attention, DType, Device, Tensor};

/// One decoder block's weights.
pub struct LlamaBlock {
    pub attn_norm: Tensor,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub ffn_norm: Tensor,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

pub struct Llama {
    pub config: LlamaConfig,
    pub embed: Tensor, // (vocab, dim)
    pub blocks: Vec<LlamaBlock>,
    pub out_norm: Tensor,
    /// The output projection (vocab, dim); the embedding itself when tied.
    pub head: Linear,
    pub tied: bool,
    device: Device,
}

impl Llama {
    /// Load from a GGUF file onto `device`, weights dequantized to f32.
    pub fn from_gguf(f: &GgufFile, device: Device) -> Result<Llama> {
        let config = LlamaConfig::from_gguf(f)?;
        Self::from_weights(config, device, |name| match f.tensor_info(name) {
            Some(info) => Ok(Some((info.shape(), f.load(info, DType::F32)?))),
            None => Ok(None),
        })
    }

    /// Load a Hugging Face directory (`config.json` + safetensors) onto `device`.
    pub fn from_hf(m: &HfModel, device: Device) -> Result<Llama> {
        let config = LlamaConfig::from_hf(&m.config)?;
        Self::from_weights(config, device, |name| {
            let hf = hf_name(name);
            match m.weights.tensor_info(&hf) {
                Some(info) => Ok(Some((info.shape.clone(), m.weights.load(&hf, DType::F32)?))),
                None => Ok(None),
            }
        })
    }

    /// Build from a source of weights named as in GGUF (`blk.0.attn_q.weight`); `fetch`
    /// gives a tensor's shape and values, or `None` when the checkpoint lacks it.
    fn from_weights(
        c: LlamaConfig,
        device: Device,
        fetch: impl Fn(&str) -> Result<Option<(Vec<usize>, Tensor)>>,
    ) -> Result<Llama> {
        let kv = c.n_kv_heads * c.head_dim;
        let load = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let (found, t) = fetch(name)?.ok_or_else(|| ModelError::Missing(format!("tensor `{name}` is missing")))?;
            if found != shape {
                return Err(ModelError::Missing(format!(
                    "tensor `{name}` has shape {found:?}, the hyperparameters say {shape:?}"
                )));
            }
            Ok(t.to_device(device)?)
        };
        let linear = |name: &str, out: usize, inp: usize, bias: bool| -> Result<Linear> {
            let weight = load(&format!("{name}.weight"), &[out, inp])?;
            let bias = if bias { Some(load(&format!("{name}.bias"), &[out])?) } else { None };
            Ok(Linear { weight, bias })
        };
        let embed = load("token_embd.weight", &[c.vocab_size, c.dim])?;
        let blocks = (0..c.n_layers)
            .map(|i| {
                let p = |s: &str| format!("blk.{i}.{s}");
                Ok(LlamaBlock {
                    attn_norm: load(&p("attn_norm.weight"), &[c.dim])?,
                    q: linear(&p("attn_q"), c.dim, c.dim, c.qkv_bias)?,
                    k: linear(&p("attn_k"), kv, c.dim, c.qkv_bias)?,
                    v: linear(&p("attn_v"), kv, c.dim, c.qkv_bias)?,
                    o: linear(&p("attn_output"), c.dim, c.dim, false)?,
                    ffn_norm: load(&p("ffn_norm.weight"), &[c.dim])?,
                    gate: linear(&p("ffn_gate"), c.ffn_dim, c.dim, false)?,
                    up: linear(&p("ffn_up"), c.ffn_dim, c.dim, false)?,
                    down: linear(&p("ffn_down"), c.dim, c.ffn_dim, false)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let out_norm = load("output_norm.weight", &[c.dim])?;
        let head = match fetch("output.weight")? {
            Some(_) => Some(linear("output", c.vocab_size, c.dim, false)?),
            None => None,
        };
        let tied = head.is_none();
        let head = head.unwrap_or_else(|| Linear { weight: embed.clone(), bias: None });
        Ok(Llama { config: c, embed, blocks, out_norm, head, tied, device })
    }

    fn block(
        &self,
        b: &LlamaBlock,
        layer: usize,
        x: &Tensor,
        rope: &(Tensor, Tensor),
        cache: &KvCache,
    ) -> Result<Tensor> {
        let c = &self.config;
        let t = x.shape()[0];
        // (T, heads * hd) -> (1, heads, T, hd)
        let heads =
            |y: Tensor, n: usize| -> Result<Tensor> { Ok(y.reshape(&[1, t, n, c.head_dim])?.permute(&[0, 2, 1, 3])?) };
        let h = x.rms_norm(Some(&b.attn_norm), c.norm_eps)?;
        let q = heads(b.q.forward(&h)?, c.n_heads)?.rope(&rope.0, &rope.1, c.rope_convention)?;
        let k = heads(b.k.forward(&h)?, c.n_kv_heads)?.rope(&rope.0, &rope.1, c.rope_convention)?;
        let v = heads(b.v.forward(&h)?, c.n_kv_heads)?;
        let (k_all, v_all) = cache.append(layer, &k, &v)?;
        let a = scaled_dot_product_attention(&q, &k_all, &v_all, None, true, None)?;
        let a = a.permute(&[0, 2, 1, 3])?.reshape(&[t, c.dim])?;
        let x = x.add(&b.o.forward(&a)?)?;
        let h = x.rms_norm(Some(&b.ffn_norm), c.norm_eps)?;
        let gated = b.gate.forward(&h)?.silu()?.mul(&b.up.forward(&h)?)?;
        Ok(x.add(&b.down.forward(&gated)?)?)
    }
}

impl CausalLm for Llama {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn context_length(&self) -> usize {
        self.config.context_length
    }

    fn device(&self) -> Device {
        self.device
    }

    fn new_cache(&self, capacity: usize) -> Result<KvCache> {
        let c = &self.config;
        KvCache::new(c.n_layers, c.n_kv_heads, c.head_dim, capacity.min(c.context_length), DType::F32, self.device)
    }

    fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: LogitsFor) -> Result<Tensor> {
        // The whole pass runs on the CPU pool's threads: each kernel then starts its work
        // in place instead of handing it to the pool and waiting (~20 µs per op, which
        // adds up to milliseconds per decoded token).
        lamina_tensor::cpu::parallel::install(|| self.forward_inner(tokens, cache, which))
    }
}

impl Llama {
    fn forward_inner(&self, tokens: &[u32], cache: &mut KvCache, which: LogitsFor) -> Result<Tensor> {
        let c = &self.config;
        if tokens.is_empty() {
            return Err(ModelError::Invalid("forward needs at least one token".into()));
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(ModelError::Invalid(format!("token id {bad} is outside the vocabulary of {}", c.vocab_size)));
        }
        cache.check_room(tokens.len())?;
        let t = tokens.len();
        let ids = Tensor::from_slice(tokens, &[t])?.to_device(self.device)?;
        let mut x = self.embed.embedding(&ids)?;
        let (cos, sin) = rope_tables(cache.len(), t, c.head_dim, c.rope_base, DType::F32)?;
        let rope = (cos.to_device(self.device)?, sin.to_device(self.device)?);
        for (i, b) in self.blocks.iter().enumerate() {
            x = self.block(b, i, &x, &rope, cache)?;
        }
        cache.advance(t);
        if which == LogitsFor::Last {
            x = x.narrow(0, t - 1, 1)?;
        }
        let x = x.rms_norm(Some(&self.out_norm), c.norm_eps)?;
        Ok(self.head.forward(&x)?)
    }
}
