//! [`F32Vec`] for x86-64: `Avx2` (8 lanes, AVX2 + FMA, masks are vectors) and `Avx512`
//! (16 lanes, AVX-512 F/BW/VL/DQ, masks are `k` registers). Both compute `ldexp` and `frexp`
//! with the same integer operations, so exp and log agree bit for bit between them.

use super::vector::F32Vec;
use std::arch::x86_64::*;

/// 8 f32 lanes in a ymm register.
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256);

/// 16 f32 lanes in a zmm register.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(__m512);

/// 2^n for integer n in [-126, 127], built in the exponent field (8 lanes).
#[inline(always)]
unsafe fn pow2i_256(n: __m256i) -> __m256 {
    // SAFETY: AVX2, as every method's caller guarantees.
    unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n, _mm256_set1_epi32(127)))) }
}

/// 2^n for integer n in [-126, 127], built in the exponent field (16 lanes).
#[inline(always)]
unsafe fn pow2i_512(n: __m512i) -> __m512 {
    // SAFETY: AVX-512 F, as every method's caller guarantees.
    unsafe { _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_add_epi32(n, _mm512_set1_epi32(127)))) }
}

/// Sum of 8 lanes: (0+4, 1+5, 2+6, 3+7), then pairs, then the last two.
#[inline(always)]
unsafe fn hsum_256(v: __m256) -> f32 {
    // SAFETY: AVX.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }
}

#[inline(always)]
unsafe fn hmax_256(v: __m256) -> f32 {
    // SAFETY: AVX.
    unsafe {
        let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps::<1>(m, m)))
    }
}

const ROUND_NEAREST: i32 = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;

// SAFETY (every method of both impls): the caller runs it inside `with` on a CPU with the
// level (trait contract); pointer arguments are valid as the trait documents.
impl F32Vec for Avx2 {
    type Mask = __m256;
    const LANES: usize = 8;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn with<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        unsafe { Avx2(_mm256_set1_ps(v)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Avx2(_mm256_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { _mm256_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn stream(self, p: *mut f32) {
        unsafe { _mm256_stream_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn stream_fence() {
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut buf = [0f32; 8];
        unsafe {
            std::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n);
            Avx2(_mm256_loadu_ps(buf.as_ptr()))
        }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        let mut buf = [0f32; 8];
        unsafe {
            _mm256_storeu_ps(buf.as_mut_ptr(), self.0);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), p, n);
        }
    }

    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_add_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_sub_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_mul_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_div_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn fmadd(self, b: Self, c: Self) -> Self {
        unsafe { Avx2(_mm256_fmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn fnmadd(self, b: Self, c: Self) -> Self {
        unsafe { Avx2(_mm256_fnmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_min_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        unsafe { Avx2(_mm256_max_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        unsafe { Avx2(_mm256_sqrt_ps(self.0)) }
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        unsafe { Avx2(_mm256_round_ps::<ROUND_NEAREST>(self.0)) }
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        unsafe { Avx2(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0)) }
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        unsafe { Avx2(_mm256_xor_ps(self.0, _mm256_set1_ps(-0.0))) }
    }
    #[inline(always)]
    unsafe fn or_sign_of(self, sign: Self) -> Self {
        unsafe { Avx2(_mm256_or_ps(self.0, _mm256_and_ps(sign.0, _mm256_set1_ps(-0.0)))) }
    }

    #[inline(always)]
    unsafe fn lt(self, o: Self) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_GE_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_EQ_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn unord(self, o: Self) -> __m256 {
        unsafe { _mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn mask_or(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_or_ps(a, b) }
    }
    #[inline(always)]
    unsafe fn any(m: __m256) -> bool {
        unsafe { _mm256_movemask_ps(m) != 0 }
    }
    #[inline(always)]
    unsafe fn select(m: __m256, t: Self, f: Self) -> Self {
        unsafe { Avx2(_mm256_blendv_ps(f.0, t.0, m)) }
    }

    #[inline(always)]
    unsafe fn ldexp(self, n: Self) -> Self {
        unsafe {
            let ni = _mm256_cvtps_epi32(n.0);
            let n1 = _mm256_srai_epi32::<1>(ni);
            let n2 = _mm256_sub_epi32(ni, n1);
            Avx2(_mm256_mul_ps(_mm256_mul_ps(self.0, pow2i_256(n1)), pow2i_256(n2)))
        }
    }
    #[inline(always)]
    unsafe fn frexp(self) -> (Self, Self) {
        unsafe {
            // Subnormals have no implicit bit: scale them by 2^23 first, take 23 off e.
            let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(self.0, _mm256_set1_ps(f32::MIN_POSITIVE));
            let xs = _mm256_blendv_ps(self.0, _mm256_mul_ps(self.0, _mm256_set1_ps(8_388_608.0)), tiny);
            let bits = _mm256_castps_si256(xs);
            let e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(126));
            let m = _mm256_castsi256_ps(_mm256_or_si256(
                _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
                _mm256_set1_epi32(0x3f00_0000),
            ));
            let e = _mm256_sub_ps(_mm256_cvtepi32_ps(e), _mm256_and_ps(tiny, _mm256_set1_ps(23.0)));
            (Avx2(m), Avx2(e))
        }
    }

    #[inline(always)]
    unsafe fn hsum(self) -> f32 {
        unsafe { hsum_256(self.0) }
    }
    #[inline(always)]
    unsafe fn hmax(self) -> f32 {
        unsafe { hmax_256(self.0) }
    }
}

impl F32Vec for Avx512 {
    type Mask = __mmask16;
    const LANES: usize = 16;

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    unsafe fn with<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        unsafe { Avx512(_mm512_set1_ps(v)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        unsafe { Avx512(_mm512_loadu_ps(p)) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        unsafe { _mm512_storeu_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn stream(self, p: *mut f32) {
        unsafe { _mm512_stream_ps(p, self.0) }
    }
    #[inline(always)]
    unsafe fn stream_fence() {
        unsafe { _mm_sfence() }
    }
    #[inline(always)]
    unsafe fn prefetch(p: *const u8) {
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // Masked-off lanes are neither read (no fault past the end) nor kept: zero.
        unsafe { Avx512(_mm512_maskz_loadu_ps(((1u32 << n) - 1) as u16, p)) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as u16, self.0) }
    }

    #[inline(always)]
    unsafe fn add(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_add_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn sub(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_sub_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn mul(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_mul_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn div(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_div_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn fmadd(self, b: Self, c: Self) -> Self {
        unsafe { Avx512(_mm512_fmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn fnmadd(self, b: Self, c: Self) -> Self {
        unsafe { Avx512(_mm512_fnmadd_ps(self.0, b.0, c.0)) }
    }
    #[inline(always)]
    unsafe fn min(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_min_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn max(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_max_ps(self.0, o.0)) }
    }
    #[inline(always)]
    unsafe fn sqrt(self) -> Self {
        unsafe { Avx512(_mm512_sqrt_ps(self.0)) }
    }
    #[inline(always)]
    unsafe fn round(self) -> Self {
        unsafe { Avx512(_mm512_roundscale_ps::<ROUND_NEAREST>(self.0)) }
    }
    #[inline(always)]
    unsafe fn abs(self) -> Self {
        unsafe { Avx512(_mm512_abs_ps(self.0)) }
    }
    #[inline(always)]
    unsafe fn neg(self) -> Self {
        unsafe { Avx512(_mm512_xor_ps(self.0, _mm512_set1_ps(-0.0))) }
    }
    #[inline(always)]
    unsafe fn or_sign_of(self, sign: Self) -> Self {
        unsafe { Avx512(_mm512_or_ps(self.0, _mm512_and_ps(sign.0, _mm512_set1_ps(-0.0)))) }
    }

    #[inline(always)]
    unsafe fn lt(self, o: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn ge(self, o: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_GE_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn eq(self, o: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn unord(self, o: Self) -> __mmask16 {
        unsafe { _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, o.0) }
    }
    #[inline(always)]
    unsafe fn mask_or(a: __mmask16, b: __mmask16) -> __mmask16 {
        a | b
    }
    #[inline(always)]
    unsafe fn any(m: __mmask16) -> bool {
        m != 0
    }
    #[inline(always)]
    unsafe fn select(m: __mmask16, t: Self, f: Self) -> Self {
        unsafe { Avx512(_mm512_mask_blend_ps(m, f.0, t.0)) }
    }

    #[inline(always)]
    unsafe fn ldexp(self, n: Self) -> Self {
        unsafe {
            let ni = _mm512_cvtps_epi32(n.0);
            let n1 = _mm512_srai_epi32::<1>(ni);
            let n2 = _mm512_sub_epi32(ni, n1);
            Avx512(_mm512_mul_ps(_mm512_mul_ps(self.0, pow2i_512(n1)), pow2i_512(n2)))
        }
    }
    #[inline(always)]
    unsafe fn frexp(self) -> (Self, Self) {
        unsafe {
            let tiny = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, _mm512_set1_ps(f32::MIN_POSITIVE));
            let xs = _mm512_mask_mul_ps(self.0, tiny, self.0, _mm512_set1_ps(8_388_608.0));
            let bits = _mm512_castps_si512(xs);
            let e = _mm512_sub_epi32(_mm512_srli_epi32::<23>(bits), _mm512_set1_epi32(126));
            let m = _mm512_castsi512_ps(_mm512_or_si512(
                _mm512_and_si512(bits, _mm512_set1_epi32(0x007f_ffff)),
                _mm512_set1_epi32(0x3f00_0000),
            ));
            let e = _mm512_cvtepi32_ps(e);
            let e = _mm512_mask_sub_ps(e, tiny, e, _mm512_set1_ps(23.0));
            (Avx512(m), Avx512(e))
        }
    }

    #[inline(always)]
    unsafe fn hsum(self) -> f32 {
        unsafe {
            let lo = _mm512_castps512_ps256(self.0);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0)));
            hsum_256(_mm256_add_ps(lo, hi))
        }
    }
    #[inline(always)]
    unsafe fn hmax(self) -> f32 {
        unsafe {
            let lo = _mm512_castps512_ps256(self.0);
            let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(self.0)));
            hmax_256(_mm256_max_ps(lo, hi))
        }
    }
}
