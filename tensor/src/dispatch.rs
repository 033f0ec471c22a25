//! `Storage` → backend: the one place that matches on which backend holds the data (see
//! `backend.rs`). Each method takes its operands as storages with their layouts, checks
//! they share a device, and calls that backend's `BackendStorage` kernel.

use crate::backend::{list, on, optional, BackendStorage, On};
use crate::error::Result;
use crate::ops::{BinaryOp, CmpOp, ReduceOp, RopeConvention, UnaryOp};
use crate::quant::QMatrix;
use crate::storage::Storage;
use crate::{DType, Layout};

type Arg<'a> = (&'a Storage, &'a Layout);

impl Storage {
    /// A contiguous copy of the elements under `layout`, on the same device.
    pub fn copy_contiguous(&self, l: &Layout) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.copy_contiguous(l))),
            Storage::Gpu(s) => Ok(Storage::Gpu(BackendStorage::copy_contiguous(s, l)?)),
        }
    }

    /// Convert the elements under `layout` to `dtype` (contiguous result, same device).
    pub fn cast(&self, l: &Layout, dtype: DType) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.cast(l, dtype))),
            Storage::Gpu(s) => Ok(Storage::Gpu(BackendStorage::cast(s, l, dtype)?)),
        }
    }

    pub(crate) fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.unary(l, op)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.unary(l, op)?)),
        }
    }

    pub(crate) fn binary(&self, l: &Layout, (rhs, lr): Arg, op: BinaryOp) -> Result<Storage> {
        match on("binary", [self, rhs])? {
            On::Cpu([a, b]) => Ok(Storage::Cpu(a.binary(l, b, lr, op)?)),
            On::Gpu([a, b]) => Ok(Storage::Gpu(a.binary(l, b, lr, op)?)),
        }
    }

    pub(crate) fn cmp(&self, l: &Layout, (rhs, lr): Arg, op: CmpOp) -> Result<Storage> {
        match on("cmp", [self, rhs])? {
            On::Cpu([a, b]) => Ok(Storage::Cpu(a.cmp(l, b, lr, op)?)),
            On::Gpu([a, b]) => Ok(Storage::Gpu(a.cmp(l, b, lr, op)?)),
        }
    }

    pub(crate) fn where_cond(&self, l: &Layout, (a, la): Arg, (b, lb): Arg) -> Result<Storage> {
        match on("where", [self, a, b])? {
            On::Cpu([c, a, b]) => Ok(Storage::Cpu(c.where_cond(l, (a, la), (b, lb))?)),
            On::Gpu([c, a, b]) => Ok(Storage::Gpu(c.where_cond(l, (a, la), (b, lb))?)),
        }
    }

    pub(crate) fn dropout(&self, l: &Layout, p: f32, seed: u64) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.dropout(l, p, seed)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.dropout(l, p, seed)?)),
        }
    }

    pub(crate) fn reduce(&self, l: &Layout, op: ReduceOp, axes: &[usize]) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.reduce(l, op, axes)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.reduce(l, op, axes)?)),
        }
    }

    pub(crate) fn matmul(&self, l: &Layout, (rhs, lr): Arg) -> Result<Storage> {
        match on("matmul", [self, rhs])? {
            On::Cpu([a, b]) => Ok(Storage::Cpu(a.matmul(l, b, lr)?)),
            On::Gpu([a, b]) => Ok(Storage::Gpu(a.matmul(l, b, lr)?)),
        }
    }

    pub(crate) fn qmatmul_t(&self, l: &Layout, w: &QMatrix, m: usize) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.qmatmul_t(l, w, m)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.qmatmul_t(l, w, m)?)),
        }
    }

    pub(crate) fn qmatmul_n(&self, l: &Layout, w: &QMatrix, m: usize) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.qmatmul_n(l, w, m)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.qmatmul_n(l, w, m)?)),
        }
    }

    pub(crate) fn softmax_last(&self, l: &Layout, log: bool) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.softmax_last(l, log)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.softmax_last(l, log)?)),
        }
    }

    /// (y, mean, rstd).
    pub(crate) fn layer_norm(
        &self,
        l: &Layout,
        w: Option<Arg>,
        b: Option<Arg>,
        eps: f32,
    ) -> Result<(Storage, Storage, Storage)> {
        const OP: &str = "layer_norm";
        match self {
            Storage::Cpu(x) => {
                let (y, m, r) = x.layer_norm(l, optional(OP, self, w)?, optional(OP, self, b)?, eps)?;
                Ok((Storage::Cpu(y), Storage::Cpu(m), Storage::Cpu(r)))
            }
            Storage::Gpu(x) => {
                let (y, m, r) = x.layer_norm(l, optional(OP, self, w)?, optional(OP, self, b)?, eps)?;
                Ok((Storage::Gpu(y), Storage::Gpu(m), Storage::Gpu(r)))
            }
        }
    }

    /// (y, rstd).
    pub(crate) fn rms_norm(&self, l: &Layout, w: Option<Arg>, eps: f32) -> Result<(Storage, Storage)> {
        match self {
            Storage::Cpu(x) => {
                let (y, r) = x.rms_norm(l, optional("rms_norm", self, w)?, eps)?;
                Ok((Storage::Cpu(y), Storage::Cpu(r)))
            }
            Storage::Gpu(x) => {
                let (y, r) = x.rms_norm(l, optional("rms_norm", self, w)?, eps)?;
                Ok((Storage::Gpu(y), Storage::Gpu(r)))
            }
        }
    }

    pub(crate) fn cross_entropy(&self, l: &Layout, targets: &[i64], ignore_index: i64) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.cross_entropy(l, targets, ignore_index)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.cross_entropy(l, targets, ignore_index)?)),
        }
    }

    pub(crate) fn cross_entropy_backward(
        &self,
        l: &Layout,
        targets: &[i64],
        ignore_index: i64,
        (g, lg): Arg,
    ) -> Result<Storage> {
        match on("cross_entropy_backward", [self, g])? {
            On::Cpu([x, g]) => Ok(Storage::Cpu(x.cross_entropy_backward(l, targets, ignore_index, (g, lg))?)),
            On::Gpu([x, g]) => Ok(Storage::Gpu(x.cross_entropy_backward(l, targets, ignore_index, (g, lg))?)),
        }
    }

    pub(crate) fn rope(&self, l: &Layout, (c, lc): Arg, (s, ls): Arg, conv: RopeConvention) -> Result<Storage> {
        match on("rope", [self, c, s])? {
            On::Cpu([x, c, s]) => Ok(Storage::Cpu(x.rope(l, (c, lc), (s, ls), conv)?)),
            On::Gpu([x, c, s]) => Ok(Storage::Gpu(x.rope(l, (c, lc), (s, ls), conv)?)),
        }
    }

    /// `self` is q.
    pub(crate) fn attention(
        &self,
        l: &Layout,
        (k, lk): Arg,
        (v, lv): Arg,
        mask: Option<Arg>,
        causal: bool,
        scale: f32,
    ) -> Result<Storage> {
        const OP: &str = "attention";
        match on(OP, [self, k, v])? {
            On::Cpu([q, k, v]) => {
                Ok(Storage::Cpu(q.attention(l, (k, lk), (v, lv), optional(OP, self, mask)?, causal, scale)?))
            }
            On::Gpu([q, k, v]) => {
                Ok(Storage::Gpu(q.attention(l, (k, lk), (v, lv), optional(OP, self, mask)?, causal, scale)?))
            }
        }
    }

    pub(crate) fn index_select(&self, l: &Layout, dim: usize, ids: &[i64]) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.index_select(l, dim, ids)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.index_select(l, dim, ids)?)),
        }
    }

    pub(crate) fn gather(&self, l: &Layout, dim: usize, index: &[i64], li: &Layout) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.gather(l, dim, index, li)?)),
            Storage::Gpu(s) => Ok(Storage::Gpu(s.gather(l, dim, index, li)?)),
        }
    }

    pub(crate) fn index_add(&self, l: &Layout, dim: usize, ids: &[i64], (src, ls): Arg) -> Result<Storage> {
        match on("index_add", [self, src])? {
            On::Cpu([d, s]) => Ok(Storage::Cpu(d.index_add(l, dim, ids, (s, ls))?)),
            On::Gpu([d, s]) => Ok(Storage::Gpu(d.index_add(l, dim, ids, (s, ls))?)),
        }
    }

    pub(crate) fn scatter_add(
        &self,
        l: &Layout,
        dim: usize,
        index: &[i64],
        li: &Layout,
        (src, ls): Arg,
    ) -> Result<Storage> {
        match on("scatter_add", [self, src])? {
            On::Cpu([d, s]) => Ok(Storage::Cpu(d.scatter_add(l, dim, index, li, (s, ls))?)),
            On::Gpu([d, s]) => Ok(Storage::Gpu(d.scatter_add(l, dim, index, li, (s, ls))?)),
        }
    }

    /// `parts` joined along `dim`; at least one part.
    pub(crate) fn concat(parts: &[Arg], dim: usize) -> Result<Storage> {
        match parts.first().map(|p| p.0) {
            None => Err(crate::error::invalid("cat", "needs at least one tensor")),
            Some(Storage::Cpu(_)) => Ok(Storage::Cpu(BackendStorage::concat(&list("cat", parts)?, dim)?)),
            Some(Storage::Gpu(_)) => Ok(Storage::Gpu(BackendStorage::concat(&list("cat", parts)?, dim)?)),
        }
    }

    // ---- fused backward kernels (None: the backend has none)

    pub(crate) fn unary_backward(
        &self,
        l: &Layout,
        op: UnaryOp,
        (y, ly): Arg,
        (g, lg): Arg,
    ) -> Result<Option<Storage>> {
        Ok(match on("unary_backward", [self, y, g])? {
            On::Cpu([x, y, g]) => x.unary_backward(l, op, (y, ly), (g, lg))?.map(Storage::Cpu),
            On::Gpu([x, y, g]) => x.unary_backward(l, op, (y, ly), (g, lg))?.map(Storage::Gpu),
        })
    }

    pub(crate) fn softmax_last_backward(&self, l: &Layout, (g, lg): Arg, log: bool) -> Result<Option<Storage>> {
        Ok(match on("softmax_backward", [self, g])? {
            On::Cpu([y, g]) => y.softmax_last_backward(l, (g, lg), log)?.map(Storage::Cpu),
            On::Gpu([y, g]) => y.softmax_last_backward(l, (g, lg), log)?.map(Storage::Gpu),
        })
    }

    /// (dx, dw, db).
    #[allow(clippy::type_complexity)]
    pub(crate) fn layer_norm_backward(
        &self,
        l: &Layout,
        w: Option<Arg>,
        bias: bool,
        mean: &Storage,
        rstd: &Storage,
        (g, lg): Arg,
    ) -> Result<Option<(Storage, Option<Storage>, Option<Storage>)>> {
        const OP: &str = "layer_norm_backward";
        Ok(match on(OP, [self, mean, rstd, g])? {
            On::Cpu([x, m, r, g]) => x
                .layer_norm_backward(l, optional(OP, self, w)?, bias, m, r, (g, lg))?
                .map(|(dx, dw, db)| (Storage::Cpu(dx), dw.map(Storage::Cpu), db.map(Storage::Cpu))),
            On::Gpu([x, m, r, g]) => x
                .layer_norm_backward(l, optional(OP, self, w)?, bias, m, r, (g, lg))?
                .map(|(dx, dw, db)| (Storage::Gpu(dx), dw.map(Storage::Gpu), db.map(Storage::Gpu))),
        })
    }

    /// (dx, dw).
    pub(crate) fn rms_norm_backward(
        &self,
        l: &Layout,
        w: Option<Arg>,
        rstd: &Storage,
        (g, lg): Arg,
    ) -> Result<Option<(Storage, Option<Storage>)>> {
        const OP: &str = "rms_norm_backward";
        Ok(match on(OP, [self, rstd, g])? {
            On::Cpu([x, r, g]) => x
                .rms_norm_backward(l, optional(OP, self, w)?, r, (g, lg))?
                .map(|(dx, dw)| (Storage::Cpu(dx), dw.map(Storage::Cpu))),
            On::Gpu([x, r, g]) => x
                .rms_norm_backward(l, optional(OP, self, w)?, r, (g, lg))?
                .map(|(dx, dw)| (Storage::Gpu(dx), dw.map(Storage::Gpu))),
        })
    }
}
