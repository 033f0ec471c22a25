//! Elementwise kernels (`unary`, `binary` and its scalar-broadcast forms), portable and
//! AVX2+FMA side by side. The public entry points and the ISA choice live in `simd.rs`.
//!
//! A binary operand is either a slice or one broadcast scalar ([`Src`]); the loops are
//! generic over it, so the three public binary forms share one kernel per op.

use crate::ops::kinds::{BinaryOp, UnaryOp};

/// One side of a binary op: a slice read lane by lane, or a scalar repeated.
pub(super) trait Src: Copy {
    fn at(self, i: usize) -> f32;
    /// Whether this operand can pair with `n` output elements.
    fn len_ok(self, n: usize) -> bool;
    /// Eight lanes starting at `i`; the caller guarantees `i + 8 <= len` for slices.
    #[cfg(target_arch = "x86_64")]
    unsafe fn lanes(self, i: usize) -> std::arch::x86_64::__m256;
}

impl Src for &[f32] {
    #[inline(always)]
    fn at(self, i: usize) -> f32 {
        self[i]
    }
    fn len_ok(self, n: usize) -> bool {
        self.len() == n
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn lanes(self, i: usize) -> std::arch::x86_64::__m256 {
        unsafe { std::arch::x86_64::_mm256_loadu_ps(self.as_ptr().add(i)) }
    }
}

impl Src for f32 {
    #[inline(always)]
    fn at(self, _: usize) -> f32 {
        self
    }
    fn len_ok(self, _: usize) -> bool {
        true
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn lanes(self, _: usize) -> std::arch::x86_64::__m256 {
        unsafe { std::arch::x86_64::_mm256_set1_ps(self) }
    }
}

pub(super) mod portable {
    use super::*;

    #[inline(always)]
    fn map(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f(v);
        }
    }

    /// The scalar definitions themselves; each arm names its variant as a constant so the
    /// op's `match` folds away and the loop body is straight-line code.
    pub fn unary(op: UnaryOp, x: &[f32], out: &mut [f32]) {
        use UnaryOp as U;
        match op {
            U::Neg => map(x, out, |v| U::Neg.eval_f32(v)),
            U::Exp => map(x, out, |v| U::Exp.eval_f32(v)),
            U::Log => map(x, out, |v| U::Log.eval_f32(v)),
            U::Sqrt => map(x, out, |v| U::Sqrt.eval_f32(v)),
            U::Rsqrt => map(x, out, |v| U::Rsqrt.eval_f32(v)),
            U::Tanh => map(x, out, |v| U::Tanh.eval_f32(v)),
            U::Sigmoid => map(x, out, |v| U::Sigmoid.eval_f32(v)),
            U::Relu => map(x, out, |v| U::Relu.eval_f32(v)),
            U::Silu => map(x, out, |v| U::Silu.eval_f32(v)),
            U::GeluTanh => map(x, out, |v| U::GeluTanh.eval_f32(v)),
            U::GeluErf => map(x, out, |v| U::GeluErf.eval_f32(v)),
            U::Abs => map(x, out, |v| U::Abs.eval_f32(v)),
            U::Recip => map(x, out, |v| U::Recip.eval_f32(v)),
            U::Square => map(x, out, |v| U::Square.eval_f32(v)),
            U::Powf(e) => map(x, out, |v| U::Powf(e).eval_f32(v)),
            U::Clamp { min, max } => map(x, out, |v| U::Clamp { min, max }.eval_f32(v)),
            U::Affine { mul, add } => map(x, out, |v| U::Affine { mul, add }.eval_f32(v)),
        }
    }

    #[inline(always)]
    fn zip<A: Src, B: Src>(a: A, b: B, out: &mut [f32], f: impl Fn(f32, f32) -> f32) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = f(a.at(i), b.at(i));
        }
    }

    pub fn binary<A: Src, B: Src>(op: BinaryOp, a: A, b: B, out: &mut [f32]) {
        use BinaryOp as B_;
        match op {
            B_::Add => zip(a, b, out, |x, y| B_::Add.eval_f32(x, y)),
            B_::Sub => zip(a, b, out, |x, y| B_::Sub.eval_f32(x, y)),
            B_::Mul => zip(a, b, out, |x, y| B_::Mul.eval_f32(x, y)),
            B_::Div => zip(a, b, out, |x, y| B_::Div.eval_f32(x, y)),
            B_::Maximum => zip(a, b, out, |x, y| B_::Maximum.eval_f32(x, y)),
            B_::Minimum => zip(a, b, out, |x, y| B_::Minimum.eval_f32(x, y)),
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use super::super::math_avx2 as m;
    use super::*;
    use std::arch::x86_64::*;

    /// out[i] = f(x[i]) eight at a time; the tail goes through a zero-padded buffer so it
    /// takes exactly the same vector math as the body (no scalar/vector disagreement).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn map(x: &[f32], out: &mut [f32], f: impl Fn(__m256) -> __m256) {
        let n = x.len().min(out.len());
        let body = n - n % 8;
        let mut i = 0;
        while i < body {
            // SAFETY: i + 8 <= body <= len of both slices.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(i), f(_mm256_loadu_ps(x.as_ptr().add(i)))) };
            i += 8;
        }
        if body < n {
            let mut buf = [0.0f32; 8];
            buf[..n - body].copy_from_slice(&x[body..n]);
            unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), f(_mm256_loadu_ps(buf.as_ptr()))) };
            out[body..n].copy_from_slice(&buf[..n - body]);
        }
    }

    /// Vector versions of every `UnaryOp` except `Powf`, which stays scalar.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn unary(op: UnaryOp, x: &[f32], out: &mut [f32]) {
        use UnaryOp as U;
        let splat = |v: f32| _mm256_set1_ps(v);
        match op {
            U::Neg => map(x, out, |v| _mm256_xor_ps(v, splat(-0.0))),
            U::Exp => map(x, out, |v| m::exp(v)),
            U::Log => map(x, out, |v| m::log(v)),
            U::Sqrt => map(x, out, |v| _mm256_sqrt_ps(v)),
            // Correctly rounded sqrt then divide, bit-identical to the scalar 1.0 / x.sqrt()
            // (vrsqrtps is only 12 bits).
            U::Rsqrt => map(x, out, |v| _mm256_div_ps(splat(1.0), _mm256_sqrt_ps(v))),
            U::Tanh => map(x, out, |v| m::tanh(v)),
            U::Sigmoid => map(x, out, |v| m::sigmoid(v)),
            // Keep x where x > 0 or x is NaN (NLE_UQ is true for unordered), else +0.
            U::Relu => map(x, out, |v| _mm256_and_ps(v, _mm256_cmp_ps::<_CMP_NLE_UQ>(v, _mm256_setzero_ps()))),
            U::Silu => map(x, out, |v| _mm256_mul_ps(v, m::sigmoid(v))),
            U::GeluTanh => map(x, out, |v| m::gelu_tanh(v)),
            U::GeluErf => map(x, out, |v| m::gelu_erf(v)),
            U::Abs => map(x, out, |v| m::abs(v)),
            U::Recip => map(x, out, |v| _mm256_div_ps(splat(1.0), v)),
            U::Square => map(x, out, |v| _mm256_mul_ps(v, v)),
            U::Powf(_) => portable::unary(op, x, out),
            // max_ps/min_ps return their second operand when either is NaN: with x second a
            // NaN x survives both steps, and a NaN bound is ignored, as f32::max/min do.
            U::Clamp { min, max } => {
                let (lo, hi) = (splat(min), splat(max));
                map(x, out, |v| _mm256_min_ps(hi, _mm256_max_ps(lo, v)))
            }
            // Separate mul and add (no FMA) to round exactly like the scalar x * mul + add.
            U::Affine { mul, add } => {
                let (mv, av) = (splat(mul), splat(add));
                map(x, out, |v| _mm256_add_ps(_mm256_mul_ps(v, mv), av))
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn zip<A: Src, B: Src>(a: A, b: B, out: &mut [f32], f: impl Fn(__m256, __m256) -> __m256) {
        let n = out.len();
        let body = n - n % 8;
        let mut i = 0;
        while i < body {
            // SAFETY: the caller checked that slice operands have out.len() elements.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(i), f(a.lanes(i), b.lanes(i))) };
            i += 8;
        }
        if body < n {
            let (mut ba, mut bb) = ([0.0f32; 8], [0.0f32; 8]);
            for j in 0..n - body {
                ba[j] = a.at(body + j);
                bb[j] = b.at(body + j);
            }
            let v = unsafe { f(_mm256_loadu_ps(ba.as_ptr()), _mm256_loadu_ps(bb.as_ptr())) };
            unsafe { _mm256_storeu_ps(ba.as_mut_ptr(), v) };
            out[body..].copy_from_slice(&ba[..n - body]);
        }
    }

    /// `a` and `b` are slices of `out.len()` elements or broadcast scalars.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn binary<A: Src, B: Src>(op: BinaryOp, a: A, b: B, out: &mut [f32]) {
        // Maximum/Minimum: any NaN input gives NaN. max_ps alone would drop a NaN in one
        // operand, so OR in an all-ones (NaN) mask wherever the pair is unordered.
        let nan_or = |r: __m256, x: __m256, y: __m256| _mm256_or_ps(r, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, y));
        match op {
            BinaryOp::Add => zip(a, b, out, |x, y| _mm256_add_ps(x, y)),
            BinaryOp::Sub => zip(a, b, out, |x, y| _mm256_sub_ps(x, y)),
            BinaryOp::Mul => zip(a, b, out, |x, y| _mm256_mul_ps(x, y)),
            BinaryOp::Div => zip(a, b, out, |x, y| _mm256_div_ps(x, y)),
            BinaryOp::Maximum => zip(a, b, out, |x, y| nan_or(_mm256_max_ps(x, y), x, y)),
            BinaryOp::Minimum => zip(a, b, out, |x, y| nan_or(_mm256_min_ps(x, y), x, y)),
        }
    }
}
