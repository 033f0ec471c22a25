//! Packing: copy a block of A or B into the exact order the micro-kernel reads it, so the
//! kernel's loads are sequential and unit-stride whatever the source strides were.
//!
//! A panel (MR rows x kc): `dst[p * MR + r] = alpha * A[i0 + r, p0 + p]`, rows >= the
//!   panel's real height are zero, so edge tiles run the same kernel.
//! B panel (kc x NR cols): `dst[p * NR + c] = B[p0 + p, j0 + c]`, padded columns zero.
//!
//! alpha is folded into A here (mc*kc multiplies instead of m*n per k block).
//! Each function has a fast path for the two common layouts (unit stride along the copied
//! row, or along k) and a general path for anything else, e.g. stride-0 broadcasts.

use super::MatRef;

/// A block of A: rows `i0..i0 + rows`, k range `p0..p0 + kc`, as ceil(rows / mr) panels of
/// `mr * kc` floats each, back to back in `dst`.
#[allow(clippy::too_many_arguments)]
pub(super) fn pack_a(
    a: &MatRef,
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    mr: usize,
    alpha: f32,
    dst: &mut [f32],
) {
    for (ip, panel) in dst.chunks_exact_mut(mr * kc).take(rows.div_ceil(mr)).enumerate() {
        let r0 = ip * mr;
        pack_a_panel(a, i0 + r0, (rows - r0).min(mr), p0, kc, mr, alpha, panel);
    }
}

#[allow(clippy::too_many_arguments)]
fn pack_a_panel(a: &MatRef, i0: usize, h: usize, p0: usize, kc: usize, mr: usize, alpha: f32, dst: &mut [f32]) {
    let dst = &mut dst[..mr * kc];
    if h < mr {
        dst.fill(0.0);
    }
    let base = a.offset + i0 * a.row_stride + p0 * a.col_stride;
    if a.col_stride == 1 {
        // Row-major A: each source row is contiguous along k; scatter it with stride mr.
        for r in 0..h {
            let start = base + r * a.row_stride;
            let src = &a.data[start..start + kc];
            for (p, &x) in src.iter().enumerate() {
                dst[p * mr + r] = alpha * x;
            }
        }
    } else if a.row_stride == 1 {
        // Transposed A (columns contiguous): each k step is one contiguous run of h rows.
        for (p, out) in dst.chunks_exact_mut(mr).enumerate() {
            let start = base + p * a.col_stride;
            let src = &a.data[start..start + h];
            out[..h].iter_mut().zip(src).for_each(|(o, &x)| *o = alpha * x);
        }
    } else {
        for (p, out) in dst.chunks_exact_mut(mr).enumerate() {
            for (r, o) in out[..h].iter_mut().enumerate() {
                *o = alpha * a.data[base + r * a.row_stride + p * a.col_stride];
            }
        }
    }
}

/// One B panel: k range `p0..p0 + kc`, columns `j0..j0 + w` (w <= nr), into `nr * kc` floats.
pub(super) fn pack_b_panel(b: &MatRef, p0: usize, kc: usize, j0: usize, w: usize, nr: usize, dst: &mut [f32]) {
    let dst = &mut dst[..nr * kc];
    if w < nr {
        dst.fill(0.0);
    }
    let base = b.offset + p0 * b.row_stride + j0 * b.col_stride;
    if b.col_stride == 1 {
        // Row-major B: each k step copies w contiguous floats.
        for (p, out) in dst.chunks_exact_mut(nr).enumerate() {
            let start = base + p * b.row_stride;
            out[..w].copy_from_slice(&b.data[start..start + w]);
        }
    } else if b.row_stride == 1 {
        // Transposed B (e.g. x * W^T with W row-major): each column is contiguous along k.
        for c in 0..w {
            let start = base + c * b.col_stride;
            let src = &b.data[start..start + kc];
            for (p, &x) in src.iter().enumerate() {
                dst[p * nr + c] = x;
            }
        }
    } else {
        for (p, out) in dst.chunks_exact_mut(nr).enumerate() {
            for (c, o) in out[..w].iter_mut().enumerate() {
                *o = b.data[base + p * b.row_stride + c * b.col_stride];
            }
        }
    }
}
