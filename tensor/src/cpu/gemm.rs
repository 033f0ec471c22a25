//! f32 matrix multiply: `C = alpha * A * B + beta * C`.
//!
//! Layout (GotoBLAS/BLIS): C is split into one rectangle per thread, each computed without
//! synchronisation. Within a rectangle, for each NC-wide column block and KC-deep slice of k,
//! its part of B is packed into NR-wide panels (`pack.rs`), then each MC-tall row block of A
//! is packed into MR-tall panels and an MR x NR register-blocked micro-kernel runs over them
//! (`kernel_avx2.rs`, `kernel_portable.rs`). The loops live in `driver.rs`. Tiny and single-row products skip packing (`small.rs`).
//!
//! Operands are read through arbitrary strides, so transposed or broadcast (stride 0)
//! operands need no copy. Results depend only on the inputs and the isa, never on the
//! rayon thread count (see [`sgemm`]).

mod driver;
mod kernel_avx2;
mod kernel_portable;
mod pack;
mod small;
#[cfg(test)]
mod tests;

use crate::cpu::isa::Isa;

/// A read-only strided view of a matrix: element (i, j) is
/// `data[offset + i * row_stride + j * col_stride]`.
///
/// Row/column strides in elements; any non-negative strides are allowed (transposed operands
/// need no copy: packing reads through the strides).
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// Element (i, j). Bounds were checked once for the whole view by [`check_view`].
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[self.offset + i * self.row_stride + j * self.col_stride]
    }
}

/// Panics unless every element of a `rows x cols` view lies inside `m.data`.
fn check_view(name: &str, m: &MatRef, rows: usize, cols: usize) {
    if rows == 0 || cols == 0 {
        return;
    }
    let last = (rows - 1)
        .checked_mul(m.row_stride)
        .and_then(|r| (cols - 1).checked_mul(m.col_stride).and_then(|c| r.checked_add(c)))
        .and_then(|x| x.checked_add(m.offset));
    match last {
        Some(last) if last < m.data.len() => {}
        _ => panic!(
            "sgemm: {name} view {rows}x{cols} (offset {}, strides {}x{}) exceeds its {} elements",
            m.offset,
            m.row_stride,
            m.col_stride,
            m.data.len()
        ),
    }
}

/// At or below this many multiply-adds the unpacked loop wins (measured: the packed path is
/// already 2x faster at 12^3 and 4x at 24^3).
const SMALL_MNK: usize = 8 * 8 * 8;

/// C[m x n] (row-major, leading dimension ldc, contiguous columns) = alpha * A[m x k] * B[k x n] + beta * C.
/// beta==0 means C is overwritten without reading (so NaN garbage in C is ignored).
///
/// `isa` picks the micro-kernel; `Isa::Avx2Fma` must only be passed when the CPU has AVX2
/// and FMA (it comes from `isa::active()`); this is checked with a debug assertion.
///
/// Work runs on the current rayon pool (`rayon::current_num_threads()`); with one thread no
/// parallel machinery is touched. Work is split over rectangles of C only, never over k, and the
/// k-blocking is fixed, so every element of C sees the same operations in the same order
/// whatever the thread count: results are bitwise identical for 1, 2 or N threads.
///
/// Panics if a view reaches outside its slice, if `ldc < n`, or if `c` is too short.
#[allow(clippy::too_many_arguments)]
pub fn sgemm(
    isa: Isa,
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
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n, "sgemm: ldc {ldc} < n {n}");
    assert!(c.len() >= (m - 1) * ldc + n, "sgemm: c has {} elements, needs {}", c.len(), (m - 1) * ldc + n);
    check_view("A", &a, m, k);
    check_view("B", &b, k, n);

    if k == 0 || alpha == 0.0 {
        // A*B contributes nothing: C = beta * C (beta == 0 writes zeros, ignoring NaNs in C).
        for row in c.chunks_mut(ldc).take(m) {
            scale_row(&mut row[..n], beta);
        }
        return;
    }
    // Single rows (GEMV) too: packing B would triple the memory traffic of a memory-bound op.
    if m * n * k <= SMALL_MNK || m == 1 {
        small::sgemm_small(m, n, k, alpha, a, b, beta, c, ldc);
        return;
    }
    match isa {
        Isa::Avx2Fma => {
            #[cfg(target_arch = "x86_64")]
            {
                debug_assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
                driver::run(&kernel_avx2::KERNEL, m, n, k, alpha, a, b, beta, c, ldc);
            }
            #[cfg(not(target_arch = "x86_64"))]
            driver::run(&kernel_portable::KERNEL, m, n, k, alpha, a, b, beta, c, ldc);
        }
        Isa::Portable => driver::run(&kernel_portable::KERNEL, m, n, k, alpha, a, b, beta, c, ldc),
    }
}

/// `row = beta * row`, where beta == 0 overwrites (0 * NaN would stay NaN).
fn scale_row(row: &mut [f32], beta: f32) {
    if beta == 0.0 {
        row.fill(0.0);
    } else if beta != 1.0 {
        row.iter_mut().for_each(|x| *x *= beta);
    }
}
