//! Vector f32 math, written once over [`F32Vec`] and so run at every SIMD level (AVX2,
//! AVX-512, NEON): exp, log, tanh, sigmoid, and the erfc used by exact GELU.
//!
//! Every function here is branch-free (all lanes take every path, then blend), handles
//! NaN / +-inf / subnormals the way the scalar `UnaryOp::eval_f32` definitions do, and has
//! its accuracy measured against f64 at every level by the tests at the bottom (numbers in
//! each doc). Coefficients are Cephes' single-precision minimax fits, evaluated with FMA.
//! The levels run the same operation sequence (`ldexp`/`frexp` are exact), so their
//! results agree bit for bit (tested).

// Coefficients are kept as published (more digits than f32 holds).
#![allow(clippy::excessive_precision)]

use super::vector::F32Vec;

#[inline(always)]
unsafe fn splat<V: F32Vec>(v: f32) -> V {
    // SAFETY: every function here runs inside `V::with` (module contract).
    unsafe { V::splat(v) }
}

/// e^x. Max relative error 8.1e-8 (< 1 ulp) on [-87, 88] (test `exp_accuracy`);
/// overflows to +inf above ln(f32::MAX), underflows through subnormals to 0, NaN passes.
///
/// # Safety (every function in this module)
/// Runs inside `V::with` on a CPU with the level.
#[inline(always)]
pub(crate) unsafe fn exp<V: F32Vec>(x: V) -> V {
    unsafe {
        // Clamping keeps n = round(x log2 e) within [-150, 128]: beyond that the answer is
        // 0 or inf anyway, and the clamp stops the integer exponent from wrapping.
        let xc = x.max(splat(-104.0)).min(splat(89.0));
        let n = xc.mul(splat(std::f32::consts::LOG2_E)).round();
        // Cody-Waite: LN2_HI has 9 significant bits, so n*LN2_HI is exact and x - n*LN2_HI
        // is exact too (Sterbenz); only the tiny LN2_LO correction rounds. r in [-ln2/2, ln2/2].
        let r = n.fnmadd(splat(0.693_359_4), xc);
        let r = n.fnmadd(splat(-2.121_944_4e-4), r);
        // e^r = 1 + r + r^2 P(r).
        let mut p: V = splat(1.987_569_1e-4);
        p = p.fmadd(r, splat(1.398_199_9e-3));
        p = p.fmadd(r, splat(8.333_452e-3));
        p = p.fmadd(r, splat(4.166_579_6e-2));
        p = p.fmadd(r, splat(1.666_666_5e-1));
        p = p.fmadd(r, splat(5.000_000_1e-1));
        let y = p.fmadd(r.mul(r), r).add(splat(1.0));
        // Scale by 2^n exactly (in two halves, so near-overflow reaches inf and tiny results
        // round to subnormals); the clamp turned NaN into a number: put it back.
        V::select(x.unord(x), x, y.ldexp(n))
    }
}

/// ln x. Max relative error 7.9e-8 over all positive normal and subnormal floats (test
/// `log_accuracy`); ln 0 = -inf, ln(negative) = NaN, ln(+inf) = +inf, NaN passes.
#[inline(always)]
pub(crate) unsafe fn log<V: F32Vec>(x: V) -> V {
    unsafe {
        let (m, e) = x.frexp(); // x = m 2^e, m in [0.5, 1)
                                // Move m into [sqrt(1/2), sqrt 2) so f = m - 1 is small; both forms of f are exact.
        let small = m.lt(splat(std::f32::consts::FRAC_1_SQRT_2));
        let e = e.sub(V::select(small, splat(1.0), splat(0.0)));
        let f = m.sub(splat(1.0)).add(V::select(small, m, splat(0.0)));
        // ln(1+f) = f - f^2/2 + f^3 P(f); e*ln2 is added as hi + lo so the sum stays exact-ish.
        let z = f.mul(f);
        let mut p: V = splat(7.037_683_6e-2);
        p = p.fmadd(f, splat(-1.151_461e-1));
        p = p.fmadd(f, splat(1.167_699_9e-1));
        p = p.fmadd(f, splat(-1.242_014_1e-1));
        p = p.fmadd(f, splat(1.424_932_3e-1));
        p = p.fmadd(f, splat(-1.666_805_8e-1));
        p = p.fmadd(f, splat(2.000_071_4e-1));
        p = p.fmadd(f, splat(-2.499_999_4e-1));
        p = p.fmadd(f, splat(3.333_333_1e-1));
        let mut y = p.mul(f).mul(z);
        y = e.fmadd(splat(-2.121_944_4e-4), y);
        y = z.fnmadd(splat(0.5), y);
        let r = f.add(y);
        let r = e.fmadd(splat(0.693_359_4), r);
        // Special inputs: +inf and NaN pass through, 0 -> -inf, negative -> NaN.
        let pass = V::mask_or(x.unord(x), x.eq(splat(f32::INFINITY)));
        let r = V::select(pass, x, r);
        let r = V::select(x.eq(splat(0.0)), splat(f32::NEG_INFINITY), r);
        V::select(x.lt(splat(0.0)), splat(f32::NAN), r)
    }
}

/// tanh x. Max absolute error 7.3e-8 and max relative error 1.3e-7 (test
/// `tanh_accuracy`). Below |x| = 0.625 an odd polynomial keeps relative accuracy down to
/// subnormals; 1 - 2/(e^2|x| + 1) there would cancel. Saturates to +-1, NaN passes.
#[inline(always)]
pub(crate) unsafe fn tanh<V: F32Vec>(x: V) -> V {
    unsafe {
        let ax = x.abs();
        let z = x.mul(x);
        let mut p: V = splat(-5.704_988_7e-3);
        p = p.fmadd(z, splat(2.063_908_9e-2));
        p = p.fmadd(z, splat(-5.373_971_6e-2));
        p = p.fmadd(z, splat(1.333_144_2e-1));
        p = p.fmadd(z, splat(-3.333_328_2e-1));
        let near0 = p.mul(z).fmadd(x, x);
        // e^(2|x|) overflows to inf past |x| ~ 44, giving exactly 1: the right saturation.
        let e = exp(ax.add(ax));
        let far = splat::<V>(1.0).sub(splat::<V>(2.0).div(e.add(splat(1.0))));
        let r = V::select(ax.lt(splat(0.625)), near0, far);
        // tanh is odd: copy x's sign (far is >= 0; this also keeps tanh(-0) = -0).
        r.or_sign_of(x)
    }
}

/// 1 / (1 + e^-x), computed from e^-|x| (never overflows) as 1/(1+e) or e/(1+e) by sign,
/// like the scalar `sigmoid`. Max relative error 1.8e-7 (test `sigmoid_accuracy`).
#[inline(always)]
pub(crate) unsafe fn sigmoid<V: F32Vec>(x: V) -> V {
    unsafe {
        let e = exp(x.abs().neg()); // e^-|x|
        let num = V::select(x.ge(splat(0.0)), splat(1.0), e);
        num.div(splat::<V>(1.0).add(e))
    }
}

/// erfc(z) for z >= 0 (or +inf), Numerical Recipes' erfcc rational-exponential form (the
/// same one `kinds::erf_f32` evaluates in f64), here in f32. Absolute error 3.6e-7 for
/// erf = 1 - erfc (test `erf_accuracy`); the f32 rounding of -z^2 costs relative accuracy
/// deep in the tail (erfc(4) ~ 1.5e-8), harmless for GELU.
#[inline(always)]
pub(crate) unsafe fn erfc_nonneg<V: F32Vec>(z: V) -> V {
    unsafe {
        let t = splat::<V>(1.0).div(splat::<V>(0.5).fmadd(z, splat(1.0)));
        let mut p: V = splat(0.170_872_77);
        p = p.fmadd(t, splat(-0.822_152_23));
        p = p.fmadd(t, splat(1.488_515_87));
        p = p.fmadd(t, splat(-1.135_203_98));
        p = p.fmadd(t, splat(0.278_868_07));
        p = p.fmadd(t, splat(-0.186_288_06));
        p = p.fmadd(t, splat(0.096_784_18));
        p = p.fmadd(t, splat(0.374_091_96));
        p = p.fmadd(t, splat(1.000_023_68));
        p = p.fmadd(t, splat(-1.265_512_23));
        t.mul(exp(z.fnmadd(z, p)))
    }
}

/// Exact GELU 0.5 x (1 + erf(x/sqrt 2)) written as 0.5 x erfc(-x/sqrt 2), so negative x
/// uses the erfc tail directly instead of cancelling 1 + erf. Absolute error within
/// 1e-6 * max(1, |x|) of f64 (checked in `tests.rs`).
#[inline(always)]
pub(crate) unsafe fn gelu_erf<V: F32Vec>(x: V) -> V {
    unsafe {
        let q = erfc_nonneg(x.mul(splat(std::f32::consts::FRAC_1_SQRT_2)).abs());
        let half_q = splat::<V>(0.5).mul(q);
        // x >= 0: 0.5 erfc(-z) = 1 - 0.5 erfc(z);  x < 0: 0.5 erfc(|z|).
        x.mul(V::select(x.ge(splat(0.0)), splat::<V>(1.0).sub(half_q), half_q))
    }
}

/// GPT-2 GELU 0.5 x (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3), written as
/// x * sigmoid(2u): the same function without 1 + tanh cancelling for negative x.
#[inline(always)]
pub(crate) unsafe fn gelu_tanh<V: F32Vec>(x: V) -> V {
    unsafe {
        let x3 = x.mul(x).mul(x);
        let inner = splat::<V>(0.044_715).fmadd(x3, x);
        x.mul(sigmoid(splat::<V>(2.0 * 0.797_884_6).mul(inner)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::isa::{can_test, Isa};

    type VecFn = fn(Isa, &[f32]) -> Vec<f32>;

    /// `f` applied to every input, `V::LANES` at a time (a partial last chunk).
    fn map_at<V: F32Vec>(xs: &[f32], f: impl Fn(V) -> V) -> Vec<f32> {
        let mut out = vec![0f32; xs.len()];
        // SAFETY: callers check the CPU runs the level (`can_test`) before choosing V.
        unsafe {
            V::with(|| {
                for (c, o) in xs.chunks(V::LANES).zip(out.chunks_mut(V::LANES)) {
                    if c.len() == V::LANES {
                        f(V::load(c.as_ptr())).store(o.as_mut_ptr())
                    } else {
                        f(V::load_partial(c.as_ptr(), c.len())).store_partial(o.as_mut_ptr(), c.len())
                    }
                }
            })
        }
        out
    }

    /// `$f` (a generic math function) mapped over `xs` at `isa`.
    macro_rules! at_level {
        ($f:ident) => {
            |isa: Isa, xs: &[f32]| -> Vec<f32> {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => map_at::<super::super::vector_x86::Avx2>(
                        xs,
                        #[inline(always)]
                        |v| unsafe { $f(v) },
                    ),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => map_at::<super::super::vector_x86::Avx512>(
                        xs,
                        #[inline(always)]
                        |v| unsafe { $f(v) },
                    ),
                    #[cfg(target_arch = "aarch64")]
                    Isa::Neon => map_at::<super::super::vector_neon::Neon>(
                        xs,
                        #[inline(always)]
                        |v| unsafe { $f(v) },
                    ),
                    _ => unreachable!("{isa} has no vector type"),
                }
            }
        };
    }

    /// The SIMD levels this CPU runs (each skipped level is reported by `can_test`).
    fn levels(what: &str) -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|&i| i != Isa::Portable && i.compiled() && can_test(i, what)).collect()
    }

    /// Evenly spaced samples of [lo, hi] plus every float bit pattern with a stride.
    fn sweep(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..=n).map(|i| lo + (hi - lo) * (i as f32 / n as f32)).collect();
        v.extend((0..u32::MAX).step_by(4099).map(f32::from_bits).filter(|x| *x >= lo && *x <= hi));
        v
    }

    /// (max relative error, max absolute error) of `ys` against `reference` over `xs`.
    fn errors(xs: &[f32], ys: &[f32], reference: fn(f64) -> f64) -> (f64, f64) {
        let (mut rel, mut abs_) = (0.0f64, 0.0f64);
        for (&x, &y) in xs.iter().zip(ys) {
            let r = reference(x as f64);
            let d = (y as f64 - r).abs();
            abs_ = abs_.max(d);
            if r != 0.0 && r.abs() >= f32::MIN_POSITIVE as f64 {
                rel = rel.max(d / r.abs());
            }
        }
        (rel, abs_)
    }

    /// Runs `f` at every level on `xs`, checks the levels agree bit for bit, returns the
    /// first level's output (None when no SIMD level runs here).
    fn all_levels(what: &str, f: VecFn, xs: &[f32]) -> Option<Vec<f32>> {
        let mut first: Option<(Isa, Vec<f32>)> = None;
        for isa in levels(what) {
            let ys = f(isa, xs);
            if let Some((i0, y0)) = &first {
                let same = y0.iter().zip(&ys).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
                assert!(same, "{what}: {isa} and {i0} differ");
            } else {
                first = Some((isa, ys));
            }
        }
        first.map(|(_, y)| y)
    }

    #[test]
    fn exp_accuracy() {
        let xs = sweep(-87.0, 88.0, 1 << 20);
        let Some(ys) = all_levels("exp_accuracy", at_level!(exp), &xs) else { return };
        let (rel, _) = errors(&xs, &ys, f64::exp);
        eprintln!("exp max rel err {rel:.3e}");
        assert!(rel <= 2e-7, "exp rel err {rel}");
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 88.8, -104.0, -100.0, 0.0];
        let s = all_levels("exp specials", at_level!(exp), &specials).unwrap();
        assert!(s[0].is_nan() && s[1] == f32::INFINITY && s[2] == 0.0 && s[3] == f32::INFINITY);
        assert_eq!(s[4], 0.0);
        assert_eq!(s[5], (-100.0f32).exp()); // subnormal result, rounds like libm
        assert_eq!(s[6], 1.0);
    }

    #[test]
    fn log_accuracy() {
        let xs: Vec<f32> = (1..0x7f80_0000u32).step_by(257).map(f32::from_bits).collect();
        let Some(ys) = all_levels("log_accuracy", at_level!(log), &xs) else { return };
        let (rel, _) = errors(&xs, &ys, f64::ln);
        eprintln!("log max rel err {rel:.3e}");
        assert!(rel <= 2e-7, "log rel err {rel}");
        let specials = [0.0, -0.0, -1.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1.0];
        let s = all_levels("log specials", at_level!(log), &specials).unwrap();
        assert!(s[0] == f32::NEG_INFINITY && s[1] == f32::NEG_INFINITY && s[2].is_nan());
        assert!(s[3] == f32::INFINITY && s[4].is_nan() && s[5].is_nan() && s[6] == 0.0);
    }

    #[test]
    fn tanh_accuracy() {
        let mut xs = sweep(-20.0, 20.0, 1 << 20);
        xs.extend([1e-30f32, -1e-38, 1e-44, 0.624_999_9, 0.625]);
        let Some(ys) = all_levels("tanh_accuracy", at_level!(tanh), &xs) else { return };
        let (rel, abs_) = errors(&xs, &ys, f64::tanh);
        eprintln!("tanh max rel err {rel:.3e}, abs err {abs_:.3e}");
        assert!(abs_ <= 3e-7 && rel <= 3e-7, "tanh rel {rel} abs {abs_}");
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -0.0, 50.0];
        let s = all_levels("tanh specials", at_level!(tanh), &specials).unwrap();
        assert!(s[0].is_nan() && s[1] == 1.0 && s[2] == -1.0 && s[3] == 1e-40 && s[5] == 1.0);
        assert!(s[4] == 0.0 && s[4].is_sign_negative());
    }

    #[test]
    fn sigmoid_accuracy() {
        let xs = sweep(-100.0, 30.0, 1 << 20);
        let Some(ys) = all_levels("sigmoid_accuracy", at_level!(sigmoid), &xs) else { return };
        let (rel, _) = errors(&xs, &ys, |x| 1.0 / (1.0 + (-x).exp()));
        eprintln!("sigmoid max rel err {rel:.3e}");
        assert!(rel <= 3e-7, "sigmoid rel err {rel}");
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -200.0];
        let s = all_levels("sigmoid specials", at_level!(sigmoid), &specials).unwrap();
        assert!(s[0].is_nan() && s[1] == 1.0 && s[2] == 0.0 && s[3] == 0.0);
    }

    #[test]
    fn erf_accuracy() {
        #[inline(always)]
        unsafe fn erf<V: F32Vec>(x: V) -> V {
            unsafe { V::splat(1.0).sub(erfc_nonneg(x.abs())).or_sign_of(x) }
        }
        let xs = sweep(-8.0, 8.0, 1 << 20);
        let Some(ys) = all_levels("erf_accuracy", at_level!(erf), &xs) else { return };
        let (_, abs_) = errors(&xs, &ys, crate::cpu::simd::tests::erf_f64);
        eprintln!("erf max abs err {abs_:.3e}");
        assert!(abs_ <= 1e-6, "erf abs err {abs_}");
    }
}
