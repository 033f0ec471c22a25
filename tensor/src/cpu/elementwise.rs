//! Elementwise kernels: unary maps, binary ops, comparisons and select. Inputs arrive
//! already broadcast to the output shape (as stride-0 views); the common broadcast
//! patterns (a scalar, or a row repeated over leading dims) are detected so they are
//! never materialised.

use super::simd::Store;
use super::{float_only, isa, parallel, simd, write_output, PAR_CHUNK};
use crate::error::Result;
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::random::uniform_at;
use crate::storage::{filled, CpuStorage};
use crate::Layout;
use rayon::prelude::*;
use std::borrow::Cow;

pub fn unary(s: &CpuStorage, l: &Layout, op: UnaryOp) -> Result<CpuStorage> {
    float_only("unary", s.dtype())?;
    let x = s.f32_view(l);
    let (isa, store) = (isa::active(), Store::for_output(x.len()));
    let out = write_output(x.len(), |out| {
        parallel::install(|| {
            out.par_chunks_mut(PAR_CHUNK)
                .zip(x.par_chunks(PAR_CHUNK))
                .for_each(|(o, x)| simd::unary(isa, op, x, o, store));
        })
    })?;
    Ok(CpuStorage::from_f32(s.dtype(), out))
}

/// g * f'(x) for y = f(x), in one pass (the fused backward of every unary op).
pub fn unary_backward(
    op: UnaryOp,
    x: (&CpuStorage, &Layout),
    y: (&CpuStorage, &Layout),
    g: (&CpuStorage, &Layout),
) -> Result<CpuStorage> {
    float_only("unary_backward", x.0.dtype())?;
    let (xv, yv, gv) = (x.0.f32_view(x.1), y.0.f32_view(y.1), g.0.f32_view(g.1));
    let mut out = filled(xv.len(), 0f32)?;
    parallel::install(|| {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(xv.par_chunks(PAR_CHUNK).zip(yv.par_chunks(PAR_CHUNK).zip(gv.par_chunks(PAR_CHUNK))))
            .for_each(|(o, (x, (y, g)))| {
                for i in 0..o.len() {
                    o[i] = g[i] * op.derivative_f32(x[i], y[i]);
                }
            })
    });
    Ok(CpuStorage::from_f32(x.0.dtype(), out))
}

/// Dropout's forward and backward: x * mask, with the mask regenerated from (p, seed)
/// element by element (see `Tensor::dropout`); nothing mask-sized is allocated.
pub fn dropout(s: &CpuStorage, l: &Layout, p: f32, seed: u64) -> Result<CpuStorage> {
    float_only("dropout", s.dtype())?;
    let x = s.f32_view(l);
    let mut out = filled(x.len(), 0f32)?;
    let scale = 1.0 / (1.0 - p);
    parallel::install(|| {
        out.par_chunks_mut(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK)).enumerate().for_each(|(c, (o, x))| {
            let base = (c * PAR_CHUNK) as u64;
            for (j, (o, &x)) in o.iter_mut().zip(x).enumerate() {
                *o = if uniform_at(seed, base + j as u64) >= p { x * scale } else { 0.0 };
            }
        })
    });
    Ok(CpuStorage::from_f32(s.dtype(), out))
}

/// How one operand of a binary kernel is read.
enum Operand<'a> {
    /// Every element present, row-major.
    Full(Cow<'a, [f32]>),
    /// One value broadcast everywhere.
    Scalar(f32),
    /// One row of the last dim, repeated for every leading index.
    Row(Cow<'a, [f32]>),
}

fn operand<'a>(s: &'a CpuStorage, l: &Layout) -> Operand<'a> {
    let r = l.rank();
    if r > 0 && l.numel() > 1 {
        let strides = l.strides();
        if strides.iter().all(|&st| st == 0) {
            let one = Layout::new(vec![], vec![], l.offset());
            return Operand::Scalar(s.f32_view(&one)[0]);
        }
        if r > 1 && strides[..r - 1].iter().all(|&st| st == 0) {
            let row = Layout::new(vec![l.shape()[r - 1]], vec![strides[r - 1]], l.offset());
            return Operand::Row(s.f32_view(&row));
        }
    }
    Operand::Full(s.f32_view(l))
}

pub fn binary(a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout, op: BinaryOp) -> Result<CpuStorage> {
    float_only("binary", a.dtype())?;
    let n = la.numel();
    let (isa, store) = (isa::active(), Store::for_output(n));
    let row = la.shape().last().copied().unwrap_or(1).max(1);
    let (x, y) = (operand(a, la), operand(b, lb));
    let out = write_output(n, |out| {
        parallel::install(|| match (x, y) {
            (Operand::Full(x), Operand::Full(y)) => out
                .par_chunks_mut(PAR_CHUNK)
                .zip(x.par_chunks(PAR_CHUNK).zip(y.par_chunks(PAR_CHUNK)))
                .for_each(|(o, (x, y))| simd::binary(isa, op, x, y, o, store)),
            (Operand::Full(x), Operand::Scalar(y)) => out
                .par_chunks_mut(PAR_CHUNK)
                .zip(x.par_chunks(PAR_CHUNK))
                .for_each(|(o, x)| simd::binary_scalar_rhs(isa, op, x, y, o, store)),
            (Operand::Scalar(x), Operand::Full(y)) => out
                .par_chunks_mut(PAR_CHUNK)
                .zip(y.par_chunks(PAR_CHUNK))
                .for_each(|(o, y)| simd::binary_scalar_lhs(isa, op, x, y, o, store)),
            (Operand::Full(x), Operand::Row(y)) => {
                out.par_chunks_mut(row).zip(x.par_chunks(row)).for_each(|(o, x)| simd::binary(isa, op, x, &y, o, store))
            }
            (Operand::Row(x), Operand::Full(y)) => {
                out.par_chunks_mut(row).zip(y.par_chunks(row)).for_each(|(o, y)| simd::binary(isa, op, &x, y, o, store))
            }
            (x, y) => {
                // Rare mixes (row op row, scalar op row...): expand both and use the full path.
                let (x, y) = (expand(x, n, row), expand(y, n, row));
                out.par_chunks_mut(PAR_CHUNK)
                    .zip(x.par_chunks(PAR_CHUNK).zip(y.par_chunks(PAR_CHUNK)))
                    .for_each(|(o, (x, y))| simd::binary(isa, op, x, y, o, store))
            }
        })
    })?;
    Ok(CpuStorage::from_f32(a.dtype(), out))
}

fn expand(o: Operand<'_>, n: usize, row: usize) -> Vec<f32> {
    match o {
        Operand::Full(v) => v.into_owned(),
        Operand::Scalar(v) => vec![v; n],
        Operand::Row(r) => (0..n).map(|i| r[i % row]).collect(),
    }
}

pub fn cmp(a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout, op: CmpOp) -> Result<CpuStorage> {
    float_only("cmp", a.dtype())?;
    let mut out = filled(la.numel(), 0f32)?;
    let (x, y) = (a.f32_view(la), b.f32_view(lb));
    parallel::install(|| {
        out.par_chunks_mut(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK).zip(y.par_chunks(PAR_CHUNK))).for_each(
            |(o, (x, y))| {
                for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
                    *o = if op.eval_f32(x, y) { 1.0 } else { 0.0 };
                }
            },
        )
    });
    Ok(CpuStorage::from_f32(a.dtype(), out))
}

/// `cond != 0 ? a : b`, elementwise (all three already broadcast to one shape).
pub fn where_cond(
    c: &CpuStorage,
    lc: &Layout,
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> Result<CpuStorage> {
    float_only("where", a.dtype())?;
    let mut out = filled(la.numel(), 0f32)?;
    let (c, x, y) = (c.f32_view(lc), a.f32_view(la), b.f32_view(lb));
    parallel::install(|| {
        out.par_chunks_mut(PAR_CHUNK)
            .zip(c.par_chunks(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK).zip(y.par_chunks(PAR_CHUNK))))
            .for_each(|(o, (c, (x, y)))| {
                for i in 0..o.len() {
                    o[i] = if c[i] != 0.0 { x[i] } else { y[i] };
                }
            })
    });
    Ok(CpuStorage::from_f32(a.dtype(), out))
}
