//! Reductions over a set of axes: the reduced axes are moved last (a view), so each output
//! element reduces one contiguous row with a SIMD kernel.

use super::{float_only, isa, parallel, rows_per_task, simd};
use crate::error::Result;
use crate::ops::ReduceOp;
use crate::storage::CpuStorage;
use crate::Layout;
use rayon::prelude::*;

/// Reduce `axes` (sorted, unique) away; the result has the kept dims in order.
pub fn reduce(s: &CpuStorage, l: &Layout, op: ReduceOp, axes: &[usize]) -> Result<CpuStorage> {
    float_only("reduce", s.dtype())?;
    let kept: Vec<usize> = (0..l.rank()).filter(|d| !axes.contains(d)).collect();
    let order: Vec<usize> = kept.iter().chain(axes.iter()).copied().collect();
    let moved = l.permute(&order)?;
    let row: usize = axes.iter().map(|&a| l.shape()[a]).product();
    let outer: usize = kept.iter().map(|&a| l.shape()[a]).product();
    let x = s.f32_view(&moved);
    let mut out = vec![0f32; outer];
    let isa = isa::active();
    let reduce_row = |r: &[f32]| -> f32 {
        match op {
            ReduceOp::Sum => simd::sum(isa, r),
            ReduceOp::Max => simd::max(isa, r),
            ReduceOp::Min => {
                r.iter().fold(f32::INFINITY, |m, &v| if v.is_nan() || m.is_nan() { f32::NAN } else { m.min(v) })
            }
        }
    };
    if row == 0 {
        let identity = match op {
            ReduceOp::Sum => 0.0,
            ReduceOp::Max => f32::NEG_INFINITY,
            ReduceOp::Min => f32::INFINITY,
        };
        out.iter_mut().for_each(|o| *o = identity);
    } else {
        let per = rows_per_task(row);
        parallel::install(|| {
            out.par_chunks_mut(per).enumerate().for_each(|(t, o)| {
                for (i, o) in o.iter_mut().enumerate() {
                    let r = (t * per + i) * row;
                    *o = reduce_row(&x[r..r + row]);
                }
            })
        });
    }
    Ok(CpuStorage::from_f32(s.dtype(), out))
}
