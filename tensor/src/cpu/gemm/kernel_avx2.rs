//! AVX2+FMA micro-kernel: a 6 x 16 tile of C held in 12 ymm accumulators.
//!
//! Why 6 x 16: x86-64 has 16 ymm registers. 12 accumulators + 2 B vectors + 1 broadcast A
//! value = 15. Each k step issues 12 FMAs against 2 loads + 6 broadcasts, which keeps both
//! Zen3 FMA pipes busy (2 FMA/cycle, 3 loads/cycle) with the 4-cycle FMA latency hidden by
//! 12 independent chains (>= 2 pipes x 4 cycles = 8 needed).

use super::driver::Kernel;
use super::pack::{pack_a, pack_b};

pub(super) const MR: usize = 6;
pub(super) const NR: usize = 16;

/// k steps per loop iteration.
const UNROLL: usize = 4;
/// How far ahead (in floats) to prefetch packed A.
const A_AHEAD: usize = 96;

#[cfg(target_arch = "x86_64")]
pub(super) const KERNEL: Kernel = Kernel { mr: MR, nr: NR, f: kernel_6x16, pack_a: pack_a::<MR>, pack_b: pack_b::<NR> };

/// `C[0..6, 0..16] = acc + (load_c ? beta * C : 0)` where `acc = sum_p a[p*6 + i] * b[p*16 + j]`.
///
/// # Safety
/// - the CPU supports AVX2 and FMA (the caller got `Isa::Avx2Fma` from `isa::active()`);
/// - `a` is valid for `kc * 6` reads and `b` for `kc * 16` reads (packed panels);
/// - `c` is valid for reads and writes of rows `0..6`, columns `0..16` with row stride `ldc`,
///   and no other thread touches that tile during the call.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn kernel_6x16(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, beta: f32, load_c: bool) {
    use std::arch::x86_64::*;
    // SAFETY (whole body): pointer offsets stay inside the ranges promised above; the
    // intrinsics need AVX2/FMA, promised by the caller.
    unsafe {
        // Warm the C tile while the k loop runs; each row spans at most two cache lines.
        for i in 0..MR {
            let row = c.add(i * ldc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.add(60));
        }

        let mut acc = [_mm256_setzero_ps(); 2 * MR];
        let (mut ap, mut bp) = (a, b);
        // One k step: 2 B loads, 6 broadcasts, 12 FMAs. Fully unrolled (constant bounds):
        // LLVM keeps `acc` in registers.
        let step = |acc: &mut [__m256; 2 * MR], ap: *const f32, bp: *const f32| {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for i in 0..MR {
                let ai = _mm256_broadcast_ss(&*ap.add(i));
                acc[2 * i] = _mm256_fmadd_ps(ai, b0, acc[2 * i]);
                acc[2 * i + 1] = _mm256_fmadd_ps(ai, b1, acc[2 * i + 1]);
            }
        };
        // Unrolled by UNROLL: less loop overhead per FMA; A is streamed from L2, so ask for
        // it a few steps ahead (prefetching past the panel's end is harmless). Measured up to
        // ~10% faster than the plain k loop on 2 threads (noisy VM).
        for _ in 0..kc / UNROLL {
            _mm_prefetch::<_MM_HINT_T0>(ap.wrapping_add(A_AHEAD) as *const i8);
            for u in 0..UNROLL {
                step(&mut acc, ap.add(u * MR), bp.add(u * NR));
            }
            ap = ap.add(UNROLL * MR);
            bp = bp.add(UNROLL * NR);
        }
        for _ in 0..kc % UNROLL {
            step(&mut acc, ap, bp);
            ap = ap.add(MR);
            bp = bp.add(NR);
        }

        let vbeta = _mm256_set1_ps(beta);
        for i in 0..MR {
            let row = c.add(i * ldc);
            let (mut lo, mut hi) = (acc[2 * i], acc[2 * i + 1]);
            if load_c {
                lo = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(row), lo);
                hi = _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(row.add(8)), hi);
            }
            _mm256_storeu_ps(row, lo);
            _mm256_storeu_ps(row.add(8), hi);
        }
    }
}
