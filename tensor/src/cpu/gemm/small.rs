//! Unpacked path for tiny products (m*n*k up to a few thousand) and for single-row
//! products (m == 1, GEMV-shaped: decoding one token), where packing B would cost more
//! memory traffic than the arithmetic itself.
//!
//! Each C element is computed by one fixed loop whatever the split, so splitting columns
//! over threads (large m == 1 products only) keeps results independent of the thread count.

use rayon::prelude::*;

use super::MatRef;

/// Multiply-adds below which the single-row path stays on one thread.
const PAR_MIN_NK: usize = 1 << 18;
/// Columns per parallel chunk of a single-row product.
const PAR_CHUNK: usize = 256;

/// Same contract as [`super::sgemm`]; views were bounds-checked by the caller, m, n, k > 0.
#[allow(clippy::too_many_arguments)]
pub(super) fn sgemm_small(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: MatRef,
    b: MatRef,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    if m == 1 && n * k >= PAR_MIN_NK && rayon::current_num_threads() > 1 {
        c[..n].par_chunks_mut(PAR_CHUNK).enumerate().for_each(|(t, row)| {
            row_block(0, t * PAR_CHUNK, k, alpha, &a, &b, beta, row);
        });
        return;
    }
    for i in 0..m {
        row_block(i, 0, k, alpha, &a, &b, beta, &mut c[i * ldc..i * ldc + n]);
    }
}

/// `out[jj] = alpha * sum_p A[i, p] * B[p, j0 + jj] + beta * out[jj]` (beta == 0: overwrite).
#[allow(clippy::too_many_arguments)]
fn row_block(i: usize, j0: usize, k: usize, alpha: f32, a: &MatRef, b: &MatRef, beta: f32, out: &mut [f32]) {
    let store = |o: &mut f32, s: f32| *o = if beta == 0.0 { alpha * s } else { alpha * s + beta * *o };
    if b.col_stride == 1 {
        // B rows contiguous: accumulate rank-1 updates over k; the j loop vectorises.
        let mut acc = [0.0f32; PAR_CHUNK];
        for (jc, out) in out.chunks_mut(PAR_CHUNK).enumerate() {
            let acc = &mut acc[..out.len()];
            acc.fill(0.0);
            for p in 0..k {
                let aip = a.at(i, p);
                let s = b.offset + p * b.row_stride + j0 + jc * PAR_CHUNK;
                acc.iter_mut().zip(&b.data[s..s + out.len()]).for_each(|(x, &y)| *x += aip * y);
            }
            out.iter_mut().zip(acc.iter()).for_each(|(o, &s)| store(o, s));
        }
    } else if b.row_stride == 1 && a.col_stride == 1 {
        // B columns contiguous in k (x * W^T with W row-major) and A's row contiguous: dots.
        let ar = &a.data[a.offset + i * a.row_stride..][..k];
        for (jj, o) in out.iter_mut().enumerate() {
            let s = b.offset + (j0 + jj) * b.col_stride;
            store(o, dot(ar, &b.data[s..s + k]));
        }
    } else {
        for (jj, o) in out.iter_mut().enumerate() {
            let s = (0..k).fold(0.0f32, |s, p| s + a.at(i, p) * b.at(p, j0 + jj));
            store(o, s);
        }
    }
}

/// Dot product with 16 independent partial sums (vectorisable without reassociating floats).
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 16];
    let (xc, yc) = (x.chunks_exact(16), y.chunks_exact(16));
    let tail: f32 = xc.remainder().iter().zip(yc.remainder()).map(|(a, b)| a * b).sum();
    for (xs, ys) in xc.zip(yc) {
        for l in 0..16 {
            acc[l] += xs[l] * ys[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}
