//! f32 matrix multiply: `C = alpha * A * B + beta * C`.
//!
//! Layout (GotoBLAS/BLIS): C is split into one rectangle per thread, each computed without
//! synchronisation. Within a rectangle, for each NC-wide column block and KC-deep slice of k,
//! its part of B is packed into NR-wide panels (`pack.rs`), then each MC-tall row block of A
//! is packed into MR-tall panels and an MR x NR register-blocked micro-kernel runs over them
//! (`kernel_simd.rs`: AVX-512, AVX2 and NEON tiles from one generic loop; `kernel_portable.rs`). The loops live in
//! `driver.rs`. Tiny and single-row products skip packing (`small.rs`). A researcher's own
//! micro-kernel can take the level's place (`custom.rs`: `GemmMicroKernel`, `set_custom_kernel`).
//!
//! Operands are read through arbitrary strides, so transposed or broadcast (stride 0)
//! operands need no copy. Results depend only on the inputs and the isa, never on the
//! rayon thread count (see [`sgemm`]).

mod custom;
mod driver;
mod kernel_portable;
mod kernel_simd;
mod pack;
mod small;
#[cfg(test)]
mod tests;

pub use custom::{custom_kernel, set_custom_kernel, CustomKernel, GemmMicroKernel};

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
/// `isa` picks the micro-kernel (normally `isa::active()`; a level the CPU lacks runs the
/// portable kernel), unless one is registered with [`set_custom_kernel`].
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
    // A registered micro-kernel runs every product, small ones too, so a check of small
    // shapes checks it.
    if let Some(kern) = custom::registered() {
        return driver::run(&kern, m, n, k, alpha, a, b, beta, c, ldc);
    }
    // Single rows (GEMV) too: packing B would triple the memory traffic of a memory-bound op.
    if m * n * k <= SMALL_MNK || m == 1 {
        small::sgemm_small(m, n, k, alpha, a, b, beta, c, ldc);
        return;
    }
    #[cfg(test)]
    if let Some(kern) = PINNED.with(|p| p.get()) {
        return driver::run(kern, m, n, k, alpha, a, b, beta, c, ldc);
    }
    driver::run(kernel_for(isa), m, n, k, alpha, a, b, beta, c, ldc);
}

#[cfg(test)]
thread_local! {
    /// A micro-kernel the tests run in place of the level's choice (see `pin_kernel`).
    static PINNED: std::cell::Cell<Option<&'static driver::Kernel>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with the AVX-512 tile pinned (when `avx512_tile`) for `sgemm` calls made on this
/// thread, so tests cover it on CPUs where the AVX-512 level picks another tile.
#[cfg(test)]
fn pin_kernel(avx512_tile: bool, f: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    PINNED.with(|p| p.set(avx512_tile.then_some(&kernel_simd::AVX512)));
    #[cfg(not(target_arch = "x86_64"))]
    let _ = avx512_tile;
    f();
    PINNED.with(|p| p.set(None));
}

/// The micro-kernel of a level (the portable one where the level has none, or the CPU
/// lacks it: `isa` comes from `isa::active()`, which never names an unsupported level,
/// and the check here keeps a stray value from faulting).
fn kernel_for(isa: Isa) -> &'static driver::Kernel {
    match isa {
        // Zen 4 runs a 512-bit FMA as two 256-bit halves: the same FMA rate as AVX2, and
        // there the 6 x 16 AVX2 tile measured 5-10% faster than every AVX-512 tile tried
        // (12 x 32, 14 x 32, 8 x 32, 6 x 64; 2 threads, 1024^3 and 2048^3, GFLOP per
        // CPU-second on a loaded machine: docs/PERF.md).
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if isa.supported() && !crate::cpu::isa::avx512_split_fma() => &kernel_simd::AVX512,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2Fma | Isa::Avx512 if Isa::Avx2Fma.supported() => &kernel_simd::AVX2,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if isa.supported() => &kernel_simd::NEON,
        _ => &kernel_portable::KERNEL,
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
