//! The backend interface: every kernel an op dispatches to, with one signature for all
//! backends (candle's `BackendStorage`). `CpuStorage` implements it in `cpu/backend.rs`,
//! `GpuStorage` in `gpu/backend.rs`; `Storage` picks the implementation in `dispatch.rs`,
//! the one file that matches on the backend. The ops in `ops/*.rs` validate, call
//! `Storage`, and record the tape; they never name a backend.
//!
//! Adding a backend: a `Storage` variant, an `On` variant below and an implementation of
//! this trait; the compiler then lists every method and every dispatch arm still missing.
//! Adding a kernel: a method here, which each implementation must then provide.
//!
//! The `*_backward` methods with a default are fused backward kernels a backend may
//! provide: `Ok(None)` means it has none, and the gradient rule runs its tensor-op form
//! (written out next to the call in `ops/nn_backward.rs`).

use crate::error::{Error, Result};
use crate::gpu::GpuStorage;
use crate::ops::{BinaryOp, CmpOp, ReduceOp, RopeConvention, UnaryOp};
use crate::quant::QMatrix;
use crate::storage::{CpuStorage, Storage};
use crate::{DType, Layout};

/// A storage and the layout a kernel reads it through.
pub(crate) type View<'a, S> = (&'a S, &'a Layout);

/// The kernels of one backend. `self` is the first operand; every other operand is on the
/// same backend and device (`dispatch.rs` checks). Results are contiguous.
pub(crate) trait BackendStorage: Sized {
    // ---- copies and casts
    fn copy_contiguous(&self, l: &Layout) -> Result<Self>;
    fn cast(&self, l: &Layout, dtype: DType) -> Result<Self>;

    // ---- elementwise (operands already broadcast to one shape)
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Self>;
    fn binary(&self, l: &Layout, rhs: &Self, lr: &Layout, op: BinaryOp) -> Result<Self>;
    /// 1 where `op` holds, 0 elsewhere, in the operands' dtype.
    fn cmp(&self, l: &Layout, rhs: &Self, lr: &Layout, op: CmpOp) -> Result<Self>;
    /// `self` is the condition: where it is nonzero take `a`, else `b`.
    fn where_cond(&self, l: &Layout, a: View<Self>, b: View<Self>) -> Result<Self>;
    /// x * keep / (1 - p), element i kept when `random::uniform_at(seed, i) >= p`.
    fn dropout(&self, l: &Layout, p: f32, seed: u64) -> Result<Self>;

    // ---- reductions and products
    /// Reduce over `axes` (sorted, deduplicated); the result keeps no reduced dim.
    fn reduce(&self, l: &Layout, op: ReduceOp, axes: &[usize]) -> Result<Self>;
    /// (..., m, k) @ (..., k, n), batch dims equal (already broadcast).
    fn matmul(&self, l: &Layout, rhs: &Self, lr: &Layout) -> Result<Self>;
    /// x (m, cols) @ W^T for a quantized W (rows, cols); x is f32, so is the result.
    fn qmatmul_t(&self, l: &Layout, w: &QMatrix, m: usize) -> Result<Self>;
    /// x (m, rows) @ W for a quantized W (rows, cols): `qmatmul_t`'s backward.
    fn qmatmul_n(&self, l: &Layout, w: &QMatrix, m: usize) -> Result<Self>;

    // ---- fused row ops (over the last dim)
    fn softmax_last(&self, l: &Layout, log: bool) -> Result<Self>;
    /// (y, mean, rstd): the row statistics are f32 whatever x's dtype.
    fn layer_norm(
        &self,
        l: &Layout,
        w: Option<View<Self>>,
        b: Option<View<Self>>,
        eps: f32,
    ) -> Result<(Self, Self, Self)>;
    /// (y, rstd), rstd f32.
    fn rms_norm(&self, l: &Layout, w: Option<View<Self>>, eps: f32) -> Result<(Self, Self)>;
    /// Mean cross-entropy of logits (N, C) against `targets` as a 0-d f32.
    fn cross_entropy(&self, l: &Layout, targets: &[i64], ignore_index: i64) -> Result<Self>;
    /// Its gradient times the 0-d f32 upstream gradient `g`.
    fn cross_entropy_backward(&self, l: &Layout, targets: &[i64], ignore_index: i64, g: View<Self>) -> Result<Self>;
    /// Rotate pairs of x (..., T, D) by cos/sin (T, D/2).
    fn rope(&self, l: &Layout, cos: View<Self>, sin: View<Self>, convention: RopeConvention) -> Result<Self>;
    /// softmax(q k^T scale + mask) v; `self` is q (B, Hq, Tq, D), mask (B, Hq, Tq, Tk).
    fn attention(
        &self,
        l: &Layout,
        k: View<Self>,
        v: View<Self>,
        mask: Option<View<Self>>,
        causal: bool,
        scale: f32,
    ) -> Result<Self>;

    // ---- index ops (ids on the host, already checked to be integers)
    fn index_select(&self, l: &Layout, dim: usize, ids: &[i64]) -> Result<Self>;
    fn gather(&self, l: &Layout, dim: usize, index: &[i64], li: &Layout) -> Result<Self>;
    /// A copy of `self` with `src`'s slices added at `ids` along `dim`.
    fn index_add(&self, l: &Layout, dim: usize, ids: &[i64], src: View<Self>) -> Result<Self>;
    /// A copy of `self` with `src[p]` added at p with p[dim] = index[p].
    fn scatter_add(&self, l: &Layout, dim: usize, index: &[i64], li: &Layout, src: View<Self>) -> Result<Self>;
    fn concat(parts: &[View<Self>], dim: usize) -> Result<Self>;

    // ---- fused backward kernels a backend may provide (`Ok(None)`: use the tensor-op form)
    /// dL/dx = g f'(x) of y = op(x).
    fn unary_backward(&self, _l: &Layout, _op: UnaryOp, _y: View<Self>, _g: View<Self>) -> Result<Option<Self>> {
        Ok(None)
    }
    /// dL/dx of softmax / log_softmax from its output `self`.
    fn softmax_last_backward(&self, _l: &Layout, _g: View<Self>, _log: bool) -> Result<Option<Self>> {
        Ok(None)
    }
    /// (dx, dw, db) of layer_norm from the forward's row statistics.
    #[allow(clippy::type_complexity)]
    fn layer_norm_backward(
        &self,
        _l: &Layout,
        _w: Option<View<Self>>,
        _bias: bool,
        _mean: &Self,
        _rstd: &Self,
        _g: View<Self>,
    ) -> Result<Option<(Self, Option<Self>, Option<Self>)>> {
        Ok(None)
    }
    /// (dx, dw) of rms_norm.
    fn rms_norm_backward(
        &self,
        _l: &Layout,
        _w: Option<View<Self>>,
        _rstd: &Self,
        _g: View<Self>,
    ) -> Result<Option<(Self, Option<Self>)>> {
        Ok(None)
    }
}

/// The operands of one kernel call, all on one backend and device: what `dispatch.rs`
/// matches on.
pub(crate) enum On<'a, const N: usize> {
    Cpu([&'a CpuStorage; N]),
    Gpu([&'a GpuStorage; N]),
}

/// The storages `xs` as one backend's, or the device-mismatch error naming `op`.
pub(crate) fn on<'a, const N: usize>(op: &'static str, xs: [&'a Storage; N]) -> Result<On<'a, N>> {
    let first = xs[0].device();
    if let Some(other) = xs.iter().find(|x| x.device() != first) {
        return Err(Error::DeviceMismatch { op, lhs: first, rhs: other.device() });
    }
    let picked = match xs[0] {
        Storage::Cpu(_) => all(xs, CpuStorage::pick).map(On::Cpu),
        Storage::Gpu(_) => all(xs, GpuStorage::pick).map(On::Gpu),
    };
    // Storages on one device are of one variant, so `all` found them all.
    picked.ok_or(Error::DeviceMismatch { op, lhs: first, rhs: first })
}

/// An optional operand (a norm weight, an attention mask) as backend `S`'s, or the
/// device-mismatch error when it lives elsewhere than `x`.
pub(crate) fn optional<'a, S: Pick>(
    op: &'static str,
    x: &Storage,
    arg: Option<(&'a Storage, &'a Layout)>,
) -> Result<Option<View<'a, S>>> {
    match arg {
        None => Ok(None),
        Some((s, l)) if s.device() == x.device() => {
            S::pick(s).map(|s| Some((s, l))).ok_or(Error::DeviceMismatch { op, lhs: x.device(), rhs: s.device() })
        }
        Some((s, _)) => Err(Error::DeviceMismatch { op, lhs: x.device(), rhs: s.device() }),
    }
}

/// Every part of a list (`cat`'s inputs) as backend `S`'s, all on the first one's device.
pub(crate) fn list<'a, S: Pick>(op: &'static str, parts: &[(&'a Storage, &'a Layout)]) -> Result<Vec<View<'a, S>>> {
    let Some(&(first, _)) = parts.first() else { return Ok(Vec::new()) };
    let picked = |&(s, l): &(&'a Storage, &'a Layout)| {
        let mismatch = Error::DeviceMismatch { op, lhs: first.device(), rhs: s.device() };
        if s.device() != first.device() {
            return Err(mismatch);
        }
        S::pick(s).map(|p| (p, l)).ok_or(mismatch)
    };
    parts.iter().map(picked).collect()
}

/// One backend's storage out of the `Storage` enum.
pub(crate) trait Pick: BackendStorage {
    fn pick(s: &Storage) -> Option<&Self>;
}

impl Pick for CpuStorage {
    fn pick(s: &Storage) -> Option<&Self> {
        match s {
            Storage::Cpu(c) => Some(c),
            _ => None,
        }
    }
}

impl Pick for GpuStorage {
    fn pick(s: &Storage) -> Option<&Self> {
        match s {
            Storage::Gpu(g) => Some(g),
            _ => None,
        }
    }
}

fn all<'a, S: ?Sized, const N: usize>(
    xs: [&'a Storage; N],
    pick: impl Fn(&'a Storage) -> Option<&'a S>,
) -> Option<[&'a S; N]> {
    xs.into_iter().map(pick).collect::<Option<Vec<_>>>()?.try_into().ok()
}
