//! Prefix tuning (Li & Liang 2021, "Prefix-Tuning"; P-tuning v2, Liu et al. 2022): K
//! trainable key/value pairs in every layer's attention, attended to by every token as if
//! they came before the sequence; the model stays frozen. They are not run through the
//! model: at inference they are written straight into each new KV cache's first K
//! positions and pinned there (`KvCache::pin_filled`), so generation costs nothing more
//! than K extra cache positions. Positions count them, as in PEFT (the first real token
//! is at position K); the prefix keys are stored as they are, not rotated.
//!
//! The prefixes are one (K, layers * 2 * kv_dim) matrix in PEFT's layout: column
//! `((layer * 2 + kv) * kv_heads + head) * head_dim + i`, kv 0 for keys and 1 for values
//! (PEFT's `get_prompt`: view (K, layers * 2, kv_heads, head_dim), keys then values per
//! layer). Optionally reparameterised while training (PEFT's `prefix_projection`): the
//! prefixes are then an MLP of K embeddings, `W2 tanh(W1 e + b1) + b2`; what is saved is
//! its output, so an adapter never needs the MLP at inference.
//!
//! `peft` reads and writes them in Hugging Face PEFT's layout (`peft_type` PREFIX_TUNING).

pub mod peft;

use crate::error::Result;
use crate::nn::{Linear, SeedStream};
use crate::prompt::learning::{check_count, MAX_ENCODER_WIDTH, MAX_VIRTUAL_TOKENS, TENSOR_NAME};
use lamina_tensor::{DType, Device, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub struct PrefixTuningConfig {
    pub num_virtual_tokens: usize,
    /// The reparameterisation MLP's hidden width (PEFT's `prefix_projection` with
    /// `encoder_hidden_size`); `None` trains the prefixes directly.
    pub projection: Option<usize>,
}

impl PrefixTuningConfig {
    pub fn validate(&self) -> Result<()> {
        check_count("the number of prefix tokens", self.num_virtual_tokens, MAX_VIRTUAL_TOKENS)?;
        if let Some(h) = self.projection {
            check_count("the prefix MLP's hidden size", h, MAX_ENCODER_WIDTH)?;
        }
        Ok(())
    }
}

/// Which model the prefixes fit: its layers and key/value heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixShape {
    pub layers: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl PrefixShape {
    /// PEFT's `token_dim` for prefix tuning: one layer's keys (or values) per token.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim
    }

    /// Columns of the prefix matrix.
    pub fn width(&self) -> usize {
        self.layers * 2 * self.kv_dim()
    }
}

/// The reparameterisation: prefixes (K, width) = W2 tanh(W1 e + b1) + b2 for the K
/// embeddings e (K, kv_dim), as PEFT's `PrefixEncoder.transform`.
#[derive(Clone)]
pub struct PrefixMlp {
    pub embedding: Tensor, // (K, kv_dim)
    pub hidden: Linear,    // kv_dim -> hidden
    pub out: Linear,       // hidden -> width
}

/// The trainable prefixes of one model.
#[derive(Clone)]
pub enum Prefix {
    /// The prefixes themselves, (K, width): what PEFT saves as `prompt_embeddings`.
    Direct(Tensor),
    /// Made by an MLP (training only: saved as its output).
    Projected(PrefixMlp),
}

impl Prefix {
    /// Fresh prefixes as PEFT starts them: N(0, 1) (`torch.nn.Embedding`), or N(0, 1)
    /// embeddings through an MLP initialised as `torch.nn.Linear` is (U(±1/sqrt(in))).
    pub fn random(cfg: &PrefixTuningConfig, shape: PrefixShape, seed: u64, device: Device) -> Result<Prefix> {
        cfg.validate()?;
        let k = cfg.num_virtual_tokens;
        let mut seeds = SeedStream::new(seed);
        let mut randn = |shape: &[usize]| -> Result<Tensor> {
            let t = Tensor::randn(shape, 0.0, 1.0, seeds.next_seed(), DType::F32)?;
            Ok(t.to_device(device)?.requires_grad_())
        };
        let Some(hidden) = cfg.projection else { return Ok(Prefix::Direct(randn(&[k, shape.width()])?)) };
        let embedding = randn(&[k, shape.kv_dim()])?;
        let hidden = Linear::torch_init(shape.kv_dim(), hidden, &mut seeds, device)?;
        let out = Linear::torch_init(hidden.weight.shape()[0], shape.width(), &mut seeds, device)?;
        Ok(Prefix::Projected(PrefixMlp { embedding, hidden, out }))
    }

    /// K, the prefix tokens.
    pub fn len(&self) -> usize {
        match self {
            Prefix::Direct(p) => p.shape()[0],
            Prefix::Projected(m) => m.embedding.shape()[0],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The prefixes (K, width), through the MLP when reparameterised.
    pub fn values(&self) -> Result<Tensor> {
        match self {
            Prefix::Direct(p) => Ok(p.clone()),
            Prefix::Projected(m) => Ok(m.out.forward(&m.hidden.forward(&m.embedding)?.tanh()?)?),
        }
    }

    /// The trainable tensors, with PEFT's names (the checkpoint's names too).
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        match self {
            Prefix::Direct(p) => vec![(TENSOR_NAME.to_string(), p.clone())],
            Prefix::Projected(m) => {
                let mut out = vec![("prompt_encoder.embedding.weight".to_string(), m.embedding.clone())];
                m.hidden.parameters("prompt_encoder.transform.0", &mut out);
                m.out.parameters("prompt_encoder.transform.2", &mut out);
                out
            }
        }
    }

    /// Layer `layer`'s keys and values, each (1, kv_heads, K, head_dim), from `values`
    /// (K, width) in PEFT's layout.
    pub fn layer_kv(values: &Tensor, shape: PrefixShape, layer: usize) -> Result<(Tensor, Tensor)> {
        let (k, kvd) = (values.shape()[0], shape.kv_dim());
        let part = |kv: usize| -> Result<Tensor> {
            let cols = values.narrow(1, (layer * 2 + kv) * kvd, kvd)?; // (K, kv_dim)
            Ok(cols.reshape(&[k, shape.kv_heads, shape.head_dim])?.permute(&[1, 0, 2])?.unsqueeze(0)?)
        };
        Ok((part(0)?, part(1)?))
    }
}
