//! Backward passes of the fused row ops, called by their rules in `autograd/grad.rs`.
//! Each asks the backend for a fused kernel (`BackendStorage::*_backward`: the GPU has them
//! for softmax and the norms, the CPU for unary ops and cross-entropy); where a backend has
//! none, the same math runs as tensor ops (the formulas below), which the fused kernels
//! must agree with (the gradient checks run on both backends).

use crate::error::{invalid, Result};
use crate::ops::UnaryOp;
use crate::storage::Storage;
use crate::{DType, Layout, Tensor};

/// A backward kernel's result as a plain tensor: backward passes run without a tape.
fn untracked(s: Storage, shape: &[usize]) -> Tensor {
    Tensor::from_storage(s, Layout::contiguous(shape), None)
}

impl Tensor {
    /// dL/dx of a unary op y = f(x) (x = self): g f'(x).
    pub(crate) fn unary_backward(&self, op: UnaryOp, y: &Tensor, g: &Tensor) -> Result<Tensor> {
        let fused =
            self.storage().unary_backward(self.layout(), op, (&y.storage(), y.layout()), (&g.storage(), g.layout()))?;
        match fused {
            Some(s) => Ok(untracked(s, self.shape())),
            None => crate::autograd::unary_grad(op, self, y, g),
        }
    }

    /// dL/dx of softmax (or log_softmax) over the last dim, from its output `self` (y):
    /// softmax: y (g - sum(g y)); log_softmax: g - exp(y) sum(g).
    pub(crate) fn softmax_last_backward(&self, g: &Tensor, log: bool) -> Result<Tensor> {
        let fused = self.storage().softmax_last_backward(self.layout(), (&g.storage(), g.layout()), log)?;
        if let Some(s) = fused {
            return Ok(untracked(s, self.shape()));
        }
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
        let fused = {
            let w = weight.map(|w| w.storage());
            let w = w.as_deref().zip(weight.map(Tensor::layout));
            let (m, r) = (mean.storage(), rstd.storage());
            self.storage().layer_norm_backward(self.layout(), w, bias, &m, &r, (&g.storage(), g.layout()))?
        };
        if let Some((gx, gw, gb)) = fused {
            let d = [*self.shape().last().unwrap_or(&0)];
            return Ok((untracked(gx, self.shape()), gw.map(|s| untracked(s, &d)), gb.map(|s| untracked(s, &d))));
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
        let fused = {
            let w = weight.map(|w| w.storage());
            let w = w.as_deref().zip(weight.map(Tensor::layout));
            self.storage().rms_norm_backward(self.layout(), w, &rstd.storage(), (&g.storage(), g.layout()))?
        };
        if let Some((gx, gw)) = fused {
            let d = [*self.shape().last().unwrap_or(&0)];
            return Ok((untracked(gx, self.shape()), gw.map(|s| untracked(s, &d))));
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
        if g.numel() != 1 {
            return Err(invalid("cross_entropy_backward", format!("upstream gradient of shape {:?}", g.shape())));
        }
        let ids = super::shape::index_values("cross_entropy", targets)?;
        let g = g.to_dtype(DType::F32)?;
        let out =
            self.storage().cross_entropy_backward(self.layout(), &ids, ignore_index, (&g.storage(), g.layout()))?;
        Ok(untracked(out, self.shape()))
    }
}
