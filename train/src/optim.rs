//! AdamW with nanoGPT's parameter groups: weight decay on the matrices that multiply
//! activations (2-D or more), none on biases, LayerNorm parameters or embedding tables.
//! The arithmetic is the engine's fused in-place `adamw_step`; this file keeps the state.

use lamina_tensor::optim::{adamw_step, sgd_step, AdamWStep};
use lamina_tensor::{Error, Result, Tensor};
use std::collections::BTreeMap;

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
    /// Steps this parameter took part in (had a gradient): its bias-correction count,
    /// as torch keeps one per parameter.
    steps: u64,
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
                Ok(Slot { m: param.zeros_like()?, v: param.zeros_like()?, name, param, decay, steps: 0 })
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
    /// gradient are left alone, their moments and bias-correction count too (as
    /// `torch.optim.AdamW` does). Clears the gradients afterwards.
    pub fn step(&mut self, lr: f32, grad_scale: f32) -> Result<()> {
        self.step += 1;
        for s in &mut self.slots {
            let Some(g) = s.param.grad() else { continue };
            s.steps += 1;
            let g = if grad_scale == 1.0 { g } else { g.scale(grad_scale)? };
            let h = AdamWStep {
                lr,
                beta1: self.cfg.beta1,
                beta2: self.cfg.beta2,
                eps: self.cfg.eps,
                weight_decay: if s.decay { self.cfg.weight_decay } else { 0.0 },
                step: s.steps,
            };
            adamw_step(&s.param, &g, &s.m, &s.v, h)?;
            s.param.zero_grad();
        }
        Ok(())
    }

    pub fn zero_grad(&self) {
        self.slots.iter().for_each(|s| s.param.zero_grad());
    }

    /// The moments and bias-correction counts, named `{param}.exp_avg`,
    /// `{param}.exp_avg_sq` and `{param}.step` (PyTorch's names; the count as a scalar
    /// f32, exact up to 2^24 steps), for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(3 * self.slots.len());
        for s in &self.slots {
            out.push((format!("{}.exp_avg", s.name), s.m.clone()));
            out.push((format!("{}.exp_avg_sq", s.name), s.v.clone()));
            out.push((format!("{}.step", s.name), Tensor::scalar(s.steps as f32)));
        }
        out
    }

    /// Restore what [`AdamW::state`] saved, after `steps` optimizer steps. A checkpoint
    /// without the per-parameter counts (written before they were kept) gives every
    /// parameter `steps`.
    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        for s in &mut self.slots {
            s.m.assign(state_entry(state, &format!("{}.exp_avg", s.name))?)?;
            s.v.assign(state_entry(state, &format!("{}.exp_avg_sq", s.name))?)?;
            s.steps = match state.get(&format!("{}.step", s.name)) {
                Some(t) => t.to_scalar_f32()? as u64,
                None => steps,
            };
        }
        self.step = steps;
        Ok(())
    }
}

fn state_entry<'a>(state: &'a BTreeMap<String, Tensor>, name: &str) -> Result<&'a Tensor> {
    state.get(name).ok_or_else(|| Error::InvalidArgument { op: "optimizer state", msg: format!("`{name}` is missing") })
}

/// SGD with momentum (PyTorch's form: v = mu v + g + wd p; p -= lr v). CPU tensors.
pub struct Sgd {
    slots: Vec<(String, Tensor, Tensor)>, // name, parameter, velocity
    momentum: f32,
    weight_decay: f32,
    step: u64,
}

impl Sgd {
    pub fn new(params: Vec<(String, Tensor)>, momentum: f32, weight_decay: f32) -> Result<Sgd> {
        let slots = params.into_iter().map(|(n, p)| Ok((n, p.clone(), p.zeros_like()?))).collect::<Result<Vec<_>>>()?;
        Ok(Sgd { slots, momentum, weight_decay, step: 0 })
    }

    pub fn step(&mut self, lr: f32, grad_scale: f32) -> Result<()> {
        self.step += 1;
        for (_, p, vel) in &self.slots {
            let Some(g) = p.grad() else { continue };
            let g = if grad_scale == 1.0 { g } else { g.scale(grad_scale)? };
            sgd_step(p, &g, vel, lr, self.momentum, self.weight_decay)?;
            p.zero_grad();
        }
        Ok(())
    }
}

/// The optimizers a fine-tuning run can use, behind one interface.
pub enum Optimizer {
    AdamW(AdamW),
    Sgd(Sgd),
}

impl Optimizer {
    pub fn step(&mut self, lr: f32, grad_scale: f32) -> Result<()> {
        match self {
            Optimizer::AdamW(o) => o.step(lr, grad_scale),
            Optimizer::Sgd(o) => o.step(lr, grad_scale),
        }
    }

    pub fn params(&self) -> Vec<Tensor> {
        match self {
            Optimizer::AdamW(o) => o.params(),
            Optimizer::Sgd(o) => o.slots.iter().map(|(_, p, _)| p.clone()).collect(),
        }
    }

    pub fn zero_grad(&self) {
        self.params().iter().for_each(|p| p.zero_grad());
    }

    pub fn steps_taken(&self) -> u64 {
        match self {
            Optimizer::AdamW(o) => o.step,
            Optimizer::Sgd(o) => o.step,
        }
    }

    /// Named state tensors for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        match self {
            Optimizer::AdamW(o) => o.state(),
            Optimizer::Sgd(o) => o.slots.iter().map(|(n, _, v)| (format!("{n}.momentum_buffer"), v.clone())).collect(),
        }
    }

    pub fn load_state(&mut self, state: &BTreeMap<String, Tensor>, steps: u64) -> Result<()> {
        match self {
            Optimizer::AdamW(o) => o.load_state(state, steps),
            Optimizer::Sgd(o) => {
                for (n, _, v) in &o.slots {
                    v.assign(state_entry(state, &format!("{n}.momentum_buffer"))?)?;
                }
                o.step = steps;
                Ok(())
            }
        }
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

    #[test]
    fn sgd_with_momentum_matches_pytorch_by_hand() {
        // PyTorch: v1 = g1 = 2x0; x1 = x0 - lr v1; v2 = mu v1 + 2x1; x2 = x1 - lr v2.
        let x = Tensor::from_vec(vec![1f32], &[1]).unwrap().requires_grad_();
        let mut opt = Optimizer::Sgd(Sgd::new(vec![("x".into(), x.clone())], 0.9, 0.0).unwrap());
        for _ in 0..2 {
            x.square().unwrap().sum_all().unwrap().backward().unwrap();
            opt.step(0.1, 1.0).unwrap();
        }
        let (x1, v1) = (1.0 - 0.1 * 2.0, 2.0);
        let v2 = 0.9 * v1 + 2.0 * x1;
        let want = x1 - 0.1 * v2;
        assert!((x.to_vec::<f32>().unwrap()[0] - want).abs() < 1e-6);
        let state: BTreeMap<_, _> = opt.state().into_iter().collect();
        assert!((state["x.momentum_buffer"].to_vec::<f32>().unwrap()[0] - v2).abs() < 1e-6);
    }

    #[test]
    fn adamw_state_round_trips() {
        let x = Tensor::from_vec(vec![3f32, -2.0], &[2]).unwrap().requires_grad_();
        let mut a = AdamW::new(vec![("x".into(), x.clone())], AdamWConfig::default()).unwrap();
        x.square().unwrap().sum_all().unwrap().backward().unwrap();
        a.step(0.1, 1.0).unwrap();
        let state: BTreeMap<_, _> = a.state().into_iter().map(|(n, t)| (n, t.contiguous().unwrap())).collect();
        let y = Tensor::from_vec(x.to_vec::<f32>().unwrap(), &[2]).unwrap().requires_grad_();
        let mut b = AdamW::new(vec![("x".into(), y.clone())], AdamWConfig::default()).unwrap();
        b.load_state(&state, 1).unwrap();
        for (p, o) in [(&x, &mut a), (&y, &mut b)] {
            p.square().unwrap().sum_all().unwrap().backward().unwrap();
            o.step(0.1, 1.0).unwrap();
        }
        assert_eq!(x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
        assert!(b.load_state(&BTreeMap::new(), 1).is_err());
    }
}
