//! AdamW with nanoGPT's parameter groups: weight decay on the matrices that multiply
//! activations (2-D or more), none on biases, LayerNorm parameters or embedding tables.
//! The arithmetic is the engine's fused in-place `adamw_step`; this file keeps the state.

use lamina_tensor::optim::{adamw_step, AdamWStep};
use lamina_tensor::{Result, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct AdamWConfig {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
}

impl Default for AdamWConfig {
    /// nanoGPT's values.
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 }
    }
}

/// Whether nanoGPT/minGPT would decay this parameter: matrices yes; biases, norm weights
/// (1-D) and embedding tables (`wte`, `wpe`, anything named `*emb*`) no.
pub fn decays(name: &str, param: &Tensor) -> bool {
    let module = name.rsplit('.').nth(1).unwrap_or("");
    let embedding = matches!(module, "wte" | "wpe") || module.contains("emb");
    param.rank() >= 2 && !embedding
}

struct Slot {
    name: String,
    param: Tensor,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

pub struct AdamW {
    slots: Vec<Slot>,
    cfg: AdamWConfig,
    step: u64,
}

impl AdamW {
    /// Moments start at zero; the decay group of each parameter comes from [`decays`].
    pub fn new(params: Vec<(String, Tensor)>, cfg: AdamWConfig) -> Result<AdamW> {
        let slots = params
            .into_iter()
            .map(|(name, param)| {
                let decay = decays(&name, &param);
                Ok(Slot { m: param.zeros_like()?, v: param.zeros_like()?, name, param, decay })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW { slots, cfg, step: 0 })
    }

    /// The parameters, in the order given.
    pub fn params(&self) -> Vec<Tensor> {
        self.slots.iter().map(|s| s.param.clone()).collect()
    }

    /// Names of the parameters that receive weight decay.
    pub fn decayed_names(&self) -> Vec<&str> {
        self.slots.iter().filter(|s| s.decay).map(|s| s.name.as_str()).collect()
    }

    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// One update with learning rate `lr`, each gradient multiplied by `grad_scale`
    /// (the factor from [`crate::clip_factor`]; 1 for none). Parameters without a
    /// gradient are left alone. Clears the gradients afterwards.
    pub fn step(&mut self, lr: f32, grad_scale: f32) -> Result<()> {
        self.step += 1;
        for s in &self.slots {
            let Some(g) = s.param.grad() else { continue };
            let g = if grad_scale == 1.0 { g } else { g.scale(grad_scale)? };
            let h = AdamWStep {
                lr,
                beta1: self.cfg.beta1,
                beta2: self.cfg.beta2,
                eps: self.cfg.eps,
                weight_decay: if s.decay { self.cfg.weight_decay } else { 0.0 },
                step: self.step,
            };
            adamw_step(&s.param, &g, &s.m, &s.v, h)?;
            s.param.zero_grad();
        }
        Ok(())
    }

    pub fn zero_grad(&self) {
        self.slots.iter().for_each(|s| s.param.zero_grad());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_tensor::DType;

    #[test]
    fn decay_groups_follow_nanogpt() {
        let w = Tensor::zeros(&[4, 4], DType::F32).unwrap();
        let b = Tensor::zeros(&[4], DType::F32).unwrap();
        assert!(decays("h.0.attn.c_attn.weight", &w));
        assert!(!decays("h.0.attn.c_attn.bias", &b));
        assert!(!decays("h.0.ln_1.weight", &b));
        assert!(!decays("wte.weight", &w));
        assert!(!decays("wpe.weight", &w));
    }

    #[test]
    fn minimises_a_quadratic() {
        let x = Tensor::from_vec(vec![3f32, -2.0], &[2]).unwrap().requires_grad_();
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], AdamWConfig::default()).unwrap();
        for _ in 0..300 {
            x.square().unwrap().sum_all().unwrap().backward().unwrap();
            opt.step(0.05, 1.0).unwrap();
        }
        let v = x.to_vec::<f32>().unwrap();
        assert!(v.iter().all(|a| a.abs() < 0.05), "{v:?}");
    }
}
