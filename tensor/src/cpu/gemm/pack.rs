//! Packing: copy a block of A or B into the exact order the micro-kernel reads it, so the
//! kernel's loads are sequential and unit-stride whatever the source strides were.
//!
//! A panel (MR rows x kc): `dst[p * MR + r] = alpha * A[i0 + r, p0 + p]`, rows >= the
//!   panel's real height are zero, so edge tiles run the same kernel.
//! B panel (kc x NR cols): `dst[p * NR + c] = B[p0 + p, j0 + c]`, padded columns zero.
//!
//! alpha is folded into A here (mc*kc multiplies instead of m*n per k block).
//! MR/NR are const generics so the inner copies are fixed-size (no memcpy calls, no bounds
//! checks). Each function has fast paths for the two common layouts (unit stride along the
//! packed row, or along k) and a general path for anything else, e.g. stride-0 broadcasts.
//! Sources are read in long unit-stride runs where possible: strided reads that touch a
//! new page per element were the main packing cost at 1024^3.

use super::MatRef;

/// A block of A: rows `i0..i0 + rows`, k range `p0..p0 + kc`, as ceil(rows / MR) panels of
/// `MR * kc` floats each, back to back in `dst`.
pub(super) fn pack_a<const MR: usize>(
    a: &MatRef,
    i0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
    alpha: f32,
    dst: &mut [f32],
) {
    for (ip, panel) in dst.chunks_exact_mut(MR * kc).take(rows.div_ceil(MR)).enumerate() {
        let r0 = ip * MR;
        pack_a_panel::<MR>(a, i0 + r0, (rows - r0).min(MR), p0, kc, alpha, panel);
    }
}

fn pack_a_panel<const MR: usize>(a: &MatRef, i0: usize, h: usize, p0: usize, kc: usize, alpha: f32, dst: &mut [f32]) {
    let dst = &mut dst[..MR * kc];
    let base = a.offset + i0 * a.row_stride + p0 * a.col_stride;
    if h == MR && a.col_stride == 1 {
        // Row-major A, full panel: read MR rows side by side (MR unit-stride streams),
        // write the panel sequentially.
        let src: [&[f32]; MR] = std::array::from_fn(|r| {
            let s = base + r * a.row_stride;
            &a.data[s..s + kc]
        });
        for (p, out) in dst.chunks_exact_mut(MR).enumerate() {
            for r in 0..MR {
                out[r] = alpha * src[r][p];
            }
        }
        return;
    }
    if h < MR {
        dst.fill(0.0);
    }
    if a.row_stride == 1 {
        // Transposed A (columns contiguous): each k step is one contiguous run of h rows.
        for (p, out) in dst.chunks_exact_mut(MR).enumerate() {
            let start = base + p * a.col_stride;
            let src = &a.data[start..start + h];
            out[..h].iter_mut().zip(src).for_each(|(o, &x)| *o = alpha * x);
        }
    } else {
        for (p, out) in dst.chunks_exact_mut(MR).enumerate() {
            for (r, o) in out[..h].iter_mut().enumerate() {
                *o = alpha * a.data[base + r * a.row_stride + p * a.col_stride];
            }
        }
    }
}

/// A run of B panels: k range `p0..p0 + kc`, columns `j0..j0 + w`, into ceil(w / NR)
/// panels of `NR * kc` floats, back to back in `dst`.
pub(super) fn pack_b<const NR: usize>(b: &MatRef, p0: usize, kc: usize, j0: usize, w: usize, dst: &mut [f32]) {
    let panels = w.div_ceil(NR);
    let dst = &mut dst[..panels * NR * kc];
    let full = w / NR;
    if b.col_stride == 1 {
        // Row-major B: walk each source row once, contiguously, dealing NR-wide pieces out
        // to the panels (one sequential write stream per panel).
        for p in 0..kc {
            let s = b.offset + (p0 + p) * b.row_stride + j0;
            let row = &b.data[s..s + w];
            for (q, piece) in row.chunks_exact(NR).enumerate() {
                let d = q * NR * kc + p * NR;
                dst[d..d + NR].copy_from_slice(piece);
            }
        }
        if full < panels {
            let tail = &mut dst[full * NR * kc..];
            tail.fill(0.0);
            for p in 0..kc {
                let s = b.offset + (p0 + p) * b.row_stride + j0 + full * NR;
                let piece = &b.data[s..s + (w - full * NR)];
                tail[p * NR..p * NR + piece.len()].copy_from_slice(piece);
            }
        }
        return;
    }
    for (q, panel) in dst.chunks_exact_mut(NR * kc).enumerate() {
        let jq = j0 + q * NR;
        let wq = NR.min(j0 + w - jq);
        if wq < NR {
            panel.fill(0.0);
        }
        let base = b.offset + p0 * b.row_stride + jq * b.col_stride;
        if b.row_stride == 1 {
            // Transposed B (e.g. x * W^T with W row-major): each column is contiguous in k.
            for c in 0..wq {
                let s = base + c * b.col_stride;
                for (p, &x) in b.data[s..s + kc].iter().enumerate() {
                    panel[p * NR + c] = x;
                }
            }
        } else {
            for (p, out) in panel.chunks_exact_mut(NR).enumerate() {
                for (c, o) in out[..wq].iter_mut().enumerate() {
                    *o = b.data[base + p * b.row_stride + c * b.col_stride];
                }
            }
        }
    }
}
