//! Building a decoder from a checkpoint: GGUF (quantized matrices kept in their blocks, or
//! dequantized), a Hugging Face directory (through the family's tensor names), or random
//! weights. Every tensor is named as in GGUF and checked against the shape the config
//! implies; the error names the tensor, its shape and the architecture.

use super::{Llama, LlamaBlock, LlamaConfig, LoadOptions};
use crate::arch::{self, Decoder};
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::hf::HfModel;
use crate::lora::{BlockAdapters, Target};
use crate::nn::{splitmix, Linear};
use crate::qnn::{Proj, QLinear, Table};
use lamina_tensor::quant::{GgmlType, QMatrix};
use lamina_tensor::{DType, Device, Tensor};

/// A tensor as a checkpoint provides it.
pub(crate) enum Weight {
    Float(Tensor),
    Quant(QMatrix),
}

/// A tensor found in a checkpoint: its shape and values.
pub(crate) type Found = Option<(Vec<usize>, Weight)>;

/// A source of weights by GGUF name: the shape found and the values, or `None` when the
/// checkpoint lacks the tensor. It is told the shape the config expects.
type Fetch<'a> = dyn Fn(&str, &[usize]) -> Result<Found> + 'a;

/// A GGUF tensor name as the checkpoint spells it, for errors.
type NameIn<'a> = dyn Fn(&str) -> String + 'a;

fn same_name(name: &str) -> String {
    name.to_string()
}

/// A GGUF tensor by name: a quantized matrix as its blocks (multiplied straight from the
/// memory map, no copy) when `keep_quantized`, anything else as f32.
pub(crate) fn gguf_weight(f: &GgufFile, name: &str, keep_quantized: bool) -> Result<Found> {
    let Some(info) = f.tensor_info(name) else { return Ok(None) };
    let shape = info.shape();
    let float = [GgmlType::F32, GgmlType::F16, GgmlType::BF16];
    if keep_quantized && shape.len() == 2 && !float.contains(&info.ty) {
        return Ok(Some((shape, Weight::Quant(f.qmatrix(info)?))));
    }
    Ok(Some((shape, Weight::Float(f.load(info, DType::F32)?))))
}

impl Llama {
    /// Load from a GGUF file onto `device` (quantized weights kept in their blocks).
    pub fn from_gguf(f: &GgufFile, device: Device) -> Result<Llama> {
        Self::from_gguf_with(f, LoadOptions::on(device))
    }

    pub fn from_gguf_with(f: &GgufFile, opts: LoadOptions) -> Result<Llama> {
        let config = arch::decoder_for_gguf(f)?.config_from_gguf(f)?;
        Self::from_weights(config, opts.device, &|name, _| gguf_weight(f, name, opts.keep_quantized), &same_name)
    }

    /// Load a Hugging Face directory (`config.json` + safetensors) onto `device`.
    pub fn from_hf(m: &HfModel, device: Device) -> Result<Llama> {
        let family: &Decoder = arch::decoder_for_hf(&m.config)?;
        let config = family.config_from_hf(&m.config)?;
        let fetch = &|name: &str, _: &[usize]| {
            let hf = family.hf_name(name);
            let Some(info) = m.weights.tensor_info(&hf) else { return Ok(None) };
            let mut t = m.weights.load(&hf, DType::F32)?;
            if family.hf_norm_shift != 0.0 && name.ends_with("norm.weight") {
                t = t.affine(1.0, family.hf_norm_shift)?;
            }
            Ok(Some((info.shape.clone(), Weight::Float(t))))
        };
        Self::from_weights(config, device, fetch, &|name| family.hf_name(name))
    }

    /// A model with random weights (normal with standard deviation `std`; norm weights
    /// 1 + normal(0, std)), for tests and experiments that need a decoder without a
    /// checkpoint. `tied` shares the embedding as the output head.
    pub fn random(config: LlamaConfig, tied: bool, std: f32, seed: u64, device: Device) -> Result<Llama> {
        let fetch = &|name: &str, shape: &[usize]| {
            if name == "output.weight" && tied {
                return Ok(None);
            }
            let h = name.bytes().fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(b as u64));
            let mean = if name.contains("norm") { 1.0 } else { 0.0 };
            let t = Tensor::randn(shape, mean, std, splitmix(seed ^ splitmix(h)), DType::F32)?;
            Ok(Some((shape.to_vec(), Weight::Float(t))))
        };
        Self::from_weights(config, device, fetch, &same_name)
    }

    fn from_weights(c: LlamaConfig, device: Device, fetch: &Fetch, name_in: &NameIn) -> Result<Llama> {
        let get = |name: &str, shape: &[usize]| -> Result<Weight> {
            let (found, w) = fetch(name, shape)?
                .ok_or_else(|| ModelError::Missing(format!("{}: tensor `{}` is missing", c.arch, name_in(name))))?;
            if found != shape {
                return Err(ModelError::Missing(format!(
                    "{}: tensor `{}` has shape {found:?}, the hyperparameters say {shape:?}",
                    c.arch,
                    name_in(name)
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
        let blocks = (0..c.n_layers).map(|i| block(&c, i, &proj, &float)).collect::<Result<Vec<_>>>()?;
        let out_norm = float("output_norm.weight", &[c.dim])?;
        let head = match fetch("output.weight", &[c.vocab_size, c.dim])? {
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
        Ok(Llama { config: c, embed, blocks, out_norm, head, tied, prompt: None, prefix: None, device })
    }
}

/// Layer `i`'s weights, in the layout the config says.
fn block(
    c: &LlamaConfig,
    i: usize,
    proj: &dyn Fn(&str, usize, usize, bool) -> Result<Proj>,
    float: &dyn Fn(&str, &[usize]) -> Result<Tensor>,
) -> Result<LlamaBlock> {
    let p = |s: &str| format!("blk.{i}.{s}");
    let norm = |s: &str, n: usize| float(&format!("blk.{i}.{s}.weight"), &[n]);
    let optional_norm = |on: bool, s: &str, n: usize| if on { norm(s, n).map(Some) } else { Ok(None) };
    let (q, kv, ffn) = (c.q_dim(), c.kv_dim(), c.ffn_dim);
    let mut projs: [Option<Proj>; Target::ALL.len()] = Default::default();
    let mut set = |t: Target, p: Proj| projs[t as usize] = Some(p);
    if c.fused_qkv {
        set(Target::Qkv, proj(&p("attn_qkv"), q + 2 * kv, c.dim, c.qkv_bias)?);
    } else {
        set(Target::Q, proj(&p("attn_q"), q, c.dim, c.qkv_bias)?);
        set(Target::K, proj(&p("attn_k"), kv, c.dim, c.qkv_bias)?);
        set(Target::V, proj(&p("attn_v"), kv, c.dim, c.qkv_bias)?);
    }
    set(Target::O, proj(&p("attn_output"), c.dim, q, false)?);
    if c.fused_gate_up {
        set(Target::GateUp, proj(&p("ffn_up"), 2 * ffn, c.dim, false)?);
    } else {
        set(Target::Gate, proj(&p("ffn_gate"), ffn, c.dim, false)?);
        set(Target::Up, proj(&p("ffn_up"), ffn, c.dim, false)?);
    }
    set(Target::Down, proj(&p("ffn_down"), c.dim, ffn, false)?);
    Ok(LlamaBlock {
        attn_norm: norm("attn_norm", c.dim)?,
        projs,
        q_norm: optional_norm(c.qk_norm, "attn_q_norm", c.head_dim)?,
        k_norm: optional_norm(c.qk_norm, "attn_k_norm", c.head_dim)?,
        post_attn_norm: optional_norm(c.post_norms, "post_attention_norm", c.dim)?,
        ffn_norm: norm("ffn_norm", c.dim)?,
        post_ffn_norm: optional_norm(c.post_norms, "post_ffw_norm", c.dim)?,
        lora: BlockAdapters::default(),
        ia3: Default::default(),
        bottleneck: Default::default(),
    })
}
