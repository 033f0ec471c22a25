//! A BERT-style encoder (BERT, and the sentence-transformers embedding models built on it:
//! MiniLM, bge, ...): word + learned absolute position + token-type embeddings, post-norm
//! blocks with LayerNorm, bidirectional attention and a GELU MLP; and the pooled sentence
//! embedding (mean, CLS or last token, L2-normalised as the model says) that embedding
//! models are used for.
//!
//! ```text
//! x = LN(word[ids] + pos[0..T] + type[0])
//! per layer:  x = LN(x + attention(x) Wo)          (every position sees every other)
//!             x = LN(x + gelu(x Wup) Wdown)
//! embedding = normalize(pool(x))
//! ```

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::hf::HfModel;
use crate::llama::load::{gguf_weight, Found, Weight};
use crate::llama::{Activation, LoadOptions};
use crate::nn::{LayerNorm, Linear};
use crate::qnn::{Proj, QLinear, Table};
use lamina_tensor::{scaled_dot_product_attention, DType, Device, Tensor};

/// How hidden states become one sentence embedding (llama.cpp's `pooling_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// No pooling: `embed` is refused, `hidden_states` is the output.
    None,
    Mean,
    /// The first token's state (`[CLS]`).
    Cls,
    Last,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub ffn_dim: usize,
    /// Learned positions: the longest input.
    pub context_length: usize,
    pub type_vocab_size: usize,
    pub norm_eps: f32,
    pub activation: Activation,
    pub pooling: Pooling,
    /// L2-normalise the pooled embedding (sentence-transformers' `Normalize` module;
    /// llama.cpp's embedding tools normalise by default).
    pub normalize: bool,
}

pub struct BertLayer {
    pub q: Proj,
    pub k: Proj,
    pub v: Proj,
    pub o: Proj,
    pub attn_norm: LayerNorm,
    pub up: Proj,
    pub down: Proj,
    pub out_norm: LayerNorm,
}

pub struct Bert {
    pub config: BertConfig,
    pub word: Table,        // (vocab, dim)
    pub position: Tensor,   // (context, dim)
    pub token_type: Tensor, // (types, dim)
    pub embed_norm: LayerNorm,
    pub layers: Vec<BertLayer>,
    device: Device,
}

/// GGUF module names and their Hugging Face `BertModel` names.
const NAMES: [(&str, &str); 12] = [
    ("token_embd", "embeddings.word_embeddings"),
    ("position_embd", "embeddings.position_embeddings"),
    ("token_types", "embeddings.token_type_embeddings"),
    ("token_embd_norm", "embeddings.LayerNorm"),
    ("attn_q", "attention.self.query"),
    ("attn_k", "attention.self.key"),
    ("attn_v", "attention.self.value"),
    ("attn_output", "attention.output.dense"),
    ("attn_output_norm", "attention.output.LayerNorm"),
    ("ffn_up", "intermediate.dense"),
    ("ffn_down", "output.dense"),
    ("layer_output_norm", "output.LayerNorm"),
];

/// The Hugging Face name of a BERT weight given its GGUF name.
pub fn hf_name(gguf: &str) -> String {
    let (layer, rest) = match gguf.strip_prefix("blk.").and_then(|r| r.split_once('.')) {
        Some((l, r)) => (Some(l), r),
        None => (None, gguf),
    };
    let (module, suffix) = rest.split_once('.').unwrap_or((rest, ""));
    let hf = NAMES.iter().find(|(g, _)| *g == module).map_or(module, |(_, h)| h);
    match layer {
        Some(l) => format!("encoder.layer.{l}.{hf}.{suffix}"),
        None => format!("{hf}.{suffix}"),
    }
}

impl Bert {
    /// From a GGUF file of llama.cpp's `bert` architecture.
    pub fn from_gguf(f: &GgufFile, opts: LoadOptions) -> Result<Bert> {
        let arch = f.architecture()?;
        let keys = crate::arch::gguf_hparams::Keys { f, arch };
        if keys.get("attention.causal").and_then(|v| v.as_bool()) == Some(true) {
            return Err(ModelError::Unsupported(format!("{arch}: a causal BERT ({arch}.attention.causal = true)")));
        }
        let pooling = match keys.get("pooling_type").and_then(|v| v.as_u64()) {
            None | Some(0) => Pooling::None,
            Some(1) => Pooling::Mean,
            Some(2) => Pooling::Cls,
            Some(3) => Pooling::Last,
            Some(p) => return Err(ModelError::Unsupported(format!("{arch}.pooling_type = {p} (rank pooling)"))),
        };
        let token_types = f.tensor_info("token_types.weight").map(|t| t.shape()[0]).unwrap_or(0);
        let config = BertConfig {
            vocab_size: f.tensor_info("token_embd.weight").map(|t| t.shape()[0]).unwrap_or(0),
            dim: keys.count("embedding_length", 1 << 16)?,
            n_layers: keys.count("block_count", 1024)?,
            n_heads: keys.count("attention.head_count", 1 << 16)?,
            ffn_dim: keys.count("feed_forward_length", 1 << 20)?,
            context_length: keys.count("context_length", 1 << 24)?,
            type_vocab_size: token_types,
            norm_eps: f.get_f64(&keys.name("attention.layer_norm_epsilon"))? as f32,
            // BERT's `hidden_act` is erf GELU; llama.cpp runs its tanh approximation.
            activation: Activation::GeluErf,
            pooling,
            normalize: true,
        };
        Self::from_weights(config, opts.device, &|name| gguf_weight(f, name, opts.keep_quantized))
    }

    /// From a Hugging Face `BertModel` directory (sentence-transformers layout: pooling
    /// from `modules.json` and its `Pooling/config.json`).
    pub fn from_hf(m: &HfModel, device: Device) -> Result<Bert> {
        let h = &m.config;
        let need = |v: Option<u64>, key: &str| crate::arch::hf_hparams::need(h, v, key, 1 << 24);
        if h.position_embedding_type.as_deref().is_some_and(|p| p != "absolute") {
            return Err(ModelError::Unsupported(format!(
                "bert (config.json): position_embedding_type `{}`",
                h.position_embedding_type.as_deref().unwrap_or("")
            )));
        }
        let (pooling, normalize) = sentence_transformers_pooling(m)?;
        let config = BertConfig {
            vocab_size: need(h.vocab_size, "vocab_size")?,
            dim: need(h.hidden_size, "hidden_size")?,
            n_layers: need(h.num_hidden_layers, "num_hidden_layers")?,
            n_heads: need(h.num_attention_heads, "num_attention_heads")?,
            ffn_dim: need(h.intermediate_size, "intermediate_size")?,
            context_length: need(h.max_position_embeddings, "max_position_embeddings")?,
            type_vocab_size: need(h.type_vocab_size.or(Some(2)), "type_vocab_size")?,
            norm_eps: h.layer_norm_eps.unwrap_or(1e-12) as f32,
            activation: crate::arch::hf_hparams::activation(h, Activation::GeluErf)?,
            pooling,
            normalize,
        };
        // Checkpoints of `BertFor*` heads prefix the encoder's names with `bert.`.
        let prefixed = m.weights.tensor_info("bert.embeddings.word_embeddings.weight").is_some();
        Self::from_weights(config, device, &|name| {
            let hf = if prefixed { format!("bert.{}", hf_name(name)) } else { hf_name(name) };
            let Some(info) = m.weights.tensor_info(&hf) else { return Ok(None) };
            Ok(Some((info.shape.clone(), Weight::Float(m.weights.load(&hf, DType::F32)?))))
        })
    }

    fn from_weights(c: BertConfig, device: Device, fetch: &dyn Fn(&str) -> Result<Found>) -> Result<Bert> {
        if c.n_heads == 0 || !c.dim.is_multiple_of(c.n_heads) {
            return Err(ModelError::Unsupported(format!("bert: {} features over {} heads", c.dim, c.n_heads)));
        }
        let get = |name: &str, shape: &[usize]| -> Result<Weight> {
            let (found, w) =
                fetch(name)?.ok_or_else(|| ModelError::Missing(format!("bert: tensor `{name}` is missing")))?;
            if found != shape {
                return Err(ModelError::Missing(format!(
                    "bert: tensor `{name}` has shape {found:?}, the hyperparameters say {shape:?}"
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
        let norm = |name: &str| -> Result<LayerNorm> {
            Ok(LayerNorm {
                weight: float(&format!("{name}.weight"), &[c.dim])?,
                bias: float(&format!("{name}.bias"), &[c.dim])?,
                eps: c.norm_eps,
            })
        };
        let proj = |name: &str, out: usize, inp: usize| -> Result<Proj> {
            let bias = Some(float(&format!("{name}.bias"), &[out])?);
            Ok(match get(&format!("{name}.weight"), &[out, inp])? {
                Weight::Float(t) => Proj::Float(Linear { weight: t.to_device(device)?, bias }),
                Weight::Quant(q) => Proj::Quant(QLinear { weight: q.to_device(device)?, bias }),
            })
        };
        let word = match get("token_embd.weight", &[c.vocab_size, c.dim])? {
            Weight::Float(t) => Table::Float(t.to_device(device)?),
            Weight::Quant(q) => Table::Quant(q),
        };
        let layers = (0..c.n_layers)
            .map(|i| {
                let p = |s: &str| format!("blk.{i}.{s}");
                Ok(BertLayer {
                    q: proj(&p("attn_q"), c.dim, c.dim)?,
                    k: proj(&p("attn_k"), c.dim, c.dim)?,
                    v: proj(&p("attn_v"), c.dim, c.dim)?,
                    o: proj(&p("attn_output"), c.dim, c.dim)?,
                    attn_norm: norm(&p("attn_output_norm"))?,
                    up: proj(&p("ffn_up"), c.ffn_dim, c.dim)?,
                    down: proj(&p("ffn_down"), c.dim, c.ffn_dim)?,
                    out_norm: norm(&p("layer_output_norm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Bert {
            position: float("position_embd.weight", &[c.context_length, c.dim])?,
            token_type: float("token_types.weight", &[c.type_vocab_size.max(1), c.dim])?,
            embed_norm: norm("token_embd_norm")?,
            word,
            layers,
            config: c,
            device,
        })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The last layer's hidden states (T, dim) of one sequence (token type 0).
    pub fn hidden_states(&self, tokens: &[u32]) -> Result<Tensor> {
        lamina_tensor::cpu::parallel::install(|| self.hidden_inner(tokens))
    }

    fn hidden_inner(&self, tokens: &[u32]) -> Result<Tensor> {
        let c = &self.config;
        let t = tokens.len();
        if t == 0 || t > c.context_length {
            return Err(ModelError::Invalid(format!("bert takes 1 to {} tokens, got {t}", c.context_length)));
        }
        if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(ModelError::Invalid(format!("token id {bad} is outside the vocabulary of {}", c.vocab_size)));
        }
        let x = self.word.lookup(tokens, self.device)?; // (T, dim)
        let x = x.add(&self.position.narrow(0, 0, t)?)?.add(&self.token_type.narrow(0, 0, 1)?)?;
        let mut x = self.embed_norm.forward(&x)?;
        let hd = c.dim / c.n_heads;
        // (T, dim) -> (1, heads, T, hd)
        let heads = |y: Tensor| -> Result<Tensor> { Ok(y.reshape(&[1, t, c.n_heads, hd])?.permute(&[0, 2, 1, 3])?) };
        for l in &self.layers {
            let (q, k, v) = (heads(l.q.forward(&x)?)?, heads(l.k.forward(&x)?)?, heads(l.v.forward(&x)?)?);
            let a = scaled_dot_product_attention(&q, &k, &v, None, false, None)?;
            let a = a.permute(&[0, 2, 1, 3])?.reshape(&[t, c.dim])?;
            x = l.attn_norm.forward(&x.add(&l.o.forward(&a)?)?)?;
            let h = l.up.forward(&x)?;
            let h = match c.activation {
                Activation::GeluErf => h.gelu_erf()?,
                Activation::GeluTanh => h.gelu_tanh()?,
                Activation::Silu => h.silu()?,
            };
            x = l.out_norm.forward(&x.add(&l.down.forward(&h)?)?)?;
        }
        Ok(x)
    }

    /// The sentence embedding of one sequence: its hidden states pooled as the model
    /// says, L2-normalised where it says so.
    pub fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>> {
        let h = self.hidden_states(tokens)?;
        let t = tokens.len();
        let pooled = match self.config.pooling {
            Pooling::Mean => h.mean(&[0], false)?,
            Pooling::Cls => h.narrow(0, 0, 1)?.reshape(&[self.config.dim])?,
            Pooling::Last => h.narrow(0, t - 1, 1)?.reshape(&[self.config.dim])?,
            Pooling::None => {
                return Err(ModelError::Unsupported("this model declares no pooling: use hidden_states".into()))
            }
        };
        let mut v = pooled.to_vec_f32()?;
        if self.config.normalize {
            let norm = v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt();
            if norm > 0.0 {
                v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
            }
        }
        Ok(v)
    }
}

/// Pooling and normalisation from sentence-transformers' `modules.json` (a `Pooling`
/// module's `config.json`, a `Normalize` module); mean pooling, not normalised, without one.
fn sentence_transformers_pooling(m: &HfModel) -> Result<(Pooling, bool)> {
    let path = m.dir.join("modules.json");
    if !path.is_file() {
        return Ok((Pooling::Mean, false));
    }
    let modules: Vec<serde_json::Value> = crate::hf::read_json(&path)?;
    let ty = |v: &serde_json::Value| v.get("type").and_then(|t| t.as_str()).unwrap_or("").to_string();
    let normalize = modules.iter().any(|v| ty(v).ends_with("Normalize"));
    let Some(pool) = modules.iter().find(|v| ty(v).ends_with("Pooling")) else { return Ok((Pooling::Mean, normalize)) };
    let dir = m.dir.join(pool.get("path").and_then(|p| p.as_str()).unwrap_or(""));
    let cfg: serde_json::Value = crate::hf::read_json(&dir.join("config.json"))?;
    let on = |k: &str| cfg.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
    let pooling = if on("pooling_mode_mean_tokens") {
        Pooling::Mean
    } else if on("pooling_mode_cls_token") {
        Pooling::Cls
    } else if on("pooling_mode_lasttoken") {
        Pooling::Last
    } else {
        return Err(ModelError::Unsupported(format!(
            "{}: a pooling mode other than mean, CLS or last token",
            dir.join("config.json").display()
        )));
    };
    Ok((pooling, normalize))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert_eq!(super::hf_name("blk.1.attn_q.bias"), "encoder.layer.1.attention.self.query.bias");
        assert_eq!(super::hf_name("token_embd_norm.weight"), "embeddings.LayerNorm.weight");
        assert_eq!(super::hf_name("blk.0.layer_output_norm.weight"), "encoder.layer.0.output.LayerNorm.weight");
    }
}
