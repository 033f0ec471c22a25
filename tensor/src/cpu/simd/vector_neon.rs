//! [`F32Vec`] for aarch64 Advanced SIMD: `Neon` (4 lanes, `float32x4_t`; masks are
//! `uint32x4_t`). NEON's own `fmin`/`fmax` return NaN when either side is NaN; `min`/`max`
//! here select instead, to keep x86's rule that the generic kernels are written for.
//! There is no non-temporal store worth using for this pattern: `stream` is a plain store.

use super::vector::F32Vec;
use std::arch::aarch64::*;

/// 4 f32 lanes in a q register.
#[derive(Clone, Copy)]
pub(crate) struct Neon(float32x4_t);

#[inline(always)]
unsafe fn bits(v: float32x4_t) -> uint32x4_t {
    // SAFETY: NEON, as every method's caller guarantees.
    unsafe { vreinterpretq_u32_f32(v) }
}

/// 2^n for integer n in [-126, 127], built in the exponent field.
#[inline(always)]
unsafe fn pow2i(n: int32x4_t) -> float32x4_t {
    // SAFETY: NEON.
    unsafe { vreinterpretq_f32_s32(vshlq_n_s32::<23>(vaddq_s32(n, vdupq_n_s32(127)))) }
}

// SAFETY (every method): the caller runs it inside `with` on a CPU with NEON (trait
// contract); pointer arguments are valid as the trait documents.
impl F32Vec for Neon {
    type Mask = uint32x4_t;
    const LANES: usize = 4;

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn with<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        unsafe { Neon(vdupq_n_f32(v)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Neon(vld1q_f32(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { vst1q_f32(p, self.0) }
    }
    #[inline(always)]
    unsafe fn stream(self, p: *mut f32) {
        unsafe { vst1q_f32(p, self.0) }
    }
    #[inline(always)]
    unsafe fn stream_fence() {}
    #[inline(always)]
    unsafe fn prefetch(_: *const u8) {}
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut buf = [0f32; 4];
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Neon(vld1q_f32(buf.as_ptr()))
        }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        let mut buf = [0f32; 4];
        unsafe {
            vst1q_f32(buf.as_mut_ptr(), self.0);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
        }
    }

    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        unsafe { Neon(vaddq_f32(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        unsafe { Neon(vsubq_f32(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        unsafe { Neon(vmulq_f32(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        unsafe { Neon(vdivq_f32(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn fmadd(self, b: Self, c: Self) -> Self {
        unsafe { Neon(vfmaq_f32(c.0, self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn fnmadd(self, b: Self, c: Self) -> Self {
        unsafe { Neon(vfmsq_f32(c.0, self.0, b.0)) }
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        unsafe { Neon(vbslq_f32(vcltq_f32(self.0, o.0), self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        unsafe { Neon(vbslq_f32(vcgtq_f32(self.0, o.0), self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        unsafe { Neon(vsqrtq_f32(self.0)) }
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        unsafe { Neon(vrndnq_f32(self.0)) }
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        unsafe { Neon(vabsq_f32(self.0)) }
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        unsafe { Neon(vnegq_f32(self.0)) }
    }
    #[inline(always)]
    unsafe fn or_sign_of(self, sign: Self) -> Self {
        unsafe {
            let s = vandq_u32(bits(sign.0), vdupq_n_u32(0x8000_0000));
            Neon(vreinterpretq_f32_u32(vorrq_u32(bits(self.0), s)))
        }
    }

    #[inline(always)]
    unsafe fn lt(self, o: Self) -> uint32x4_t {
        unsafe { vcltq_f32(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> uint32x4_t {
        unsafe { vcgeq_f32(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> uint32x4_t {
        unsafe { vceqq_f32(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn unord(self, o: Self) -> uint32x4_t {
        unsafe { vmvnq_u32(vandq_u32(vceqq_f32(self.0, self.0), vceqq_f32(o.0, o.0))) }
    }
    #[inline(always)]
    unsafe fn mask_or(a: uint32x4_t, b: uint32x4_t) -> uint32x4_t {
        unsafe { vorrq_u32(a, b) }
    }
    #[inline(always)]
    unsafe fn any(m: uint32x4_t) -> bool {
        unsafe { vmaxvq_u32(m) != 0 }
    }
    #[inline(always)]
    unsafe fn select(m: uint32x4_t, t: Self, f: Self) -> Self {
        unsafe { Neon(vbslq_f32(m, t.0, f.0)) }
    }

    #[inline(always)]
    unsafe fn ldexp(self, n: Self) -> Self {
        unsafe {
            let ni = vcvtnq_s32_f32(n.0);
            let n1 = vshrq_n_s32::<1>(ni);
            let n2 = vsubq_s32(ni, n1);
            Neon(vmulq_f32(vmulq_f32(self.0, pow2i(n1)), pow2i(n2)))
        }
    }
    #[inline(always)]
    unsafe fn frexp(self) -> (Self, Self) {
        unsafe {
            // Subnormals have no implicit bit: scale them by 2^23 first, take 23 off e.
            let tiny = vcltq_f32(self.0, vdupq_n_f32(f32::MIN_POSITIVE));
            let xs = vbslq_f32(tiny, vmulq_f32(self.0, vdupq_n_f32(8_388_608.0)), self.0);
            let b = bits(xs);
            let e = vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32::<23>(b)), vdupq_n_s32(126));
            let m = vorrq_u32(vandq_u32(b, vdupq_n_u32(0x007f_ffff)), vdupq_n_u32(0x3f00_0000));
            let e = vsubq_f32(vcvtq_f32_s32(e), vbslq_f32(tiny, vdupq_n_f32(23.0), vdupq_n_f32(0.0)));
            (Neon(vreinterpretq_f32_u32(m)), Neon(e))
        }
    }

    #[inline(always)]
    unsafe fn hsum(self) -> f32 {
        unsafe {
            let s = vaddq_f32(self.0, vextq_f32::<2>(self.0, self.0)); // (0+2, 1+3, ..)
            vgetq_lane_f32::<0>(s) + vgetq_lane_f32::<1>(s)
        }
    }
    #[inline(always)]
    unsafe fn hmax(self) -> f32 {
        unsafe {
            let h = Neon(vextq_f32::<2>(self.0, self.0));
            let m = self.max(h).0;
            let (a, b) = (vgetq_lane_f32::<0>(m), vgetq_lane_f32::<1>(m));
            if a > b {
                a
            } else {
                b
            }
        }
    }
}
