//! Bottleneck adapters (Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for
//! NLP"; Pfeiffer et al. 2021, "AdapterFusion"): a small residual MLP on a sublayer's
//! output, the model frozen around it:
//!
//! ```text
//! y = sublayer(x)                                (rows, dim): attention's o_proj output, or the MLP's down_proj
//! y = y + (act(y W_down^T + b_down)) W_up^T + b_up   dim -> size -> dim
//! x = x + post_norm(y)                           the block's residual, as before
//! ```
//!
//! Houlsby's placement puts one after both sublayers, Pfeiffer's after the MLP only. The up
//! projection starts at zero, so a fresh adapter changes nothing (Houlsby's near-identity
//! start). PEFT has no bottleneck adapter: `files` reads and writes a documented layout of
//! our own. The adapter is nonlinear, so it cannot be merged into the weights.

pub mod files;

use crate::error::{ModelError, Result};
use crate::nn::{Linear, SeedStream};
use lamina_tensor::{DType, Device, Tensor};

/// Where a block gets adapters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// After the attention and after the MLP.
    Houlsby,
    /// After the MLP only.
    Pfeiffer,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Houlsby => "houlsby",
            Placement::Pfeiffer => "pfeiffer",
        }
    }

    pub fn parse(s: &str) -> Option<Placement> {
        [Placement::Houlsby, Placement::Pfeiffer].into_iter().find(|p| p.name() == s)
    }

    /// Whether the attention sublayer gets one (the MLP always does).
    pub fn after_attention(self) -> bool {
        self == Placement::Houlsby
    }
}

/// The bottleneck's nonlinearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BottleneckAct {
    Relu,
    Silu,
    /// GELU, tanh approximation.
    Gelu,
}

impl BottleneckAct {
    pub fn name(self) -> &'static str {
        match self {
            BottleneckAct::Relu => "relu",
            BottleneckAct::Silu => "silu",
            BottleneckAct::Gelu => "gelu",
        }
    }

    pub fn parse(s: &str) -> Option<BottleneckAct> {
        [BottleneckAct::Relu, BottleneckAct::Silu, BottleneckAct::Gelu].into_iter().find(|a| a.name() == s)
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        Ok(match self {
            BottleneckAct::Relu => x.relu()?,
            BottleneckAct::Silu => x.silu()?,
            BottleneckAct::Gelu => x.gelu_tanh()?,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BottleneckConfig {
    /// The bottleneck width.
    pub size: usize,
    pub placement: Placement,
    pub activation: BottleneckAct,
}

impl BottleneckConfig {
    pub fn validate(&self, dim: usize) -> Result<()> {
        if self.size == 0 || self.size > dim.max(1) * 4 {
            return Err(ModelError::Invalid(format!(
                "the bottleneck size must be in 1..={} (4 x the model width), got {}",
                dim * 4,
                self.size
            )));
        }
        Ok(())
    }
}

/// One adapter: down (dim -> size), up (size -> dim).
#[derive(Clone)]
pub struct Bottleneck {
    pub down: Linear,
    pub up: Linear,
    pub activation: BottleneckAct,
}

impl Bottleneck {
    /// Down initialised as `torch.nn.Linear` is, up at zero (the identity).
    pub fn new(dim: usize, cfg: &BottleneckConfig, seeds: &mut SeedStream, device: Device) -> Result<Bottleneck> {
        let zeros = |shape: &[usize]| -> Result<Tensor> {
            Ok(Tensor::zeros(shape, DType::F32)?.to_device(device)?.requires_grad_())
        };
        let down = Linear::torch_init(dim, cfg.size, seeds, device)?;
        let up = Linear { weight: zeros(&[dim, cfg.size])?, bias: Some(zeros(&[dim])?) };
        Ok(Bottleneck { down, up, activation: cfg.activation })
    }

    /// y + up(act(down(y))) for y (rows, dim).
    pub fn forward(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.add(&self.up.forward(&self.activation.apply(&self.down.forward(y)?)?)?)?)
    }
}

/// A block's adapters: after the attention and after the MLP.
#[derive(Clone, Default)]
pub struct BottleneckBlock {
    pub attn: Option<Bottleneck>,
    pub mlp: Option<Bottleneck>,
}

impl BottleneckBlock {
    pub fn is_empty(&self) -> bool {
        self.attn.is_none() && self.mlp.is_none()
    }

    /// The adapters with their site names (`attn_adapter`, `mlp_adapter`).
    pub fn sites(&self) -> impl Iterator<Item = (&'static str, &Bottleneck)> {
        [("attn_adapter", self.attn.as_ref()), ("mlp_adapter", self.mlp.as_ref())]
            .into_iter()
            .filter_map(|(n, b)| Some((n, b?)))
    }

    /// The attention's output with its adapter applied, if it has one.
    pub fn after_attention(&self, y: Tensor) -> Result<Tensor> {
        match &self.attn {
            Some(a) => a.forward(&y),
            None => Ok(y),
        }
    }

    /// The MLP's output with its adapter applied, if it has one.
    pub fn after_mlp(&self, y: Tensor) -> Result<Tensor> {
        match &self.mlp {
            Some(a) => a.forward(&y),
            None => Ok(y),
        }
    }
}
