//! Unpacked path for tiny products (m*n*k up to a few thousand), where packing and the
//! parallel machinery cost more than the arithmetic. Single-threaded, so trivially
//! independent of the thread count.

use super::MatRef;

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
    // One row of A*B at a time, accumulated as rank-1 updates over k (row i of C:
    // acc[j] = sum_p A[i,p] * B[p,j]); the j loop vectorises when B's rows are contiguous.
    let mut acc = vec![0.0f32; n];
    for i in 0..m {
        acc.fill(0.0);
        for p in 0..k {
            let aip = a.at(i, p);
            if b.col_stride == 1 {
                let start = b.offset + p * b.row_stride;
                let brow = &b.data[start..start + n];
                acc.iter_mut().zip(brow).for_each(|(s, &x)| *s += aip * x);
            } else {
                for (j, s) in acc.iter_mut().enumerate() {
                    *s += aip * b.at(p, j);
                }
            }
        }
        let crow = &mut c[i * ldc..i * ldc + n];
        if beta == 0.0 {
            crow.iter_mut().zip(&acc).for_each(|(x, &s)| *x = alpha * s);
        } else {
            crow.iter_mut().zip(&acc).for_each(|(x, &s)| *x = alpha * s + beta * *x);
        }
    }
}
