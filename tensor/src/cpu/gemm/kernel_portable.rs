//! Portable micro-kernel: plain Rust on fixed-size arrays, which LLVM unrolls and
//! vectorises for the baseline target (SSE2 on x86-64, NEON on aarch64).
//!
//! Why 4 x 8: the 32 accumulators fit in 8 SSE registers (16 exist), leaving room for the
//! B row and A broadcasts without spilling. Always correct; the reference the AVX2 kernel is
//! tested against.

use super::driver::{store_tile, Kernel};
use super::pack::{pack_a, pack_b};

pub(super) const MR: usize = 4;
pub(super) const NR: usize = 8;

pub(super) const KERNEL: Kernel =
    Kernel { mr: MR, nr: NR, kc: 256, mc: 72, f: kernel_4x8, pack_a: pack_a::<MR>, pack_b: pack_b::<NR> };

/// `C[0..4, 0..8] = acc + (load_c ? beta * C : 0)` where `acc = sum_p a[p*4 + i] * b[p*8 + j]`.
///
/// # Safety
/// - `a` is valid for `kc * 4` reads and `b` for `kc * 8` reads (packed panels);
/// - `c` is valid for reads and writes of rows `0..4`, columns `0..8` with row stride `ldc`,
///   and no other thread touches that tile during the call.
unsafe fn kernel_4x8(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, beta: f32, load_c: bool) {
    // SAFETY: lengths as promised by the caller.
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * MR), std::slice::from_raw_parts(b, kc * NR)) };
    let mut acc = [[0.0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += ap[i] * bp[j];
            }
        }
    }
    // SAFETY: the tile is valid and exclusively ours, as promised.
    unsafe { store_tile(&acc, c, ldc, beta, load_c) }
}
