//! The LLaMA-shaped decoder every decoder family but GPT-2 runs as (LLaMA, SmolLM2,
//! TinyLlama, Mistral, Qwen2/3, Phi-3, Gemma 2/3): pre-norm blocks with RMSNorm, rotary
//! position embeddings, grouped-query attention and a gated MLP, plus the options by
//! which the families differ (`LlamaConfig`; `crate::arch` says which family has which).
//! One implementation for both backends and every weight dtype the loader produces.

mod adapters;
mod block;
mod bottleneck;
mod config;
mod ia3;
pub(crate) mod load;
mod lora;
mod prefix;
mod prompt;
mod rope_layout;
mod train;

pub use adapters::AdapterKind;
pub use config::{gguf_name, hf_name, Activation, LlamaConfig};
pub(crate) use config::{gguf_name_with, hf_name_with};
pub use rope_layout::{gguf_rows_from_hf, hf_rows_from_gguf};
pub use train::IGNORE;

use crate::bottleneck::BottleneckBlock;
use crate::causal_lm::{CausalLm, LogitsFor, SeqStep};
use crate::error::{ModelError, Result};
use crate::ia3::Ia3Block;
use crate::kv_cache::KvCache;
use crate::lora::{BlockAdapters, Target};
use crate::prefix::Prefix;
use crate::prompt::SoftPrompt;
use crate::qnn::{Proj, Table};
use lamina_tensor::{DType, Device, Tensor};

/// One decoder block's weights.
pub struct LlamaBlock {
    pub attn_norm: Tensor,
    /// The projections, by target: Q, K, V (or the fused Qkv), O, Gate, Up (or the fused
    /// GateUp), Down.
    projs: [Option<Proj>; Target::ALL.len()],
    /// Per-head RMSNorm weights of q and k (head_dim), where the family has them.
    pub q_norm: Option<Tensor>,
    pub k_norm: Option<Tensor>,
    /// Norm of the attention output before the residual add (Gemma).
    pub post_attn_norm: Option<Tensor>,
    pub ffn_norm: Tensor,
    /// Norm of the MLP output before the residual add (Gemma).
    pub post_ffn_norm: Option<Tensor>,
    /// LoRA adapters over the projections (none unless attached or loaded).
    pub lora: BlockAdapters,
    /// IA³ vectors scaling the projections' inputs or outputs (none unless attached or loaded).
    pub ia3: Ia3Block,
    /// Bottleneck adapters on the attention's and the MLP's outputs (none unless attached or loaded).
    pub bottleneck: BottleneckBlock,
}

impl LlamaBlock {
    /// The projection `t`, if this block has it.
    pub fn proj(&self, t: Target) -> Option<&Proj> {
        self.projs[t as usize].as_ref()
    }

    pub fn proj_mut(&mut self, t: Target) -> Option<&mut Proj> {
        self.projs[t as usize].as_mut()
    }

    /// The projections this block has, in `Target::ALL`'s order.
    pub fn targets(&self) -> impl Iterator<Item = Target> + '_ {
        Target::ALL.into_iter().filter(|&t| self.proj(t).is_some())
    }

    /// Every norm weight, with its GGUF module name.
    fn norms_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut Tensor)> {
        [
            ("attn_norm", Some(&mut self.attn_norm)),
            ("attn_q_norm", self.q_norm.as_mut()),
            ("attn_k_norm", self.k_norm.as_mut()),
            ("post_attention_norm", self.post_attn_norm.as_mut()),
            ("ffn_norm", Some(&mut self.ffn_norm)),
            ("post_ffw_norm", self.post_ffn_norm.as_mut()),
        ]
        .into_iter()
        .filter_map(|(n, t)| Some((n, t?)))
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

pub struct Llama {
    pub config: LlamaConfig,
    pub embed: Table, // (vocab, dim)
    pub blocks: Vec<LlamaBlock>,
    pub out_norm: Tensor,
    /// The output projection (vocab, dim); the embedding itself when tied.
    pub head: Proj,
    pub tied: bool,
    /// Virtual tokens put before every sequence (prompt tuning), if attached or loaded.
    pub prompt: Option<SoftPrompt>,
    /// Keys and values put before every sequence's in each layer (prefix tuning), if
    /// attached or loaded.
    pub prefix: Option<Prefix>,
    device: Device,
}

impl Llama {
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
                let projs: usize = b.targets().filter_map(|p| b.proj(p)).map(|p| p.weight_bytes()).sum();
                let norms = [&b.q_norm, &b.k_norm, &b.post_attn_norm, &b.post_ffn_norm];
                projs + t(&b.attn_norm) + t(&b.ffn_norm) + norms.iter().filter_map(|n| n.as_ref()).map(t).sum::<usize>()
            })
            .sum();
        embed + blocks + t(&self.out_norm) + if self.tied { 0 } else { self.head.weight_bytes() }
    }

    /// The adapter targets `requested` means on this model: each as it is where the
    /// blocks have it, else its counterparts (q on Phi-3 is its fused qkv; qkv on LLaMA is
    /// q, k and v). Deduplicated, in `Target::ALL`'s order; an error if none remain.
    pub fn lora_targets(&self, requested: &[Target]) -> Result<Vec<Target>> {
        let Some(b) = self.blocks.first() else {
            return Err(ModelError::Invalid("the model has no blocks to adapt".into()));
        };
        let mut out: Vec<Target> = requested
            .iter()
            .flat_map(|&t| if b.proj(t).is_some() { vec![t] } else { t.counterparts().to_vec() })
            .filter(|&t| b.proj(t).is_some())
            .collect();
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(ModelError::Invalid(format!(
                "none of the LoRA targets {:?} is a projection of this {} model",
                requested.iter().map(|t| t.hf_module()).collect::<Vec<_>>(),
                self.config.arch
            )));
        }
        Ok(out)
    }
}

/// How a forward pass runs: extending KV caches (inference: x's rows are the new tokens of
/// one or more sequences in turn, each with its cache and its own context, which says how
/// many rows are its) or over whole sequences with gradients (training; `prefix`: the
/// pass's prefixes (K, width) when prefix tuning, which the cached pass finds in the caches).
#[derive(Clone, Copy)]
enum Pass<'c> {
    Cached(&'c [(&'c KvCache, &'c block::PassContext)]),
    Train { step_seed: Option<u64>, prefix: Option<&'c Tensor> },
}

impl Pass<'_> {
    fn step_seed(&self) -> Option<u64> {
        match self {
            Pass::Cached(_) => None,
            Pass::Train { step_seed, .. } => *step_seed,
        }
    }
}

impl CausalLm for Llama {
    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    /// The model's context, less the virtual tokens of a soft prompt and the prefixes of
    /// prefix tuning (which take the first positions of every sequence).
    fn context_length(&self) -> usize {
        self.config.context_length.saturating_sub(self.pinned_positions())
    }

    fn device(&self) -> Device {
        self.device
    }

    fn new_cache(&self, capacity: usize) -> Result<KvCache> {
        let c = &self.config;
        let capacity = (capacity + self.pinned_positions()).min(c.context_length);
        let mut cache = KvCache::new(c.n_layers, c.n_kv_heads, c.head_dim, capacity, DType::F32, self.device)?;
        self.fill_prefix(&mut cache)?;
        lamina_tensor::cpu::parallel::install(|| self.fill_prompt(&mut cache))?;
        Ok(cache)
    }

    fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: LogitsFor) -> Result<Tensor> {
        self.forward_batch(&mut [SeqStep { tokens, cache }], which)
    }

    fn forward_batch(&self, seqs: &mut [SeqStep<'_>], which: LogitsFor) -> Result<Tensor> {
        // The whole pass runs on the CPU pool's threads: each kernel then starts its work
        // in place instead of handing it to the pool and waiting (~20 µs per op, which
        // adds up to milliseconds per decoded token).
        lamina_tensor::cpu::parallel::install(|| self.logits(&self.final_hidden(seqs, which)?))
    }

    fn hidden_states(&self, tokens: &[u32]) -> Result<Tensor> {
        let mut cache = self.new_cache(tokens.len())?;
        let seqs = &mut [SeqStep { tokens, cache: &mut cache }];
        lamina_tensor::cpu::parallel::install(|| self.final_hidden(seqs, LogitsFor::All))
    }
}

impl Llama {
    /// Positions every sequence's cache starts with: prefixes, then a soft prompt's
    /// virtual tokens.
    fn pinned_positions(&self) -> usize {
        self.prefix_tokens() + self.virtual_tokens()
    }

    /// The decoder over every sequence's new tokens (rows in sequence order), each
    /// extending its own cache; returns the output norm of the rows `which` asks for.
    /// The caches advance only when the whole pass succeeded.
    fn final_hidden(&self, seqs: &mut [SeqStep<'_>], which: LogitsFor) -> Result<Tensor> {
        let c = &self.config;
        let mut tokens = Vec::new();
        let mut contexts = Vec::with_capacity(seqs.len());
        for s in seqs.iter() {
            if s.tokens.is_empty() {
                return Err(ModelError::Invalid("forward needs at least one token".into()));
            }
            if let Some(&bad) = s.tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
                return Err(ModelError::Invalid(format!(
                    "token id {bad} is outside the vocabulary of {}",
                    c.vocab_size
                )));
            }
            s.cache.check_room(s.tokens.len())?;
            tokens.extend_from_slice(s.tokens);
            contexts.push(block::PassContext::new(c, s.cache.position(), s.tokens.len(), self.device)?);
        }
        let t = tokens.len();
        // Several sequences: RoPE tables joined row by row, each starting where its cache ends.
        let joined = if contexts.len() > 1 { Some(block::PassContext::joined(&contexts)?) } else { None };
        let ctx = joined.as_ref().unwrap_or(&contexts[0]);
        let mut x = self.embed_tokens(&tokens)?;
        {
            let segments: Vec<(&KvCache, &block::PassContext)> =
                seqs.iter().zip(&contexts).map(|(s, ctx)| (&*s.cache, ctx)).collect();
            for i in 0..self.blocks.len() {
                x = self.block(i, &x, (1, t), ctx, Pass::Cached(&segments))?;
            }
        }
        for s in seqs.iter_mut() {
            s.cache.advance(s.tokens.len());
        }
        if which == LogitsFor::Last {
            x = if seqs.len() == 1 {
                x.narrow(0, t - 1, 1)?
            } else {
                // Each sequence's last row (the index list is read on the host).
                let ends: Vec<i32> = seqs
                    .iter()
                    .scan(0i32, |end, s| {
                        *end += s.tokens.len() as i32;
                        Some(*end - 1)
                    })
                    .collect();
                x.index_select(0, &Tensor::from_vec(ends, &[seqs.len()])?)?
            };
        }
        Ok(x.rms_norm(Some(&self.out_norm), c.norm_eps)?)
    }

    /// The embeddings of `tokens` (len, dim), scaled where the family scales them.
    fn embed_tokens(&self, tokens: &[u32]) -> Result<Tensor> {
        let x = self.embed.lookup(tokens, self.device)?;
        Ok(if self.config.embed_scale { x.scale((self.config.dim as f32).sqrt())? } else { x })
    }

    /// The output head over normed hidden states, soft-capped where the family caps.
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.head.forward(x)?;
        Ok(match self.config.final_softcap {
            Some(cap) => block::softcap(&y, cap)?,
            None => y,
        })
    }
}
