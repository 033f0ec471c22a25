//! Fused in-place optimizer updates (one pass over parameter, gradient and moments).
//! The optimizers in `lamina-train` hold the state and schedule; the arithmetic is here
//! because it touches storage directly, like any other kernel.

use crate::cpu::simd::{self, AdamWConsts};
use crate::error::{invalid, Error, Result};
use crate::storage::Storage;
use crate::Tensor;
use rayon::prelude::*;

/// Parameters per parallel task of the CPU update (its four streams stay in L1/L2).
const CHUNK: usize = 4096;

/// Hyperparameters of one AdamW step (decoupled weight decay, Loshchilov & Hutter).
#[derive(Clone, Copy, Debug)]
pub struct AdamWStep {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based step count, for bias correction.
    pub step: u64,
}

/// param <- param - lr * (m_hat / (sqrt(v_hat) + eps) + wd * param), updating m and v.
/// `param`, `m` and `v` are f32 tensors that own their storage; `grad` any f32 layout.
pub fn adamw_step(param: &Tensor, grad: &Tensor, m: &Tensor, v: &Tensor, h: AdamWStep) -> Result<()> {
    for t in [grad, m, v] {
        if t.shape() != param.shape() {
            return Err(Error::ShapeMismatch { op: "adamw", lhs: param.shape().to_vec(), rhs: t.shape().to_vec() });
        }
    }
    if h.step == 0 {
        return Err(invalid("adamw", "step counts from 1"));
    }
    if param.device().is_gpu() {
        for t in [grad, m, v] {
            param.check_same_device("adamw", t)?;
        }
        for t in [param, m, v] {
            t.check_whole_storage("adamw")?;
        }
        let (ps, gs, ms, vs) = (param.storage(), grad.storage(), m.storage(), v.storage());
        return match (&*ps, &*gs, &*ms, &*vs) {
            // The kernel writes param, m and v in place through their shared buffers.
            (Storage::Gpu(p), Storage::Gpu(g), Storage::Gpu(m), Storage::Gpu(v)) => {
                crate::gpu::kernels::adamw_step(p, (g, grad.layout()), m, v, h)
            }
            _ => Err(invalid("adamw", "parameter, gradient and moments must be on one device")),
        };
    }
    let g = grad.storage().to_cpu()?.f32_view(grad.layout()).into_owned();
    let t = h.step.min(i32::MAX as u64) as i32;
    let c = AdamWConsts {
        lr: h.lr,
        beta1: h.beta1,
        beta2: h.beta2,
        eps: h.eps,
        weight_decay: h.weight_decay,
        bc1: 1.0 - h.beta1.powi(t),
        bc2: 1.0 - h.beta2.powi(t),
    };
    let isa = crate::cpu::isa::active();
    m.with_f32_data_mut(|m| {
        v.with_f32_data_mut(|v| {
            param.with_f32_data_mut(|p| {
                crate::cpu::parallel::install(|| {
                    p.par_chunks_mut(CHUNK)
                        .zip(m.par_chunks_mut(CHUNK))
                        .zip(v.par_chunks_mut(CHUNK))
                        .zip(g.par_chunks(CHUNK))
                        .for_each(|(((p, m), v), g)| simd::adamw(isa, &c, p, m, v, g))
                })
            })
        })
    })???;
    Ok(())
}

/// param <- param - lr * (velocity = momentum * velocity + grad + wd * param).
pub fn sgd_step(
    param: &Tensor,
    grad: &Tensor,
    velocity: &Tensor,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
) -> Result<()> {
    if grad.shape() != param.shape() || velocity.shape() != param.shape() {
        return Err(Error::ShapeMismatch { op: "sgd", lhs: param.shape().to_vec(), rhs: grad.shape().to_vec() });
    }
    let g = grad.storage().to_cpu()?.f32_view(grad.layout()).into_owned();
    velocity.with_f32_data_mut(|vel| {
        param.with_f32_data_mut(|p| {
            for i in 0..p.len() {
                let d = g[i] + weight_decay * p[i];
                vel[i] = momentum * vel[i] + d;
                p[i] -= lr * vel[i];
            }
        })
    })??;
    Ok(())
}
