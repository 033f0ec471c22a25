//! Vector f32 math for AVX2+FMA, 8 lanes per call: exp, log, tanh, sigmoid, and the
//! erfc used by exact GELU.
//!
//! Every function here is branch-free (all lanes take every path, then blend), handles
//! NaN / +-inf / subnormals the way the scalar `UnaryOp::eval_f32` definitions do, and has
//! its accuracy measured against f64 by the tests at the bottom (numbers in each doc).
//! Coefficients are Cephes' single-precision minimax fits, evaluated with FMA.

// Coefficients are kept as published (more digits than f32 holds).
#![allow(clippy::excessive_precision)]

use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma")]
fn splat(v: f32) -> __m256 {
    _mm256_set1_ps(v)
}

/// Sign bit only, for abs / copysign by bit masking.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn sign_mask() -> __m256 {
    _mm256_set1_ps(-0.0)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn abs(x: __m256) -> __m256 {
    _mm256_andnot_ps(sign_mask(), x)
}

/// 2^n for integer-valued n in [-126, 127], built directly in the exponent field.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pow2i(n: __m256i) -> __m256 {
    _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(n, _mm256_set1_epi32(127))))
}

/// e^x. Max relative error 8.1e-8 (< 1 ulp) on [-87, 88] (test `exp_accuracy`);
/// overflows to +inf above ln(f32::MAX), underflows through subnormals to 0, NaN passes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn exp(x: __m256) -> __m256 {
    // Clamping keeps n = round(x log2 e) within [-150, 128]: beyond that the answer is
    // 0 or inf anyway, and the clamp stops the integer exponent from wrapping.
    let xc = _mm256_min_ps(_mm256_max_ps(x, splat(-104.0)), splat(89.0));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        xc,
        splat(std::f32::consts::LOG2_E),
    ));
    // Cody-Waite: LN2_HI has 9 significant bits, so n*LN2_HI is exact and x - n*LN2_HI is
    // exact too (Sterbenz); only the tiny LN2_LO correction rounds. r is in [-ln2/2, ln2/2].
    let r = _mm256_fnmadd_ps(n, splat(0.693_359_4), xc);
    let r = _mm256_fnmadd_ps(n, splat(-2.121_944_4e-4), r);
    // e^r = 1 + r + r^2 P(r).
    let mut p = splat(1.987_569_1e-4);
    p = _mm256_fmadd_ps(p, r, splat(1.398_199_9e-3));
    p = _mm256_fmadd_ps(p, r, splat(8.333_452e-3));
    p = _mm256_fmadd_ps(p, r, splat(4.166_579_6e-2));
    p = _mm256_fmadd_ps(p, r, splat(1.666_666_5e-1));
    p = _mm256_fmadd_ps(p, r, splat(5.000_000_1e-1));
    let y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), splat(1.0));
    // Scale by 2^n as 2^(n/2) * 2^(n - n/2): each half is a normal float for n in
    // [-150, 128], so results near overflow reach inf and tiny ones round to subnormals.
    let ni = _mm256_cvtps_epi32(n);
    let n1 = _mm256_srai_epi32::<1>(ni);
    let n2 = _mm256_sub_epi32(ni, n1);
    let y = _mm256_mul_ps(_mm256_mul_ps(y, pow2i(n1)), pow2i(n2));
    // The clamp turned NaN into a number; put it back.
    _mm256_blendv_ps(y, x, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x))
}

/// ln x. Max relative error 7.9e-8 over all positive normal and subnormal floats (test
/// `log_accuracy`); ln 0 = -inf, ln(negative) = NaN, ln(+inf) = +inf, NaN passes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn log(x: __m256) -> __m256 {
    // Subnormals have no implicit bit; scale them by 2^23 first and take 23 off the exponent.
    let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(f32::MIN_POSITIVE));
    let xs = _mm256_blendv_ps(x, _mm256_mul_ps(x, splat(8_388_608.0)), tiny);
    let bits = _mm256_castps_si256(xs);
    // x = m * 2^e with m in [0.5, 1).
    let e = _mm256_sub_epi32(_mm256_srli_epi32::<23>(bits), _mm256_set1_epi32(126));
    let m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007f_ffff)),
        _mm256_set1_epi32(0x3f00_0000),
    ));
    let mut e = _mm256_sub_ps(_mm256_cvtepi32_ps(e), _mm256_and_ps(tiny, splat(23.0)));
    // Move m into [sqrt(1/2), sqrt 2) so f = m - 1 is small; both forms of f are exact.
    let small = _mm256_cmp_ps::<_CMP_LT_OQ>(m, splat(std::f32::consts::FRAC_1_SQRT_2));
    e = _mm256_sub_ps(e, _mm256_and_ps(small, splat(1.0)));
    let f = _mm256_add_ps(_mm256_sub_ps(m, splat(1.0)), _mm256_and_ps(small, m));
    // ln(1+f) = f - f^2/2 + f^3 P(f); e*ln2 is added as hi + lo so the sum stays exact-ish.
    let z = _mm256_mul_ps(f, f);
    let mut p = splat(7.037_683_6e-2);
    p = _mm256_fmadd_ps(p, f, splat(-1.151_461e-1));
    p = _mm256_fmadd_ps(p, f, splat(1.167_699_9e-1));
    p = _mm256_fmadd_ps(p, f, splat(-1.242_014_1e-1));
    p = _mm256_fmadd_ps(p, f, splat(1.424_932_3e-1));
    p = _mm256_fmadd_ps(p, f, splat(-1.666_805_8e-1));
    p = _mm256_fmadd_ps(p, f, splat(2.000_071_4e-1));
    p = _mm256_fmadd_ps(p, f, splat(-2.499_999_4e-1));
    p = _mm256_fmadd_ps(p, f, splat(3.333_333_1e-1));
    let mut y = _mm256_mul_ps(_mm256_mul_ps(p, f), z);
    y = _mm256_fmadd_ps(e, splat(-2.121_944_4e-4), y);
    y = _mm256_fnmadd_ps(z, splat(0.5), y);
    let mut r = _mm256_add_ps(f, y);
    r = _mm256_fmadd_ps(e, splat(0.693_359_4), r);
    // Special inputs: +inf and NaN pass through, 0 -> -inf, negative -> NaN.
    let pass = _mm256_or_ps(_mm256_cmp_ps::<_CMP_UNORD_Q>(x, x), _mm256_cmp_ps::<_CMP_EQ_OQ>(x, splat(f32::INFINITY)));
    r = _mm256_blendv_ps(r, x, pass);
    r = _mm256_blendv_ps(r, splat(f32::NEG_INFINITY), _mm256_cmp_ps::<_CMP_EQ_OQ>(x, splat(0.0)));
    _mm256_blendv_ps(r, splat(f32::NAN), _mm256_cmp_ps::<_CMP_LT_OQ>(x, splat(0.0)))
}

/// tanh x. Max absolute error 7.3e-8 and max relative error 1.3e-7 (test
/// `tanh_accuracy`). Below |x| = 0.625 an odd polynomial keeps relative accuracy down to
/// subnormals; 1 - 2/(e^2|x| + 1) there would cancel. Saturates to +-1, NaN passes.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn tanh(x: __m256) -> __m256 {
    let ax = abs(x);
    let z = _mm256_mul_ps(x, x);
    let mut p = splat(-5.704_988_7e-3);
    p = _mm256_fmadd_ps(p, z, splat(2.063_908_9e-2));
    p = _mm256_fmadd_ps(p, z, splat(-5.373_971_6e-2));
    p = _mm256_fmadd_ps(p, z, splat(1.333_144_2e-1));
    p = _mm256_fmadd_ps(p, z, splat(-3.333_328_2e-1));
    let near0 = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    // e^(2|x|) overflows to inf past |x| ~ 44, giving exactly 1: the right saturation.
    let e = exp(_mm256_add_ps(ax, ax));
    let far = _mm256_sub_ps(splat(1.0), _mm256_div_ps(splat(2.0), _mm256_add_ps(e, splat(1.0))));
    let r = _mm256_blendv_ps(far, near0, _mm256_cmp_ps::<_CMP_LT_OQ>(ax, splat(0.625)));
    // tanh is odd: copy x's sign (far is >= 0; this also keeps tanh(-0) = -0).
    _mm256_or_ps(r, _mm256_and_ps(x, sign_mask()))
}

/// 1 / (1 + e^-x), computed from e^-|x| (never overflows) as 1/(1+e) or e/(1+e) by sign,
/// like the scalar `sigmoid`. Max relative error 1.8e-7 (test `sigmoid_accuracy`).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn sigmoid(x: __m256) -> __m256 {
    let e = exp(_mm256_or_ps(x, sign_mask())); // e^-|x|
    let pos = _mm256_cmp_ps::<_CMP_GE_OQ>(x, splat(0.0));
    let num = _mm256_blendv_ps(e, splat(1.0), pos);
    _mm256_div_ps(num, _mm256_add_ps(splat(1.0), e))
}

/// erfc(z) for z >= 0 (or +inf), Numerical Recipes' erfcc rational-exponential form (the
/// same one `kinds::erf_f32` evaluates in f64), here in f32. Absolute error 3.6e-7 for
/// erf = 1 - erfc (test `erf_accuracy`); the f32 rounding of -z^2 costs relative accuracy
/// deep in the tail (erfc(4) ~ 1.5e-8), harmless for GELU.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn erfc_nonneg(z: __m256) -> __m256 {
    let t = _mm256_div_ps(splat(1.0), _mm256_fmadd_ps(splat(0.5), z, splat(1.0)));
    let mut p = splat(0.170_872_77);
    p = _mm256_fmadd_ps(p, t, splat(-0.822_152_23));
    p = _mm256_fmadd_ps(p, t, splat(1.488_515_87));
    p = _mm256_fmadd_ps(p, t, splat(-1.135_203_98));
    p = _mm256_fmadd_ps(p, t, splat(0.278_868_07));
    p = _mm256_fmadd_ps(p, t, splat(-0.186_288_06));
    p = _mm256_fmadd_ps(p, t, splat(0.096_784_18));
    p = _mm256_fmadd_ps(p, t, splat(0.374_091_96));
    p = _mm256_fmadd_ps(p, t, splat(1.000_023_68));
    p = _mm256_fmadd_ps(p, t, splat(-1.265_512_23));
    _mm256_mul_ps(t, exp(_mm256_fnmadd_ps(z, z, p)))
}

/// Exact GELU 0.5 x (1 + erf(x/sqrt 2)) written as 0.5 x erfc(-x/sqrt 2), so negative x
/// uses the erfc tail directly instead of cancelling 1 + erf. Absolute error within
/// 1e-6 * max(1, |x|) of f64 (checked in `tests.rs`).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn gelu_erf(x: __m256) -> __m256 {
    let q = erfc_nonneg(abs(_mm256_mul_ps(x, splat(std::f32::consts::FRAC_1_SQRT_2))));
    let half_q = _mm256_mul_ps(splat(0.5), q);
    // x >= 0: 0.5 erfc(-z) = 1 - 0.5 erfc(z);  x < 0: 0.5 erfc(|z|).
    let pos = _mm256_cmp_ps::<_CMP_GE_OQ>(x, splat(0.0));
    _mm256_mul_ps(x, _mm256_blendv_ps(half_q, _mm256_sub_ps(splat(1.0), half_q), pos))
}

/// GPT-2 GELU 0.5 x (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3), written as
/// x * sigmoid(2u): the same function without 1 + tanh cancelling for negative x.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub fn gelu_tanh(x: __m256) -> __m256 {
    let x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    let inner = _mm256_fmadd_ps(splat(0.044_715), x3, x);
    _mm256_mul_ps(x, sigmoid(_mm256_mul_ps(splat(2.0 * 0.797_884_6), inner)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn have_avx2() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// Apply `f` to every input, 8 at a time.
    fn map(xs: &[f32], f: unsafe fn(__m256) -> __m256) -> Vec<f32> {
        let mut out = Vec::with_capacity(xs.len());
        for c in xs.chunks(8) {
            let mut buf = [0.0f32; 8];
            buf[..c.len()].copy_from_slice(c);
            unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), f(_mm256_loadu_ps(buf.as_ptr()))) };
            out.extend_from_slice(&buf[..c.len()]);
        }
        out
    }

    /// Evenly spaced samples of [lo, hi] plus every float bit pattern with a stride.
    fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..=n).map(|i| lo + (hi - lo) * (i as f32 / n as f32)).collect();
        v.extend((0..u32::MAX).step_by(4099).map(f32::from_bits).filter(|x| *x >= lo && *x <= hi));
        v
    }

    /// (max relative error, max absolute error) of `f` against `reference` over `xs`.
    fn errors(xs: &[f32], f: unsafe fn(__m256) -> __m256, reference: fn(f64) -> f64) -> (f64, f64) {
        let ys = map(xs, f);
        let (mut rel, mut abs_) = (0.0f64, 0.0f64);
        for (&x, &y) in xs.iter().zip(&ys) {
            let r = reference(x as f64);
            let d = (y as f64 - r).abs();
            abs_ = abs_.max(d);
            if r != 0.0 && r.abs() >= f32::MIN_POSITIVE as f64 {
                rel = rel.max(d / r.abs());
            }
        }
        (rel, abs_)
    }

    #[test]
    fn exp_accuracy() {
        if !have_avx2() {
            return;
        }
        let (rel, _) = errors(&sweep(-87.0, 88.0, 1 << 20), exp, f64::exp);
        eprintln!("exp max rel err {rel:.3e}");
        assert!(rel <= 2e-7, "exp rel err {rel}");
        let s = map(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 88.8, -104.0, -100.0, 0.0], exp);
        assert!(s[0].is_nan() && s[1] == f32::INFINITY && s[2] == 0.0 && s[3] == f32::INFINITY);
        assert_eq!(s[4], 0.0);
        assert_eq!(s[5], (-100.0f32).exp()); // subnormal result, rounds like libm
        assert_eq!(s[6], 1.0);
    }

    #[test]
    fn log_accuracy() {
        if !have_avx2() {
            return;
        }
        let xs: Vec<f32> = (1..0x7f80_0000u32).step_by(257).map(f32::from_bits).collect();
        let (rel, _) = errors(&xs, log, f64::ln);
        eprintln!("log max rel err {rel:.3e}");
        assert!(rel <= 2e-7, "log rel err {rel}");
        let s = map(&[0.0, -0.0, -1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.0], log);
        assert!(s[0] == f32::NEG_INFINITY && s[1] == f32::NEG_INFINITY && s[2].is_nan());
        assert!(s[3] == f32::INFINITY && s[4].is_nan() && s[5].is_nan() && s[6] == 0.0);
    }

    #[test]
    fn tanh_accuracy() {
        if !have_avx2() {
            return;
        }
        let mut xs = sweep(-20.0, 20.0, 1 << 20);
        xs.extend([1e-30f32, -1e-38, 1e-44, 0.624_999_9, 0.625]);
        let (rel, abs_) = errors(&xs, tanh, f64::tanh);
        eprintln!("tanh max rel err {rel:.3e}, abs err {abs_:.3e}");
        assert!(abs_ <= 3e-7 && rel <= 3e-7, "tanh rel {rel} abs {abs_}");
        let s = map(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -0.0, 50.0], tanh);
        assert!(s[0].is_nan() && s[1] == 1.0 && s[2] == -1.0 && s[3] == 1e-40 && s[5] == 1.0);
        assert!(s[4] == 0.0 && s[4].is_sign_negative());
    }

    #[test]
    fn sigmoid_accuracy() {
        if !have_avx2() {
            return;
        }
        let (rel, _) = errors(&sweep(-100.0, 30.0, 1 << 20), sigmoid, |x| 1.0 / (1.0 + (-x).exp()));
        eprintln!("sigmoid max rel err {rel:.3e}");
        assert!(rel <= 3e-7, "sigmoid rel err {rel}");
        let s = map(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -200.0], sigmoid);
        assert!(s[0].is_nan() && s[1] == 1.0 && s[2] == 0.0 && s[3] == 0.0);
    }

    #[test]
    fn erf_accuracy() {
        if !have_avx2() {
            return;
        }
        unsafe fn erf(x: __m256) -> __m256 {
            let q = erfc_nonneg(abs(x));
            let y = _mm256_sub_ps(_mm256_set1_ps(1.0), q);
            _mm256_or_ps(y, _mm256_and_ps(x, _mm256_set1_ps(-0.0)))
        }
        let (_, abs_) = errors(&sweep(-8.0, 8.0, 1 << 20), erf, crate::cpu::simd::tests::erf_f64);
        eprintln!("erf max abs err {abs_:.3e}");
        assert!(abs_ <= 1e-6, "erf abs err {abs_}");
    }
}
