//! The LLaMA family (LLaMA 1-3, SmolLM2, TinyLlama, Qwen2): pre-norm decoder blocks with
//! RMSNorm, rotary position embeddings, grouped-query attention and a SwiGLU MLP. One
//! implementation for both backends and every weight dtype the loader produces.

mod config;
mod lora;
mod rope_layout;
mod train;

pub use config::{gguf_name, hf_name, LlamaConfig};
pub use rope_layout::{gguf_rows_from_hf, hf_rows_from_gguf};

use crate::causal_lm::{CausalLm, LogitsFor};
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::hf::HfModel;
use crate::kv_cache::KvCache;
use crate::lora::{dropout_seed, BlockAdapters, Target};
use crate::nn::Linear;
use crate::qnn::{Proj, QLinear, Table};
use lamina_tensor::quant::{GgmlType, QMatrix};
use lamina_tensor::{rope_tables, scaled_dot_product_attention, DType, Device, Tensor};

/// One decoder block's weights.
pub struct LlamaBlock {
    pub attn_norm: Tensor,
    pub q: Proj,
    pub k: Proj,
    pub v: Proj,
    pub o: Proj,
    pub ffn_norm: Tensor,
    pub gate: Proj,
    pub up: Proj,
    pub down: Proj,
    /// LoRA adapters over the projections (none unless attached or loaded).
    pub lora: BlockAdapters,
}

impl LlamaBlock {
    pub fn proj(&self, t: Target) -> &Proj {
        match t {
            Target::Q => &self.q,
            Target::K => &self.k,
            Target::V => &self.v,
            Target::O => &self.o,
            Target::Gate => &self.gate,
            Target::Up => &self.up,
            Target::Down => &self.down,
        }
    }

    pub fn proj_mut(&mut self, t: Target) -> &mut Proj {
        match t {
            Target::Q => &mut self.q,
            Target::K => &mut self.k,
            Target::V => &mut self.v,
            Target::O => &mut self.o,
            Target::Gate => &mut self.gate,
            Target::Up => &mut self.up,
            Target::Down => &mut self.down,
        }
    }
}

/// How to load weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadOptions {
    pub device: Device,
    /// Keep quantized GGUF matrices in their blocks and multiply them as they are, as
    /// llama.cpp does (on a GPU the blocks are uploaded once and decoded in the shader);
    /// otherwise dequantize everything to f32.
    pub keep_quantized: bool,
}

impl LoadOptions {
    /// Quantized weights stay quantized, on the CPU and on a GPU.
    pub fn on(device: Device) -> LoadOptions {
        LoadOptions { device, keep_quantized: true }
    }
}

/// A tensor as a checkpoint provides it.
enum Weight {
    Float(Tensor),
    Quant(QMatrix),
}

pub struct Llama {
    pub config: LlamaConfig,
    pub embed: Table, // (vocab, dim)
    pub blocks: Vec<LlamaBlock>,
    pub out_norm: Tensor,
    /// The output projection (vocab, dim); the embedding itself when tied.
    pub head: Proj,
    pub tied: bool,
    device: Device,
}

impl Llama {
    /// Load from a GGUF file onto `device` (quantized weights kept in their blocks).
    pub fn from_gguf(f: &GgufFile, device: Device) -> Result<Llama> {
        Self::from_gguf_with(f, LoadOptions::on(device))
    }

    pub fn from_gguf_with(f: &GgufFile, opts: LoadOptions) -> Result<Llama> {
        let config = LlamaConfig::from_gguf(f)?;
        let float_types = [GgmlType::F32, GgmlType::F16, GgmlType::BF16];
        Self::from_weights(config, opts.device, |name| {
            let Some(info) = f.tensor_info(name) else { return Ok(None) };
            let shape = info.shape();
            if opts.keep_quantized && shape.len() == 2 && !float_types.contains(&info.ty) {
                // Multiplied straight from the memory map: no copy of the weights.
                return Ok(Some((shape, Weight::Quant(f.qmatrix(info)?))));
            }
            Ok(Some((shape, Weight::Float(f.load(info, DType::F32)?))))
        })
    }

    /// Load a Hugging Face directory (`config.json` + safetensors) onto `device`.
    pub fn from_hf(m: &HfModel, device: Device) -> Result<Llama> {
        let config = LlamaConfig::from_hf(&m.config)?;
        Self::from_weights(config, device, |name| {
            let hf = hf_name(name);
            match m.weights.tensor_info(&hf) {
                Some(info) => Ok(Some((info.shape.clone(), Weight::Float(m.weights.load(&hf, DType::F32)?)))),
                None => Ok(None),
            }
        })
    }

    /// A model with random weights (normal with standard deviation `std`; norm weights
    /// 1 + normal(0, std)), for tests and experiments that need a LLaMA without a
    /// checkpoint. `tied` shares the embedding as the output head.
    pub fn random(config: LlamaConfig, tied: bool, std: f32, seed: u64, device: Device) -> Result<Llama> {
        let c = config.clone();
        let kv = c.n_kv_heads * c.head_dim;
        let shape_of = |name: &str| -> Option<Vec<usize>> {
            let module = name.strip_prefix("blk.").and_then(|r| r.split_once('.')).map_or(name, |(_, m)| m);
            Some(match module {
                "token_embd.weight" | "output.weight" => vec![c.vocab_size, c.dim],
                "output_norm.weight" | "attn_norm.weight" | "ffn_norm.weight" | "attn_output.bias" => vec![c.dim],
                "attn_q.weight" | "attn_output.weight" => vec![c.dim, c.dim],
                "attn_q.bias" => vec![c.dim],
                "attn_k.weight" | "attn_v.weight" => vec![kv, c.dim],
                "attn_k.bias" | "attn_v.bias" => vec![kv],
                "ffn_gate.weight" | "ffn_up.weight" => vec![c.ffn_dim, c.dim],
                "ffn_down.weight" => vec![c.dim, c.ffn_dim],
                _ => return None,
            })
        };
        Self::from_weights(config, device, |name| {
            if name == "output.weight" && tied {
                return Ok(None);
            }
            let Some(shape) = shape_of(name) else { return Ok(None) };
            let seed = crate::nn::splitmix(
                seed ^ crate::nn::splitmix(name.bytes().fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(b as u64))),
            );
            let mean = if name.contains("norm") { 1.0 } else { 0.0 };
            let t = Tensor::randn(&shape, mean, std, seed, DType::F32)?;
            Ok(Some((shape, Weight::Float(t))))
        })
    }

    /// Build from a source of weights named as in GGUF (`blk.0.attn_q.weight`); `fetch`
    /// gives a tensor's shape and values, or `None` when the checkpoint lacks it.
    fn from_weights(
        c: LlamaConfig,
        device: Device,
        fetch: impl Fn(&str) -> Result<Option<(Vec<usize>, Weight)>>,
    ) -> Result<Llama> {
        let kv = c.n_kv_heads * c.head_dim;
        let get = |name: &str, shape: &[usize]| -> Result<Weight> {
            let (found, w) = fetch(name)?.ok_or_else(|| ModelError::Missing(format!("tensor `{name}` is missing")))?;
            if found != shape {
                return Err(ModelError::Missing(format!(
                    "tensor `{name}` has shape {found:?}, the hyperparameters say {shape:?}"
                )));
            }
            Ok(w)
        };
        let float = |name: &str, shape: &[usize]| -> Result<Tensor> {
            match get(name, shape)? {
                Weight::Float(t) => Ok(t.to_device(device)?),
                Weight::Quant(q) => Ok(q.dequantize()?.to_device(device)?),
            }
        };
        let proj = |name: &str, out: usize, inp: usize, bias: bool| -> Result<Proj> {
            let bias = if bias { Some(float(&format!("{name}.bias"), &[out])?) } else { None };
            Ok(match get(&format!("{name}.weight"), &[out, inp])? {
                Weight::Float(t) => Proj::Float(Linear { weight: t.to_device(device)?, bias }),
                // Uploaded now (a no-op on the CPU), so a GPU's limits fail the load, not
                // the first token.
                Weight::Quant(q) => Proj::Quant(QLinear { weight: q.to_device(device)?, bias }),
            })
        };
        let embed = match get("token_embd.weight", &[c.vocab_size, c.dim])? {
            Weight::Float(t) => Table::Float(t.to_device(device)?),
            Weight::Quant(q) => Table::Quant(q),
        };
        let blocks = (0..c.n_layers)
            .map(|i| {
                let p = |s: &str| format!("blk.{i}.{s}");
                Ok(LlamaBlock {
                    attn_norm: float(&p("attn_norm.weight"), &[c.dim])?,
                    q: proj(&p("attn_q"), c.dim, c.dim, c.qkv_bias)?,
                    k: proj(&p("attn_k"), kv, c.dim, c.qkv_bias)?,
                    v: proj(&p("attn_v"), kv, c.dim, c.qkv_bias)?,
                    o: proj(&p("attn_output"), c.dim, c.dim, false)?,
                    ffn_norm: float(&p("ffn_norm.weight"), &[c.dim])?,
                    gate: proj(&p("ffn_gate"), c.ffn_dim, c.dim, false)?,
                    up: proj(&p("ffn_up"), c.ffn_dim, c.dim, false)?,
                    down: proj(&p("ffn_down"), c.dim, c.ffn_dim, false)?,
                    lora: BlockAdapters::default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let out_norm = float("output_norm.weight", &[c.dim])?;
        let head = match fetch("output.weight")? {
            Some(_) => Some(proj("output", c.vocab_size, c.dim, false)?),
            None => None,
        };
        let tied = head.is_none();
        // A tied head multiplies by the embedding's blocks (its lookups stay on the host).
        let head = match head {
            Some(h) => h,
            None => match embed.as_proj() {
                Proj::Quant(q) => Proj::Quant(QLinear { weight: q.weight.to_device(device)?, bias: None }),
                float => float,
            },
        };
        Ok(Llama { config: c, embed, blocks, out_norm, head, tied, device })
    }

    /// Bytes held by the weights.
    pub fn weight_bytes(&self) -> usize {
        let t = |t: &Tensor| t.numel() * t.dtype().size_in_bytes();
        let embed = match &self.embed {
            Table::Float(e) => t(e),
            Table::Quant(q) => q.n_bytes(),
        };
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| {
                [&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down].iter().map(|p| p.weight_bytes()).sum::<usize>()
                    + t(&b.attn_norm)
                    + t(&b.ffn_norm)
            })
            .sum();
        embed + blocks + t(&self.out_norm) + if self.tied { 0 } else { self.head.weight_bytes() }
    }

    /// One decoder block over x (batch * seq, dim). With a cache (inference, batch 1) the
    /// new keys and values extend it and attention covers the cached prefix; without one
    /// (training) attention is causal within each sequence. `step_seed` is `Some` while
    /// training: it seeds the adapters' dropout.
    fn block(
        &self,
        layer: usize,
        x: &Tensor,
        shape: (usize, usize),
        rope: &(Tensor, Tensor),
        pass: Pass,
    ) -> Result<Tensor> {
        let c = &self.config;
        let b = &self.blocks[layer];
        let (batch, t) = shape;
        let project = |target: Target, h: &Tensor| -> Result<Tensor> {
            let y = b.proj(target).forward(h)?;
            match b.lora.get(target) {
                Some(l) => Ok(y.add(&l.delta(h, pass.step_seed().map(|s| dropout_seed(s, layer, target)))?)?),
                None => Ok(y),
            }
        };
        // (B*T, heads * hd) -> (B, heads, T, hd)
        let heads = |y: Tensor, n: usize| -> Result<Tensor> {
            Ok(y.reshape(&[batch, t, n, c.head_dim])?.permute(&[0, 2, 1, 3])?)
        };
        let h = x.rms_norm(Some(&b.attn_norm), c.norm_eps)?;
        let q = heads(project(Target::Q, &h)?, c.n_heads)?.rope(&rope.0, &rope.1, c.rope_convention)?;
        let k = heads(project(Target::K, &h)?, c.n_kv_heads)?.rope(&rope.0, &rope.1, c.rope_convention)?;
        let v = heads(project(Target::V, &h)?, c.n_kv_heads)?;
        let (k_all, v_all) = match pass {
            Pass::Cached(cache) => cache.append(layer, &k, &v)?,
            Pass::Train { .. } => (k, v),
        };
        let a = scaled_dot_product_attention(&q, &k_all, &v_all, None, true, None)?;
        let a = a.permute(&[0, 2, 1, 3])?.reshape(&[batch * t, c.dim])?;
        let x = x.add(&project(Target::O, &a)?)?;
        let h = x.rms_norm(Some(&b.ffn_norm), c.norm_eps)?;
        let gated = project(Target::Gate, &h)?.silu()?.mul(&project(Target::Up, &h)?)?;
        Ok(x.add(&project(Target::Down, &gated)?)?)
    }
}

/// How a forward pass runs: extending a KV cache (inference) or over whole sequences
/// with gradients (training).
#[derive(Clone, Copy)]
enum Pass<'c> {
    Cached(&'c KvCache),
    Train { step_seed: Option<u64> },
}

impl Pass<'_> {
    fn step_seed(&self) -> Option<u64> {
        match self {
            Pass::Cached(_) => None,
            Pass::Train { step_seed } => *step_seed,
        }
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
        let mut x = self.embed.lookup(tokens, self.device)?;
        let (cos, sin) = rope_tables(cache.len(), t, c.head_dim, c.rope_base, DType::F32)?;
        let rope = (cos.to_device(self.device)?, sin.to_device(self.device)?);
        for i in 0..self.blocks.len() {
            x = self.block(i, &x, (1, t), &rope, Pass::Cached(cache))?;
        }
        cache.advance(t);
        if which == LogitsFor::Last {
            x = x.narrow(0, t - 1, 1)?;
        }
        let x = x.rms_norm(Some(&self.out_norm), c.norm_eps)?;
        Ok(self.head.forward(&x)?)
    }
}
