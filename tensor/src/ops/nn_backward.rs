//! Backward passes of the fused row ops, called by their rules in `autograd/grad.rs`.
//! On the GPU each is one fused kernel; on the CPU it is the same math written with
//! tensor ops (the formulas below), which the GPU kernels must agree with.

use crate::error::{mixed, Result};
use crate::ops::UnaryOp;
use crate::storage::Storage;
use crate::{cpu, gpu};
use crate::{DType, Layout, Tensor};

/// A GPU kernel's result as a plain tensor: backward passes run without a tape.
fn untracked(s: gpu::GpuStorage, shape: &[usize]) -> Tensor {
    Tensor::from_storage(Storage::Gpu(s), Layout::contiguous(shape), None)
}

impl Tensor {
    /// dL/dx of a unary op y = f(x) (x = self): g f'(x). One fused pass on the CPU; on the
    /// GPU the rule's tensor ops.
    pub(crate) fn unary_backward(&self, op: UnaryOp, y: &Tensor, g: &Tensor) -> Result<Tensor> {
        let (xs, ys, gs) = (self.storage(), y.storage(), g.storage());
        if let (Storage::Cpu(x), Storage::Cpu(yc), Storage::Cpu(gc)) = (&*xs, &*ys, &*gs) {
            if g.dtype() == self.dtype() && y.dtype() == self.dtype() {
                let out = cpu::unary_backward(op, (x, self.layout()), (yc, y.layout()), (gc, g.layout()))?;
                return Ok(Tensor::from_storage(Storage::Cpu(out), Layout::contiguous(self.shape()), None));
            }
        }
        drop((xs, ys, gs));
        crate::autograd::unary_grad(op, self, y, g)
    }

    /// dL/dx of softmax (or log_softmax) over the last dim, from its output `self` (y):
    /// softmax: y (g - sum(g y)); log_softmax: g - exp(y) sum(g).
    pub(crate) fn softmax_last_backward(&self, g: &Tensor, log: bool) -> Result<Tensor> {
        if let (Storage::Gpu(y), Storage::Gpu(gs)) = (&*self.storage(), &*g.storage()) {
            let out = gpu::kernels::softmax_last_backward(y, self.layout(), (gs, g.layout()), log)?;
            return Ok(untracked(out, self.shape()));
        }
        self.check_same_device("softmax_backward", g)?;
        if log {
            let total = g.sum(&[-1], true)?;
            g.sub(&self.exp()?.mul(&total)?)
        } else {
            let dot = g.mul(self)?.sum(&[-1], true)?;
            self.mul(&g.sub(&dot)?)
        }
    }

    /// Gradients of layer_norm (x = self) from the forward's f32 row statistics:
    /// xhat = (x - mean) rstd, gxhat = g w,
    /// gx = rstd (gxhat - mean(gxhat) - xhat mean(gxhat xhat)), gw = sum(g xhat), gb = sum(g).
    pub(crate) fn layer_norm_backward(
        &self,
        weight: Option<&Tensor>,
        bias: bool,
        mean: &Tensor,
        rstd: &Tensor,
        g: &Tensor,
    ) -> Result<(Tensor, Option<Tensor>, Option<Tensor>)> {
        if self.device().is_gpu() {
            let guards = (self.storage(), weight.map(|w| w.storage()), mean.storage(), rstd.storage(), g.storage());
            let w = guards.1.as_deref().zip(weight);
            return match (&*guards.0, &*guards.2, &*guards.3, &*guards.4) {
                (Storage::Gpu(x), Storage::Gpu(m), Storage::Gpu(r), Storage::Gpu(gs)) => {
                    let w = match w {
                        Some((Storage::Gpu(ws), wt)) => Some((ws, wt.layout())),
                        Some((Storage::Cpu(_), wt)) => return Err(mixed("layer_norm_backward", self, wt)),
                        None => None,
                    };
                    let (gx, gw, gb) =
                        gpu::kernels::layer_norm_backward(x, self.layout(), w, bias, m, r, (gs, g.layout()))?;
                    let d = [*self.shape().last().unwrap_or(&0)];
                    let wrap = untracked;
                    Ok((wrap(gx, self.shape()), gw.map(|s| wrap(s, &d)), gb.map(|s| wrap(s, &d))))
                }
                _ => Err(mixed("layer_norm_backward", self, g)),
            };
        }
        let (mean, rstd) = (mean.to_dtype(self.dtype())?, rstd.to_dtype(self.dtype())?);
        let xhat = self.sub(&mean)?.mul(&rstd)?;
        let gxhat = match weight {
            Some(w) => g.mul(w)?,
            None => g.clone(),
        };
        let m1 = gxhat.mean(&[-1], true)?;
        let m2 = gxhat.mul(&xhat)?.mean(&[-1], true)?;
        let gx = gxhat.sub(&m1)?.sub(&xhat.mul(&m2)?)?.mul(&rstd)?;
        let gw = weight.map(|w| g.mul(&xhat)?.sum_to_shape(w.shape())).transpose()?;
        let gb = if bias { Some(g.sum_to_shape(&[*self.shape().last().unwrap_or(&0)])?) } else { None };
        Ok((gx, gw, gb))
    }

    /// Gradients of rms_norm (x = self): xhat = x rstd, gxhat = g w,
    /// gx = rstd (gxhat - xhat mean(gxhat xhat)), gw = sum(g xhat).
    pub(crate) fn rms_norm_backward(
        &self,
        weight: Option<&Tensor>,
        rstd: &Tensor,
        g: &Tensor,
    ) -> Result<(Tensor, Option<Tensor>)> {
        if self.device().is_gpu() {
            let guards = (self.storage(), weight.map(|w| w.storage()), rstd.storage(), g.storage());
            let w = guards.1.as_deref().zip(weight);
            return match (&*guards.0, &*guards.2, &*guards.3) {
                (Storage::Gpu(x), Storage::Gpu(r), Storage::Gpu(gs)) => {
                    let w = match w {
                        Some((Storage::Gpu(ws), wt)) => Some((ws, wt.layout())),
                        Some((Storage::Cpu(_), wt)) => return Err(mixed("rms_norm_backward", self, wt)),
                        None => None,
                    };
                    let (gx, gw) = gpu::kernels::rms_norm_backward(x, self.layout(), w, r, (gs, g.layout()))?;
                    let d = [*self.shape().last().unwrap_or(&0)];
                    let wrap = untracked;
                    Ok((wrap(gx, self.shape()), gw.map(|s| wrap(s, &d))))
                }
                _ => Err(mixed("rms_norm_backward", self, g)),
            };
        }
        let rstd = rstd.to_dtype(self.dtype())?;
        let xhat = self.mul(&rstd)?;
        let gxhat = match weight {
            Some(w) => g.mul(w)?,
            None => g.clone(),
        };
        let m = gxhat.mul(&xhat)?.mean(&[-1], true)?;
        let gx = gxhat.sub(&xhat.mul(&m)?)?.mul(&rstd)?;
        let gw = weight.map(|w| g.mul(&xhat)?.sum_to_shape(w.shape())).transpose()?;
        Ok((gx, gw))
    }

    /// d(mean cross-entropy)/d(logits = self), times the scalar upstream gradient g:
    /// (softmax(z) - onehot(target)) * valid * g / max(count, 1).
    pub(crate) fn cross_entropy_backward(&self, targets: &Tensor, ignore_index: i64, g: &Tensor) -> Result<Tensor> {
        if self.device().is_gpu() {
            let ids = super::shape::index_values("cross_entropy", targets)?;
            let g32 = g.to_dtype(DType::F32)?;
            let (ls, gs) = (self.storage(), g32.storage());
            return match (&*ls, &*gs) {
                (Storage::Gpu(l), Storage::Gpu(gg)) => {
                    let out = gpu::kernels::cross_entropy_backward(l, self.layout(), &ids, ignore_index, gg)?;
                    Ok(untracked(out, self.shape()))
                }
                _ => Err(mixed("cross_entropy_backward", self, g)),
            };
        }
        let ids = super::shape::index_values("cross_entropy", targets)?;
        let g = g.to_dtype(DType::F32)?.to_scalar_f32()?;
        let ls = self.storage();
        match &*ls {
            Storage::Cpu(l) => {
                let out = cpu::cross_entropy_backward(l, self.layout(), &ids, ignore_index, g)?;
                Ok(Tensor::from_storage(Storage::Cpu(out), Layout::contiguous(self.shape()), None))
            }
            Storage::Gpu(_) => unreachable!("the GPU path returned above"),
        }
    }
}
