//! What the adapter kinds share on a LLaMA model: loading a PEFT directory of any kind
//! this crate implements (chosen by its `peft_type`), and folding adapters into the base
//! weights (LoRA: W + s B A; IA³: W's rows or columns scaled; a soft prompt or prefixes
//! cannot be).

use super::{Llama, LlamaBlock};
use crate::bottleneck::{files as bottleneck_files, BottleneckConfig};
use crate::error::{ModelError, Result};
use crate::ia3::Ia3Config;
use crate::lora::{peft, LoraConfig, Target};
use crate::nn::Linear;
use crate::prefix::PrefixTuningConfig;
use crate::prompt::{PTuningConfig, PromptTuningConfig};
use crate::qnn::Proj;
use lamina_tensor::{Device, Tensor};
use std::collections::BTreeMap;
use std::path::Path;

/// A loaded adapter's kind and settings.
#[derive(Clone, Debug, PartialEq)]
pub enum AdapterKind {
    Lora(LoraConfig),
    Ia3(Ia3Config),
    Prompt(PromptTuningConfig),
    Prefix(PrefixTuningConfig),
    PTuning(PTuningConfig),
    Bottleneck(BottleneckConfig),
}

impl AdapterKind {
    /// One line for people: the kind, its settings and where it sits.
    pub fn describe(&self) -> String {
        let names = |ts: &[Target]| ts.iter().map(|t| t.hf_module()).collect::<Vec<_>>().join(", ");
        match self {
            AdapterKind::Lora(c) => format!("LoRA: rank {}, alpha {}, on {}", c.rank, c.alpha, names(&c.targets)),
            AdapterKind::Ia3(c) => {
                format!("IA3: vectors on {} (input-scaled: {})", names(&c.targets), names(&c.feedforward))
            }
            AdapterKind::Prompt(c) => format!("prompt tuning: {} virtual tokens", c.num_virtual_tokens),
            AdapterKind::Bottleneck(c) => format!(
                "bottleneck adapters: size {}, {} placement, {}",
                c.size,
                c.placement.name(),
                c.activation.name()
            ),
            AdapterKind::PTuning(c) => format!("P-tuning: {} virtual tokens", c.num_virtual_tokens),
            AdapterKind::Prefix(c) => format!("prefix tuning: {} key/value prefixes per layer", c.num_virtual_tokens),
        }
    }
}

impl Llama {
    /// Load a PEFT adapter directory of any implemented kind (`peft_type` LORA, IA3,
    /// PROMPT_TUNING, P_TUNING or PREFIX_TUNING), replacing adapters of that kind. Frozen unless `trainable`.
    pub fn load_adapter(&mut self, dir: &Path, trainable: bool) -> Result<AdapterKind> {
        let v = peft::read_config(dir)?;
        match v.get("peft_type").and_then(|t| t.as_str()).unwrap_or("LORA") {
            "LORA" => Ok(AdapterKind::Lora(self.load_lora(dir, trainable)?)),
            "IA3" => Ok(AdapterKind::Ia3(self.load_ia3(dir, trainable)?)),
            "PROMPT_TUNING" => Ok(AdapterKind::Prompt(self.load_prompt(dir, trainable)?)),
            bottleneck_files::PEFT_TYPE => Ok(AdapterKind::Bottleneck(self.load_bottleneck(dir, trainable)?)),
            "P_TUNING" => Ok(AdapterKind::PTuning(self.load_p_tuning(dir, trainable)?)),
            "PREFIX_TUNING" => Ok(AdapterKind::Prefix(self.load_prefix(dir, trainable)?)),
            other => Err(ModelError::Unsupported(format!(
                "{}: peft_type {other} is not supported (LORA, IA3, PROMPT_TUNING, P_TUNING, PREFIX_TUNING, LAMINA_BOTTLENECK)",
                dir.join(peft::CONFIG_FILE).display()
            ))),
        }
    }

    /// Whether any adapter is attached (LoRA, IA³, a soft prompt, prefixes or bottleneck
    /// adapters).
    pub fn has_adapters(&self) -> bool {
        self.prompt.is_some()
            || self.prefix.is_some()
            || self.blocks.iter().any(|b| !b.lora.is_empty() || !b.ia3.is_empty() || !b.bottleneck.is_empty())
    }

    fn refuse_merging_a_prompt(&self) -> Result<()> {
        let what = match (&self.prompt, &self.prefix) {
            (Some(_), _) => "a soft prompt (prompt tuning, P-tuning)",
            (None, Some(_)) => "key/value prefixes (prefix tuning)",
            _ if self.blocks.iter().any(|b| !b.bottleneck.is_empty()) => "bottleneck adapters (nonlinear)",
            (None, None) => return Ok(()),
        };
        Err(ModelError::Unsupported(format!("{what} cannot be merged into the weights: apply it with --adapter")))
    }

    /// Fold every adapter into its base weight (in f32; quantized weights are dequantized
    /// first) and drop the adapters. Returns how many projections changed.
    pub fn merge_adapters(&mut self) -> Result<usize> {
        self.refuse_merging_a_prompt()?;
        let device = self.device;
        let mut merged = 0;
        for b in &mut self.blocks {
            let targets: Vec<Target> = b.targets().collect();
            for t in targets {
                if let Some((w, bias)) = merged_projection(b, t)? {
                    let bias = bias.map(|x| x.to_device(device)).transpose()?;
                    *b.proj_mut(t).expect("targets() lists the block's projections") =
                        Proj::Float(Linear { weight: w.to_device(device)?, bias });
                    merged += 1;
                }
            }
            b.lora = Default::default();
            b.ia3 = Default::default();
        }
        Ok(merged)
    }

    /// The adapted projections' merged weights (and biases, where IA³ scales them) as f32
    /// CPU tensors by GGUF name (`blk.3.attn_q.weight`), in this model's row order (GGUF's
    /// for a model loaded from GGUF). The model itself is left unchanged.
    pub fn merged_weights(&self) -> Result<BTreeMap<String, Tensor>> {
        self.refuse_merging_a_prompt()?;
        let mut out = BTreeMap::new();
        for (i, b) in self.blocks.iter().enumerate() {
            for t in b.targets() {
                let Some((w, bias)) = merged_projection(b, t)? else { continue };
                out.insert(format!("blk.{i}.{}.weight", t.gguf_module()), w);
                if let Some(bias) = bias.filter(|_| b.ia3.get(t).is_some_and(|v| !v.feedforward)) {
                    out.insert(format!("blk.{i}.{}.bias", t.gguf_module()), bias);
                }
            }
        }
        Ok(out)
    }
}

/// (W, b) of projection `t` with its adapters folded in, on the CPU in f32; `None` when
/// it has none. The forward computes l_out ⊙ (W (l_in ⊙ x) + b + s B A (l_in ⊙ x)), so
/// the LoRA delta is added first and the IA³ vector scales the sum.
fn merged_projection(b: &LlamaBlock, t: Target) -> Result<Option<(Tensor, Option<Tensor>)>> {
    let (lora, ia3) = (b.lora.get(t), b.ia3.get(t));
    if lora.is_none() && ia3.is_none() {
        return Ok(None);
    }
    let (w, bias) = match b.proj(t).expect("adapters sit on the block's projections") {
        Proj::Float(lin) => (lin.weight.detach().to_device(Device::Cpu)?, lin.bias.clone()),
        Proj::Quant(q) => (q.weight.dequantize()?, q.bias.clone()),
    };
    let bias = bias.map(|x| x.detach().to_device(Device::Cpu)).transpose()?;
    let w = match lora {
        Some(l) => w.add(&l.merged_delta()?)?,
        None => w,
    };
    Ok(Some(match ia3 {
        Some(v) => v.merge(&w, bias.as_ref())?,
        None => (w, bias),
    }))
}
