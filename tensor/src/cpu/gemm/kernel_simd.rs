//! The SIMD micro-kernels: one register-blocked tile loop written over `F32Vec` and
//! instantiated per level with the tile that suits its register file.
//!
//! | level   | tile    | accumulators        | registers | why |
//! |---------|---------|---------------------|-----------|-----|
//! | AVX-512 | 12 x 32 | 24 zmm              | 32        | 24 FMAs per 2 B loads + 12 broadcasts |
//! | AVX2    | 6 x 16  | 12 ymm              | 16        | 12 + 2 B + 1 broadcast = 15 |
//! | NEON    | 8 x 12  | 24 q                | 32        | BLIS's armv8 shape: 24 + 3 B + broadcasts |
//!
//! Each k step loads the NV vectors of one packed B row, broadcasts the MR values of one
//! packed A column one at a time and issues MR x NV independent FMAs: enough chains to
//! cover a 4-cycle FMA latency on two (Zen, Intel, Cortex-A7x) to four (Apple M, Neoverse
//! V) FMA pipes. The loops have constant bounds, so LLVM unrolls them and keeps `acc` in
//! registers. On Zen 4 the AVX-512 level uses the AVX2 tile (see `gemm.rs`).

use super::driver::Kernel;
use super::pack::{pack_a, pack_b};
use crate::cpu::simd::vector::F32Vec;

/// k steps per loop iteration (less loop overhead; one A prefetch per iteration).
const UNROLL: usize = 4;

/// `C[0..MR, 0..NV * V::LANES] = acc + (load_c ? beta * C : 0)`, where
/// `acc = sum_p a[p * MR + i] * b[p * NR + j]`.
///
/// # Safety
/// - called from a function compiled for `V`'s level, on a CPU that has it;
/// - `a` is valid for `kc * MR` reads and `b` for `kc * NR` reads (packed panels);
/// - `c` is valid for reads and writes of rows `0..MR`, columns `0..NR` with row stride
///   `ldc`, and no other thread touches that tile during the call.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<V: F32Vec, const MR: usize, const NV: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    beta: f32,
    load_c: bool,
) {
    let nr = NV * V::LANES;
    // SAFETY (whole body): pointer offsets stay inside the ranges promised above.
    unsafe {
        // Warm the C tile while the k loop runs (every cache line of each row).
        for i in 0..MR {
            let row = c.add(i * ldc) as *const u8;
            for line in (0..nr * 4).step_by(64) {
                V::prefetch(row.add(line));
            }
            V::prefetch(row.add(nr * 4 - 1));
        }
        let mut acc = [[V::splat(0.0); NV]; MR];
        let (mut ap, mut bp) = (a, b);
        // A is streamed from L2: ask for it a couple of iterations ahead (prefetching past
        // the panel's end is harmless).
        for _ in 0..kc / UNROLL {
            V::prefetch(ap.wrapping_add(8 * MR) as *const u8);
            for u in 0..UNROLL {
                step::<V, MR, NV>(&mut acc, ap.add(u * MR), bp.add(u * nr));
            }
            ap = ap.add(UNROLL * MR);
            bp = bp.add(UNROLL * nr);
        }
        for _ in 0..kc % UNROLL {
            step::<V, MR, NV>(&mut acc, ap, bp);
            ap = ap.add(MR);
            bp = bp.add(nr);
        }
        let vbeta = V::splat(beta);
        for (i, acc_i) in acc.iter().enumerate() {
            let row = c.add(i * ldc);
            for (v, &x) in acc_i.iter().enumerate() {
                let p = row.add(v * V::LANES);
                let x = if load_c { vbeta.fmadd(V::load(p), x) } else { x };
                x.store(p);
            }
        }
    }
}

/// One k step: NV loads of the B row, MR broadcasts of the A column, MR x NV FMAs.
///
/// # Safety
/// As `tile`; `ap` and `bp` point at the step's A column and B row.
#[inline(always)]
unsafe fn step<V: F32Vec, const MR: usize, const NV: usize>(acc: &mut [[V; NV]; MR], ap: *const f32, bp: *const f32) {
    // SAFETY: the caller's bounds.
    unsafe {
        let mut bv = [V::splat(0.0); NV];
        for (v, bvv) in bv.iter_mut().enumerate() {
            *bvv = V::load(bp.add(v * V::LANES));
        }
        for (i, acc_i) in acc.iter_mut().enumerate() {
            let ai = V::splat(*ap.add(i));
            for v in 0..NV {
                acc_i[v] = ai.fmadd(bv[v], acc_i[v]);
            }
        }
    }
}

/// Declares a `Kernel` constant running `tile::<$V, $mr, $nv>` inside a function compiled
/// with `$features`.
macro_rules! simd_kernel {
    ($name:ident, $fn:ident, $V:ty, $features:literal, mr = $mr:literal, nv = $nv:literal, kc = $kc:literal, mc = $mc:literal) => {
        pub(super) const $name: Kernel = Kernel {
            mr: $mr,
            nr: $nv * <$V as F32Vec>::LANES,
            kc: $kc,
            mc: $mc,
            f: $fn,
            pack_a: pack_a::<$mr>,
            pack_b: pack_b::<{ $nv * <$V as F32Vec>::LANES }>,
        };

        /// # Safety
        /// The CPU has the level; otherwise as `tile`.
        #[target_feature(enable = $features)]
        unsafe fn $fn(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, beta: f32, load_c: bool) {
            // SAFETY: forwarded.
            unsafe { tile::<$V, $mr, $nv>(kc, a, b, c, ldc, beta, load_c) }
        }
    };
}

// AVX-512: B panel KC x 32 floats = 24 KiB, in a 32 KiB L1d next to the A panel's 9 KiB
// stream; an MC x KC block of A = 72 KiB, in L2.
#[cfg(target_arch = "x86_64")]
simd_kernel!(
    AVX512,
    avx512_12x32,
    crate::cpu::simd::vector_x86::Avx512,
    "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma",
    mr = 12,
    nv = 2,
    kc = 192,
    mc = 96
);
// AVX2: B panel 16 KiB stays in Zen 3's 32 KiB L1d; MC x KC = 72 KiB, well inside L2 (MC 72,
// 96, 120 and 144 measured within noise of each other, 2 threads, 256-2048).
#[cfg(target_arch = "x86_64")]
simd_kernel!(AVX2, avx2_6x16, crate::cpu::simd::vector_x86::Avx2, "avx2,fma", mr = 6, nv = 2, kc = 256, mc = 72);
// NEON: B panel 12 KiB, in the 32 KiB L1d of the smallest cores (Cortex-A72, Raspberry Pi 4)
// next to an 8 KiB A panel; MC x KC = 64 KiB.
#[cfg(target_arch = "aarch64")]
simd_kernel!(NEON, neon_8x12, crate::cpu::simd::vector_neon::Neon, "neon", mr = 8, nv = 3, kc = 256, mc = 64);
