//! Products with a quantized weight matrix (`QMatrix`, ggml block layout), llama.cpp's way.
//!
//! `qmatmul_t`: y (m, rows) = x (m, cols) W^T. Each activation row is quantized once to
//! 8-bit groups of 32 (`act.rs`), then every output is a sum of integer dot products per
//! group, scaled in f32 (`avx2.rs`; `avx512.rs`, two groups per register and VNNI's
//! `vpdpbusd` where present; `neon.rs`, with `sdot` where present; the portable twin
//! `portable.rs`, which also documents how each block type decodes). The integer kernels cover Q4_0, Q4_1, Q5_0,
//! Q5_1, Q8_0, Q4_K, Q5_K and Q6_K; F32/F16/BF16 weights are dequantized a slab of rows at a
//! time and go through the f32 GEMM (no activation rounding for them).
//!
//! Work split: output columns (= weight rows) in contiguous ranges, a few per thread.
//! A range is walked in L2-sized slabs of weight rows; each slab meets the activations in
//! register tiles of (2 weight rows x 4 activation rows), so a weight group is unpacked
//! once per four products and the slab is read from memory once, not m times.
//!
//! `qmatmul_n`: y (m, cols) = g (m, rows) W, the backward of `qmatmul_t`: slabs of W are
//! dequantized to f32 and accumulated with the GEMM.

/// `$go!(T)` for the weight type `$ty`, `T` the block type of that name in the kernel file
/// calling it: one arm per type with an integer kernel (those `has_int_kernel` lists).
macro_rules! with_block_type {
    ($ty:expr, $go:ident) => {
        match $ty {
            GgmlType::Q4_0 => $go!(Q4_0),
            GgmlType::Q4_1 => $go!(Q4_1),
            GgmlType::Q5_0 => $go!(Q5_0),
            GgmlType::Q5_1 => $go!(Q5_1),
            GgmlType::Q8_0 => $go!(Q8_0),
            GgmlType::Q4K => $go!(Q4K),
            GgmlType::Q5K => $go!(Q5K),
            GgmlType::Q6K => $go!(Q6K),
            ty => unreachable!("qmatmul: {ty} has no integer kernel"),
        }
    };
}

/// `$go!(RW, RA)` for a tile of `$rw` weight rows x `$ra` activation rows, as const
/// generics: every size the driver asks for, `TILE_MV` (4, 1), `TILE_MM` (2, 4) and their
/// remainders.
macro_rules! with_tile_size {
    ($rw:expr, $ra:expr, $go:ident) => {
        match ($rw, $ra) {
            (1, 1) => $go!(1, 1),
            (2, 1) => $go!(2, 1),
            (3, 1) => $go!(3, 1),
            (4, 1) => $go!(4, 1),
            (1, 2) => $go!(1, 2),
            (1, 3) => $go!(1, 3),
            (1, 4) => $go!(1, 4),
            (2, 2) => $go!(2, 2),
            (2, 3) => $go!(2, 3),
            (2, 4) => $go!(2, 4),
            (r, a) => panic!("qmatmul: no {r}x{a} tile"),
        }
    };
}

// `with_tile_size` lists every tile these sizes produce.
const _: () = assert!(matches!(TILE_MV, (4, 1)) && matches!(TILE_MM, (2, 4)) && MAX_TILE == 4);

mod act;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod llama_cpp_tests;
#[cfg(target_arch = "aarch64")]
mod neon;
mod portable;
#[cfg(test)]
mod tests;

use super::gemm::{sgemm, MatRef};
use super::isa::Isa;
use super::parallel;
use crate::error::Result;
use crate::quant::{dequantize_row, GgmlType, QMatrix};
use crate::storage::filled;
use act::{Q8Acts, Q8Row};
use rayon::prelude::*;

/// The register tile, (weight rows, activation rows): (4, 1) for matrix-vector products,
/// (2, 4) otherwise. Both keep RW x RA independent FMA chains (one chain per output
/// would leave the loop bound by FMA latency: measured 1.6-1.9x slower than two) and
/// unpack each weight group once per RA products.
const TILE_MV: (usize, usize) = (4, 1);
const TILE_MM: (usize, usize) = (2, 4);
/// Largest tile side: results are stored as `out[r * MAX_TILE + j]`.
const MAX_TILE: usize = 4;
/// Target bytes of weights per parallel task: enough to hide the task overhead.
const TASK_BYTES: usize = 32 << 10;
/// Below this many weight bytes x activation rows a product runs on the calling thread.
const INLINE_BYTES: usize = 96 << 10;
/// Bytes of weights per slab that the activation tiles sweep (stays in L2).
const SLAB_BYTES: usize = 128 << 10;
/// Weight rows dequantized per step of the f32 paths (`qmatmul_n`, float weights).
const DEQUANT_ROWS: usize = 256;

/// Whether the weight type has an integer kernel (otherwise: dequantize + f32 GEMM).
fn has_int_kernel(ty: GgmlType) -> bool {
    use GgmlType::*;
    matches!(ty, Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4K | Q5K | Q6K)
}

/// True when `isa` asks for AVX2+FMA and this CPU has it, plus F16C for the block scales
/// (every AVX2 CPU has it; checked anyway so this can never fault).
#[cfg(target_arch = "x86_64")]
#[inline]
fn use_avx2(isa: Isa) -> bool {
    matches!(isa, Isa::Avx2Fma | Isa::Avx512) && Isa::Avx2Fma.supported()
}

/// Whether the AVX-512 kernels use VNNI and the NEON kernels `sdot`: when the CPU has
/// them, unless a test turned them off to cover the plain paths (Skylake-SP has AVX-512
/// without VNNI; Cortex-A72, the Raspberry Pi 4's core, has NEON without dotprod).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn use_dot_instructions() -> bool {
    #[cfg(test)]
    if tests::AVOID_DOT_INSTRUCTIONS.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    super::isa::has_avx512_vnni() || super::isa::has_neon_dotprod()
}

/// One register tile's results: `out[r * MAX_TILE + j] = rows[r] . acts[j]`.
type TileOut = [f32; MAX_TILE * MAX_TILE];

/// Computes a tile (one of the sizes `avx2::dot_tile` lists) on the chosen path.
fn dot_tile(isa: Isa, ty: GgmlType, rows: &[&[u8]], acts: &[Q8Row], out: &mut TileOut) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && isa.supported() {
        // SAFETY: AVX-512 (and AVX2/FMA/F16C, part of the level) checked; VNNI only when the
        // CPU has it; rows as below.
        return unsafe { avx512::dot_tile(ty, rows, acts, out, use_dot_instructions()) };
    }
    #[cfg(target_arch = "aarch64")]
    if isa == Isa::Neon && isa.supported() {
        // SAFETY: NEON checked; dotprod only when the CPU has it; rows as below.
        return unsafe { neon::dot_tile(ty, rows, acts, out, use_dot_instructions()) };
    }
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        // SAFETY: use_avx2 checked the features; each row is one whole weight row whose
        // group count matches the activations' (both come from the same `cols`).
        return unsafe { avx2::dot_tile(ty, rows, acts, out) };
    }
    for (row, out) in rows.iter().zip(out.chunks_mut(MAX_TILE)) {
        portable::dot_rows(ty, row, acts, &mut out[..acts.len()]);
    }
}

/// y (m, rows) = x (m, cols) W^T, with `x` row-major. Runs on the engine's pool (small
/// products on the calling thread).
///
/// Panics if `x.len() != m * w.cols()`.
pub fn qmatmul_t(isa: Isa, w: &QMatrix, x: &[f32], m: usize) -> Result<Vec<f32>> {
    let (rows, cols, ty) = (w.rows(), w.cols(), w.ggml_type());
    assert_eq!(x.len(), m * cols, "qmatmul_t: x has {} elements, expected {m} x {cols}", x.len());
    if !has_int_kernel(ty) {
        return float_weights_t(isa, w, x, m);
    }
    let mut y = filled(m * rows, 0f32)?;
    if m == 0 || rows == 0 || cols == 0 {
        return Ok(y);
    }
    // Small products run on the calling thread: handing work to the pool and waiting for
    // it costs ~1 us when a worker is awake and ~8 us when it must be woken (measured), as
    // much as a 100 KiB matrix-vector product.
    let inline = parallel::threads() == 1 || w.n_bytes().saturating_mul(m) < INLINE_BYTES;
    let threads = if inline { 1 } else { parallel::threads() };
    let rb = w.row_bytes();
    let (tw, tm) = if m == 1 { TILE_MV } else { TILE_MM };
    let per_task = rows.div_ceil(4 * threads).max(TASK_BYTES / (rb * m)).next_multiple_of(tw);
    // Task t owns weight rows t*per_task.. and so, in each of the m output rows, the segment
    // with those columns: tasks write disjoint slices of y, no transpose needed.
    let mut segs: Vec<Vec<&mut [f32]>> = (0..rows.div_ceil(per_task)).map(|_| Vec::with_capacity(m)).collect();
    for y_row in y.chunks_mut(rows) {
        for (t, seg) in y_row.chunks_mut(per_task).enumerate() {
            segs[t].push(seg);
        }
    }
    let slab = (SLAB_BYTES / rb).max(1).next_multiple_of(tw);
    let task = |acts: &[Q8Row], t: usize, out: &mut [&mut [f32]]| {
        let r0 = t * per_task;
        let n = out[0].len();
        for s0 in (0..n).step_by(slab) {
            for (jt, tile) in acts.chunks(tm).enumerate() {
                for i in (s0..n.min(s0 + slab)).step_by(tw) {
                    let nw = tw.min(n - i);
                    let mut wrows: [&[u8]; MAX_TILE] = [&[]; MAX_TILE];
                    for (r, wr) in wrows.iter_mut().enumerate().take(nw) {
                        *wr = w.row(r0 + i + r);
                    }
                    let mut res: TileOut = [0.0; MAX_TILE * MAX_TILE];
                    dot_tile(isa, ty, &wrows[..nw], tile, &mut res);
                    for (r, res) in res.chunks(MAX_TILE).take(nw).enumerate() {
                        for (j, &v) in res[..tile.len()].iter().enumerate() {
                            out[jt * tm + j][i + r] = v;
                        }
                    }
                }
            }
        }
    };
    if inline {
        let q8 = Q8Acts::quantize(isa, x, m, cols, false);
        let acts: Vec<Q8Row> = (0..m).map(|j| q8.row(j)).collect();
        segs.into_iter().enumerate().for_each(|(t, mut out)| task(&acts, t, &mut out));
    } else {
        parallel::install(|| {
            let q8 = Q8Acts::quantize(isa, x, m, cols, m * cols >= 1 << 16);
            let acts: Vec<Q8Row> = (0..m).map(|j| q8.row(j)).collect();
            segs.into_par_iter().enumerate().for_each(|(t, mut out)| task(&acts, t, &mut out));
        });
    }
    Ok(y)
}

/// y (m, rows) = x W^T for float weights: slabs of `DEQUANT_ROWS` weight rows, dequantized
/// to f32 (rows in parallel), each multiplied into its columns of y by the GEMM.
fn float_weights_t(isa: Isa, w: &QMatrix, x: &[f32], m: usize) -> Result<Vec<f32>> {
    let (rows, cols) = (w.rows(), w.cols());
    let mut y = filled(m * rows, 0f32)?;
    if m == 0 || rows == 0 {
        return Ok(y);
    }
    let mut slab = filled(DEQUANT_ROWS.min(rows) * cols, 0f32)?;
    parallel::install(|| -> Result<()> {
        for i0 in (0..rows).step_by(DEQUANT_ROWS) {
            let n = DEQUANT_ROWS.min(rows - i0);
            dequantize_rows(w, i0, &mut slab[..n * cols])?;
            let a = MatRef { data: x, offset: 0, row_stride: cols, col_stride: 1 };
            // The slab read as its transpose: (cols, n).
            let b = MatRef { data: &slab, offset: 0, row_stride: 1, col_stride: cols };
            sgemm(isa, m, n, cols, 1.0, a, b, 0.0, &mut y[i0..], rows);
        }
        Ok(())
    })?;
    Ok(y)
}

/// y (m, cols) = g (m, rows) W: slabs of weight rows dequantized to f32 and accumulated
/// by the GEMM. The backward of [`qmatmul_t`] (and the product with W itself).
///
/// Panics if `g.len() != m * w.rows()`.
pub fn qmatmul_n(isa: Isa, w: &QMatrix, g: &[f32], m: usize) -> Result<Vec<f32>> {
    let (rows, cols) = (w.rows(), w.cols());
    assert_eq!(g.len(), m * rows, "qmatmul_n: g has {} elements, expected {m} x {rows}", g.len());
    let mut y = filled(m * cols, 0f32)?;
    if m == 0 || rows == 0 || cols == 0 {
        return Ok(y);
    }
    let mut slab = filled(DEQUANT_ROWS.min(rows) * cols, 0f32)?;
    parallel::install(|| -> Result<()> {
        for i0 in (0..rows).step_by(DEQUANT_ROWS) {
            let n = DEQUANT_ROWS.min(rows - i0);
            dequantize_rows(w, i0, &mut slab[..n * cols])?;
            let a = MatRef { data: g, offset: i0, row_stride: rows, col_stride: 1 };
            let b = MatRef { data: &slab, offset: 0, row_stride: cols, col_stride: 1 };
            sgemm(isa, m, cols, n, 1.0, a, b, 1.0, &mut y, cols);
        }
        Ok(())
    })?;
    Ok(y)
}

/// Weight rows `i0..` into `out` (a whole number of rows), rows in parallel.
fn dequantize_rows(w: &QMatrix, i0: usize, out: &mut [f32]) -> Result<()> {
    let ty = w.ggml_type();
    out.par_chunks_mut(w.cols()).enumerate().try_for_each(|(r, o)| dequantize_row(ty, w.row(i0 + r), o))
}
