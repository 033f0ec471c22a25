//! The CPU backend's table of contents: each kernel of the backend interface
//! (`crate::backend::BackendStorage`) and the file that implements it.

use super::isa;
use crate::backend::{BackendStorage, View};
use crate::error::{invalid, Result};
use crate::ops::{BinaryOp, CmpOp, ReduceOp, RopeConvention, UnaryOp};
use crate::quant::QMatrix;
use crate::storage::CpuStorage;
use crate::{DType, Layout};

impl BackendStorage for CpuStorage {
    fn copy_contiguous(&self, l: &Layout) -> Result<Self> {
        Ok(CpuStorage::copy_contiguous(self, l)) // storage.rs
    }
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Self> {
        Ok(CpuStorage::cast(self, l, dtype)) // storage.rs
    }

    // elementwise.rs
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self> {
        super::unary(self, l, op)
    }
    fn binary(&self, l: &Layout, rhs: &Self, lr: &Layout, op: BinaryOp) -> Result<Self> {
        super::binary(self, l, rhs, lr, op)
    }
    fn cmp(&self, l: &Layout, rhs: &Self, lr: &Layout, op: CmpOp) -> Result<Self> {
        super::cmp(self, l, rhs, lr, op)
    }
    fn where_cond(&self, l: &Layout, (a, la): View<Self>, (b, lb): View<Self>) -> Result<Self> {
        super::where_cond(self, l, a, la, b, lb)
    }
    fn dropout(&self, l: &Layout, p: f32, seed: u64) -> Result<Self> {
        super::dropout(self, l, p, seed)
    }
    fn unary_backward(&self, l: &Layout, op: UnaryOp, y: View<Self>, g: View<Self>) -> Result<Option<Self>> {
        if y.0.dtype() != self.dtype() || g.0.dtype() != self.dtype() {
            return Ok(None); // mixed dtypes: the rule's tensor ops convert
        }
        super::unary_backward(op, (self, l), y, g).map(Some)
    }

    // reduce.rs, matmul.rs (gemm/), qmatmul/
    fn reduce(&self, l: &Layout, op: ReduceOp, axes: &[usize]) -> Result<Self> {
        super::reduce(self, l, op, axes)
    }
    fn matmul(&self, l: &Layout, rhs: &Self, lr: &Layout) -> Result<Self> {
        super::matmul(self, l, rhs, lr)
    }
    fn qmatmul_t(&self, l: &Layout, w: &QMatrix, m: usize) -> Result<Self> {
        Ok(CpuStorage::F32(super::qmatmul::qmatmul_t(isa::active(), w, &self.f32_view(l), m)?))
    }
    fn qmatmul_n(&self, l: &Layout, w: &QMatrix, m: usize) -> Result<Self> {
        Ok(CpuStorage::F32(super::qmatmul::qmatmul_n(isa::active(), w, &self.f32_view(l), m)?))
    }

    // norm.rs (softmax, norms, cross-entropy); the norms' backward is the tensor-op form
    fn softmax_last(&self, l: &Layout, log: bool) -> Result<Self> {
        super::softmax_last(self, l, log)
    }
    fn layer_norm(
        &self,
        l: &Layout,
        w: Option<View<Self>>,
        b: Option<View<Self>>,
        eps: f32,
    ) -> Result<(Self, Self, Self)> {
        super::layer_norm(self, l, w, b, eps)
    }
    fn rms_norm(&self, l: &Layout, w: Option<View<Self>>, eps: f32) -> Result<(Self, Self)> {
        super::rms_norm(self, l, w, eps)
    }
    fn cross_entropy(&self, l: &Layout, targets: &[i64], ignore_index: i64) -> Result<Self> {
        Ok(CpuStorage::F32(vec![super::cross_entropy(self, l, targets, ignore_index)?]))
    }
    fn cross_entropy_backward(
        &self,
        l: &Layout,
        targets: &[i64],
        ignore_index: i64,
        (g, lg): View<Self>,
    ) -> Result<Self> {
        let g = *g.f32_view(lg).first().ok_or_else(|| invalid("cross_entropy_backward", "empty upstream gradient"))?;
        super::cross_entropy_backward(self, l, targets, ignore_index, g)
    }

    // rope.rs, attention.rs
    fn rope(&self, l: &Layout, (c, lc): View<Self>, (s, ls): View<Self>, convention: RopeConvention) -> Result<Self> {
        super::rope(self, l, c, lc, s, ls, convention)
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
        super::attention((self, l), k, v, mask, causal, scale)
    }

    // index.rs
    fn index_select(&self, l: &Layout, dim: usize, ids: &[i64]) -> Result<Self> {
        super::index_select(self, l, dim, ids)
    }
    fn gather(&self, l: &Layout, dim: usize, index: &[i64], li: &Layout) -> Result<Self> {
        super::gather(self, l, dim, index, li)
    }
    fn index_add(&self, l: &Layout, dim: usize, ids: &[i64], (src, ls): View<Self>) -> Result<Self> {
        super::index_add(self, l, dim, ids, src, ls)
    }
    fn scatter_add(&self, l: &Layout, dim: usize, index: &[i64], li: &Layout, (src, ls): View<Self>) -> Result<Self> {
        super::scatter_add(self, l, dim, index, li, src, ls)
    }
    fn concat(parts: &[View<Self>], dim: usize) -> Result<Self> {
        super::concat(parts, dim)
    }
}
