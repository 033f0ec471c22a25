//! Row kernels over the last dim: softmax/log_softmax, layer_norm, rms_norm, and the
//! fused cross-entropy forward and backward. Each row is read once into cache and finished there.

use super::simd::Store;
use super::{float_only, isa, parallel, rows_per_task, simd, write_output};
use crate::error::{Error, Result};
use crate::storage::{filled, CpuStorage};
use crate::Layout;
use rayon::prelude::*;

fn last_dim(l: &Layout) -> usize {
    l.shape().last().copied().unwrap_or(1)
}

/// softmax (or log_softmax) over the last dim.
pub fn softmax_last(s: &CpuStorage, l: &Layout, log: bool) -> Result<CpuStorage> {
    float_only("softmax", s.dtype())?;
    let d = last_dim(l);
    let x = s.f32_view(l);
    let (isa, store) = (isa::active(), Store::for_output(x.len()));
    let out = write_output(x.len(), |out| {
        if d == 0 {
            return;
        }
        let per = rows_per_task(d) * d;
        parallel::install(|| {
            out.par_chunks_mut(per).zip(x.par_chunks(per)).for_each(|(o, x)| {
                for (o, x) in o.chunks_mut(d).zip(x.chunks(d)) {
                    if log {
                        simd::log_softmax_row(isa, x, o, store)
                    } else {
                        simd::softmax_row(isa, x, o, store)
                    }
                }
            })
        });
    })?;
    Ok(CpuStorage::from_f32(s.dtype(), out))
}

/// Returns (y, mean, rstd); mean and rstd have one f32 per row.
pub fn layer_norm(
    x: &CpuStorage,
    lx: &Layout,
    w: Option<(&CpuStorage, &Layout)>,
    b: Option<(&CpuStorage, &Layout)>,
    eps: f32,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    float_only("layer_norm", x.dtype())?;
    let d = last_dim(lx);
    let xv = x.f32_view(lx);
    let wv = w.map(|(s, l)| s.f32_view(l));
    let bv = b.map(|(s, l)| s.f32_view(l));
    let rows = xv.len().checked_div(d).unwrap_or(0);
    let mut stats = vec![(0f32, 0f32); rows];
    let (isa, store) = (isa::active(), Store::for_output(xv.len()));
    let out = write_output(xv.len(), |out| {
        if d == 0 {
            return;
        }
        let per = rows_per_task(d);
        parallel::install(|| {
            out.par_chunks_mut(per * d).zip(xv.par_chunks(per * d)).zip(stats.par_chunks_mut(per)).for_each(
                |((o, x), st)| {
                    for ((o, x), st) in o.chunks_mut(d).zip(x.chunks(d)).zip(st.iter_mut()) {
                        *st = simd::layer_norm_row(isa, x, wv.as_deref(), bv.as_deref(), eps, o, store);
                    }
                },
            )
        });
    })?;
    let (mean, rstd): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    Ok((CpuStorage::from_f32(x.dtype(), out), CpuStorage::F32(mean), CpuStorage::F32(rstd)))
}

/// Returns (y, rstd), rstd one f32 per row.
pub fn rms_norm(
    x: &CpuStorage,
    lx: &Layout,
    w: Option<(&CpuStorage, &Layout)>,
    eps: f32,
) -> Result<(CpuStorage, CpuStorage)> {
    float_only("rms_norm", x.dtype())?;
    let d = last_dim(lx);
    let xv = x.f32_view(lx);
    let wv = w.map(|(s, l)| s.f32_view(l));
    let rows = xv.len().checked_div(d).unwrap_or(0);
    let mut rstd = vec![0f32; rows];
    let (isa, store) = (isa::active(), Store::for_output(xv.len()));
    let out = write_output(xv.len(), |out| {
        if d == 0 {
            return;
        }
        let per = rows_per_task(d);
        parallel::install(|| {
            out.par_chunks_mut(per * d).zip(xv.par_chunks(per * d)).zip(rstd.par_chunks_mut(per)).for_each(
                |((o, x), r)| {
                    for ((o, x), r) in o.chunks_mut(d).zip(x.chunks(d)).zip(r.iter_mut()) {
                        *r = simd::rms_norm_row(isa, x, wv.as_deref(), eps, o, store);
                    }
                },
            )
        });
    })?;
    Ok((CpuStorage::from_f32(x.dtype(), out), CpuStorage::F32(rstd)))
}

/// Mean over non-ignored rows of logsumexp(z) - z[target]. logits: (N, C); targets: N ids.
/// NaN when every row is ignored (0/0, as PyTorch).
pub fn cross_entropy(logits: &CpuStorage, l: &Layout, targets: &[i64], ignore_index: i64) -> Result<f32> {
    float_only("cross_entropy", logits.dtype())?;
    let c = l.shape()[1];
    for &t in targets {
        if t != ignore_index && (t < 0 || t as usize >= c) {
            return Err(Error::IndexOutOfRange { op: "cross_entropy", index: t, size: c });
        }
    }
    let z = logits.f32_view(l);
    let isa = isa::active();
    let (total, count) = parallel::install(|| {
        targets
            .par_iter()
            .enumerate()
            .filter(|(_, &t)| t != ignore_index)
            .map(|(i, &t)| {
                let row = &z[i * c..(i + 1) * c];
                let m = simd::max(isa, row);
                let s: f64 = row.iter().map(|&v| ((v - m) as f64).exp()).sum();
                (m as f64 + s.ln() - row[t as usize] as f64, 1usize)
            })
            .reduce(|| (0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    Ok((total / count as f64) as f32)
}

/// d(mean cross-entropy)/d(logits) times the scalar upstream gradient `g`, in one pass per
/// row: (softmax(z) - onehot(target)) * g / count, zero on ignored rows. Why fused: the
/// composite form materialised a one-hot, a validity mask and four logits-sized temporaries
/// (50 MB each for SmolLM2's 49k vocabulary over 256 tokens), and faulting those pages in
/// cost more than the arithmetic.
pub fn cross_entropy_backward(
    logits: &CpuStorage,
    l: &Layout,
    targets: &[i64],
    ignore_index: i64,
    g: f32,
) -> Result<CpuStorage> {
    float_only("cross_entropy_backward", logits.dtype())?;
    let c = l.shape()[1];
    for &t in targets {
        if t != ignore_index && (t < 0 || t as usize >= c) {
            return Err(Error::IndexOutOfRange { op: "cross_entropy_backward", index: t, size: c });
        }
    }
    let count = targets.iter().filter(|&&t| t != ignore_index).count().max(1);
    let scale = g / count as f32;
    let z = logits.f32_view(l);
    let mut out = filled(z.len(), 0f32)?;
    let isa = isa::active();
    if c > 0 {
        parallel::install(|| {
            out.par_chunks_mut(c).zip(z.par_chunks(c)).zip(targets.par_iter()).for_each(|((o, row), &t)| {
                if t == ignore_index {
                    return;
                }
                simd::softmax_row(isa, row, o, Store::Cached);
                o[t as usize] -= 1.0;
                o.iter_mut().for_each(|v| *v *= scale);
            })
        });
    }
    Ok(CpuStorage::from_f32(logits.dtype(), out))
}
