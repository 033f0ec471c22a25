//! The GPU backend's table of contents: each kernel of the backend interface
//! (`crate::backend::BackendStorage`) and the file of `kernels/` that implements it (its
//! WGSL is the `shaders/` file of the same name).

use super::kernels;
use super::GpuStorage;
use crate::backend::{BackendStorage, View};
use crate::error::Result;
use crate::ops::{BinaryOp, CmpOp, ReduceOp, RopeConvention, UnaryOp};
use crate::quant::QMatrix;
use crate::storage::CpuStorage;
use crate::{DType, Layout};

impl BackendStorage for GpuStorage {
    // copy.rs
    fn copy_contiguous(&self, l: &Layout) -> Result<Self> {
        kernels::copy_contiguous(self, l)
    }
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Self> {
        kernels::cast(self, l, dtype)
    }

    // elementwise.rs
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        kernels::unary(self, l, op)
    }
    fn binary(&self, l: &Layout, rhs: &Self, lr: &Layout, op: BinaryOp) -> Result<Self> {
        kernels::binary(self, l, rhs, lr, op)
    }
    fn cmp(&self, l: &Layout, rhs: &Self, lr: &Layout, op: CmpOp) -> Result<Self> {
        kernels::cmp(self, l, rhs, lr, op)
    }
    fn where_cond(&self, l: &Layout, (a, la): View<Self>, (b, lb): View<Self>) -> Result<Self> {
        kernels::where_cond(self, l, a, la, b, lb)
    }
    /// The mask is drawn on the host (the same counter-based generator as the CPU's) and
    /// applied by the multiply kernel.
    fn dropout(&self, l: &Layout, p: f32, seed: u64) -> Result<Self> {
        let keep = crate::random::dropout_mask(l.shape(), p, seed)?;
        let keep = GpuStorage::from_cpu(&CpuStorage::from_f32(self.dtype(), keep), self.device())?;
        kernels::binary(self, l, &keep, &Layout::contiguous(l.shape()), BinaryOp::Mul)
    }

    // reduce.rs, matmul.rs, qmatmul.rs (the weights uploaded to this device on first use)
    fn reduce(&self, l: &Layout, op: ReduceOp, axes: &[usize]) -> Result<Self> {
        kernels::reduce(self, l, op, axes)
    }
    fn matmul(&self, l: &Layout, rhs: &Self, lr: &Layout) -> Result<Self> {
        kernels::matmul(self, l, rhs, lr)
    }
    fn qmatmul_t(&self, l: &Layout, w: &QMatrix, m: usize) -> Result<Self> {
        kernels::qmatmul_t(&*w.gpu_copy(self.device())?, self, l, m)
    }
    fn qmatmul_n(&self, l: &Layout, w: &QMatrix, m: usize) -> Result<Self> {
        kernels::qmatmul_n(&*w.gpu_copy(self.device())?, self, l, m)
    }

    // norm.rs (softmax and norms, forward and fused backward), cross_entropy.rs
    fn softmax_last(&self, l: &Layout, log: bool) -> Result<Self> {
        kernels::softmax_last(self, l, log)
    }
    fn layer_norm(
        &self,
        l: &Layout,
        w: Option<View<Self>>,
        b: Option<View<Self>>,
        eps: f32,
    ) -> Result<(Self, Self, Self)> {
        kernels::layer_norm(self, l, w, b, eps)
    }
    fn rms_norm(&self, l: &Layout, w: Option<View<Self>>, eps: f32) -> Result<(Self, Self)> {
        kernels::rms_norm(self, l, w, eps)
    }
    fn cross_entropy(&self, l: &Layout, targets: &[i64], ignore_index: i64) -> Result<Self> {
        kernels::cross_entropy(self, l, targets, ignore_index)
    }
    fn cross_entropy_backward(
        &self,
        l: &Layout,
        targets: &[i64],
        ignore_index: i64,
        (g, lg): View<Self>,
    ) -> Result<Self> {
        // The kernel reads the gradient from word 0.
        let copy = if lg.is_contiguous() && lg.offset() == 0 { None } else { Some(kernels::copy_contiguous(g, lg)?) };
        kernels::cross_entropy_backward(self, l, targets, ignore_index, copy.as_ref().unwrap_or(g))
    }
    fn softmax_last_backward(&self, l: &Layout, g: View<Self>, log: bool) -> Result<Option<Self>> {
        kernels::softmax_last_backward(self, l, g, log).map(Some)
    }
    fn layer_norm_backward(
        &self,
        l: &Layout,
        w: Option<View<Self>>,
        bias: bool,
        mean: &Self,
        rstd: &Self,
        g: View<Self>,
    ) -> Result<Option<(Self, Option<Self>, Option<Self>)>> {
        kernels::layer_norm_backward(self, l, w, bias, mean, rstd, g).map(Some)
    }
    fn rms_norm_backward(
        &self,
        l: &Layout,
        w: Option<View<Self>>,
        rstd: &Self,
        g: View<Self>,
    ) -> Result<Option<(Self, Option<Self>)>> {
        kernels::rms_norm_backward(self, l, w, rstd, g).map(Some)
    }

    // rope.rs, attention.rs
    fn rope(&self, l: &Layout, cos: View<Self>, sin: View<Self>, convention: RopeConvention) -> Result<Self> {
        kernels::rope(self, l, cos.0, cos.1, sin.0, sin.1, convention)
    }
    fn attention(
        &self,
        l: &Layout,
        k: View<Self>,
        v: View<Self>,
        mask: Option<View<Self>>,
        causal: bool,
        scale: f32,
    ) -> Result<Self> {
        kernels::attention((self, l), k, v, mask, causal, scale)
    }

    // index.rs
    fn index_select(&self, l: &Layout, dim: usize, ids: &[i64]) -> Result<Self> {
        kernels::index_select(self, l, dim, ids)
    }
    fn gather(&self, l: &Layout, dim: usize, index: &[i64], li: &Layout) -> Result<Self> {
        kernels::gather(self, l, dim, index, li)
    }
    fn index_add(&self, l: &Layout, dim: usize, ids: &[i64], (src, ls): View<Self>) -> Result<Self> {
        kernels::index_add(self, l, dim, ids, src, ls)
    }
    fn scatter_add(&self, l: &Layout, dim: usize, index: &[i64], li: &Layout, (src, ls): View<Self>) -> Result<Self> {
        kernels::scatter_add(self, l, dim, index, li, src, ls)
    }
    fn concat(parts: &[View<Self>], dim: usize) -> Result<Self> {
        kernels::concat(parts, dim)
    }
}
