//! What to adapt and how: PEFT's `LoraConfig` fields that matter for a LLaMA-shaped model.

use crate::error::{ModelError, Result};

/// The projections of a decoder block an adapter can attach to, by PEFT's module names.
/// A block has either Q, K, V or the fused Qkv, and either Gate, Up or the fused GateUp
/// (Phi-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
    Qkv,
    GateUp,
}

impl Target {
    pub const ALL: [Target; 9] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
        Target::Qkv,
        Target::GateUp,
    ];

    /// A LLaMA block's projections (every block without fused ones).
    pub const LLAMA: [Target; 7] = [Target::Q, Target::K, Target::V, Target::O, Target::Gate, Target::Up, Target::Down];

    /// The fused projection this one is part of, or the parts of a fused one: what a
    /// target means on a block laid out the other way.
    pub fn counterparts(self) -> &'static [Target] {
        match self {
            Target::Q | Target::K | Target::V => &[Target::Qkv],
            Target::Gate | Target::Up => &[Target::GateUp],
            Target::Qkv => &[Target::Q, Target::K, Target::V],
            Target::GateUp => &[Target::Gate, Target::Up],
            Target::O | Target::Down => &[],
        }
    }

    /// The module name in Hugging Face checkpoints (and PEFT's `target_modules`).
    pub fn hf_module(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
            Target::Qkv => "qkv_proj",
            Target::GateUp => "gate_up_proj",
        }
    }

    /// The parent module in Hugging Face names (`self_attn` or `mlp`).
    pub fn hf_parent(self) -> &'static str {
        match self {
            Target::Q | Target::K | Target::V | Target::O | Target::Qkv => "self_attn",
            _ => "mlp",
        }
    }

    /// The module name in GGUF tensor names (`blk.N.attn_q.weight`).
    pub fn gguf_module(self) -> &'static str {
        match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
            Target::Qkv => "attn_qkv",
            // llama.cpp keeps Phi-3's fused gate_up as `ffn_up` (twice as many rows).
            Target::GateUp => "ffn_up",
        }
    }

    /// Accepts PEFT names (`q_proj`), short names (`q`, `gate`) and GGUF names (`attn_q`, `ffn_gate`).
    pub fn parse(name: &str) -> Option<Target> {
        Target::ALL.iter().copied().find(|t| {
            let short = t.hf_module().trim_end_matches("_proj");
            name == t.hf_module() || name == short || name == t.gguf_module()
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f32,
    /// Dropout on the adapter's input while training.
    pub dropout: f32,
    /// rsLoRA: scale alpha / sqrt(r) instead of alpha / r (Kalajdzievski 2023), which keeps
    /// the update's size steady as the rank grows.
    pub rslora: bool,
    pub targets: Vec<Target>,
}

impl Default for LoraConfig {
    /// PEFT's common choice for LLaMA models: r 8, alpha 16, attention q and v.
    fn default() -> Self {
        LoraConfig { rank: 8, alpha: 16.0, dropout: 0.05, rslora: false, targets: vec![Target::Q, Target::V] }
    }
}

impl LoraConfig {
    pub fn scale(&self) -> f32 {
        if self.rslora {
            self.alpha / (self.rank as f32).sqrt()
        } else {
            self.alpha / self.rank as f32
        }
    }

    /// Targets from a comma-separated list (`q,k,v,o` or `q_proj,v_proj`), or `all` for
    /// every projection (PEFT's `all-linear` without the output head). A model resolves
    /// them against its own projections (`Llama::lora_targets`).
    pub fn parse_targets(list: &str) -> Result<Vec<Target>> {
        let list = list.trim();
        if list == "all" || list == "all-linear" {
            return Ok(Target::ALL.to_vec());
        }
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let t = Target::parse(name).ok_or_else(|| {
                ModelError::Invalid(format!(
                    "unknown LoRA target `{name}`: use q, k, v, o, gate, up, down, qkv, gate_up (or q_proj, ..., or all)"
                ))
            })?;
            if !out.contains(&t) {
                out.push(t);
            }
        }
        if out.is_empty() {
            return Err(ModelError::Invalid("no LoRA targets given".into()));
        }
        Ok(out)
    }

    pub fn validate(&self) -> Result<()> {
        if self.rank == 0 || self.rank > 4096 {
            return Err(ModelError::Invalid(format!("LoRA rank must be in 1..=4096, got {}", self.rank)));
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return Err(ModelError::Invalid(format!("LoRA alpha must be positive, got {}", self.alpha)));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(ModelError::Invalid(format!("LoRA dropout must be in [0, 1), got {}", self.dropout)));
        }
        if self.targets.is_empty() {
            return Err(ModelError::Invalid("no LoRA targets given".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_in_every_spelling() {
        assert_eq!(LoraConfig::parse_targets("q, v_proj,ffn_down").unwrap(), vec![Target::Q, Target::V, Target::Down]);
        assert_eq!(LoraConfig::parse_targets("all").unwrap().len(), 9);
        assert_eq!(LoraConfig::parse_targets("qkv_proj,gate_up").unwrap(), vec![Target::Qkv, Target::GateUp]);
        assert_eq!(LoraConfig::parse_targets("ffn_up").unwrap(), vec![Target::Up]);
        assert!(LoraConfig::parse_targets("q,lm_head").unwrap_err().to_string().contains("lm_head"));
        assert!(LoraConfig::parse_targets(" , ").is_err());
    }

    #[test]
    fn scales() {
        let mut c = LoraConfig { rank: 16, alpha: 32.0, ..Default::default() };
        assert_eq!(c.scale(), 2.0);
        c.rslora = true;
        assert_eq!(c.scale(), 8.0);
    }
}
