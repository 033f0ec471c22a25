//! Batched matmul over broadcast batch dims. f32 operands are read in place through their
//! strides (a transposed view costs no copy: the GEMM packs through any strides);
//! f16/bf16 are widened to f32 first.

use super::gemm::{sgemm, MatRef};
use super::{float_only, isa, parallel};
use crate::error::Result;
use crate::storage::{filled, CpuStorage};
use crate::Layout;
use rayon::prelude::*;
use std::borrow::Cow;

/// a: (batch..., m, k), b: (batch..., k, n), both already broadcast to the same batch
/// dims. Returns the contiguous (batch..., m, n) product.
pub fn matmul(a: &CpuStorage, la: &Layout, b: &CpuStorage, lb: &Layout) -> Result<CpuStorage> {
    float_only("matmul", a.dtype())?;
    let r = la.rank();
    let (m, k, n) = (la.shape()[r - 2], la.shape()[r - 1], lb.shape()[r - 1]);
    let batch: usize = la.shape()[..r - 2].iter().product();
    let mut out = filled(batch.saturating_mul(m).saturating_mul(n), 0f32)?;
    let (a_data, la) = widen(a, la);
    let (b_data, lb) = widen(b, lb);
    let (a_offsets, b_offsets) = (batch_offsets(&la), batch_offsets(&lb));
    let isa = isa::active();
    let (ars, acs) = (la.strides()[r - 2], la.strides()[r - 1]);
    let (brs, bcs) = (lb.strides()[r - 2], lb.strides()[r - 1]);
    if m * n > 0 {
        parallel::install(|| {
            out.par_chunks_mut(m * n).enumerate().for_each(|(i, c)| {
                let am = MatRef { data: &a_data, offset: a_offsets[i], row_stride: ars, col_stride: acs };
                let bm = MatRef { data: &b_data, offset: b_offsets[i], row_stride: brs, col_stride: bcs };
                sgemm(isa, m, n, k, 1.0, am, bm, 0.0, c, n);
            })
        });
    }
    Ok(CpuStorage::from_f32(a.dtype(), out))
}

/// The f32 data and the layout to read it with.
fn widen<'a>(s: &'a CpuStorage, l: &Layout) -> (Cow<'a, [f32]>, Layout) {
    match s.as_f32_slice() {
        Some(v) => (Cow::Borrowed(v), l.clone()),
        None => (s.f32_view(l), Layout::contiguous(l.shape())),
    }
}

/// Storage offset of each matrix in the batch, in row-major batch order.
fn batch_offsets(l: &Layout) -> Vec<usize> {
    let r = l.rank();
    Layout::new(l.shape()[..r - 2].to_vec(), l.strides()[..r - 2].to_vec(), l.offset()).offsets().collect()
}
