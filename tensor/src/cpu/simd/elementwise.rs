//! Elementwise kernels (`unary`, `binary` and its scalar-broadcast forms): the portable
//! twin and the SIMD version, generic over the level's vector type. The public entry points
//! and the ISA choice live in `simd.rs`.
//!
//! A binary operand is either a slice or one broadcast scalar ([`Src`]); the loops are
//! generic over it, so the three public binary forms share one kernel per op.

use super::vector::Src;
use super::Store;
use crate::ops::kinds::{BinaryOp, UnaryOp};

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

/// The SIMD version at any level `V`: every `UnaryOp` but `Powf` (scalar on every path) and
/// every `BinaryOp`, with the same results as the portable twin (bit for bit except the
/// transcendental functions, see `simd.rs`).
pub(super) mod vector {
    use super::super::math as m;
    use super::super::vector::F32Vec;
    use super::*;

    /// `out[i..i + n] = f(i, n)` for a vector-producing `f(i, n)`: whole vectors, streamed
    /// when asked (after a partial head that aligns `out` for `V::stream`), then one partial
    /// vector for the tail. Head and tail go through the same vector code as the body, so
    /// no element sees scalar arithmetic.
    ///
    /// # Safety
    /// Inside `V::with`; `f(i, n)` may read `n` lanes from `i` for `i + n <= out.len()`.
    #[inline(always)]
    pub unsafe fn fill<V: F32Vec>(out: &mut [f32], store: Store, f: impl Fn(usize, usize) -> V) {
        let (n, op) = (out.len(), out.as_mut_ptr());
        let mut i = 0;
        // SAFETY: every access below is inside out[..n]; the streamed ones are aligned.
        unsafe {
            let head = match store {
                Store::Cached => None,
                Store::Stream => Some(op.align_offset(V::LANES * 4)).filter(|&h| h < V::LANES),
            };
            if let Some(h) = head {
                i = h.min(n);
                if i > 0 {
                    f(0, i).store_partial(op, i);
                }
                while i + V::LANES <= n {
                    f(i, V::LANES).stream(op.add(i));
                    i += V::LANES;
                }
                V::stream_fence();
            }
            while i + V::LANES <= n {
                f(i, V::LANES).store(op.add(i));
                i += V::LANES;
            }
            if i < n {
                f(i, n - i).store_partial(op.add(i), n - i);
            }
        }
    }

    #[inline(always)]
    unsafe fn map<V: F32Vec>(x: &[f32], out: &mut [f32], store: Store, f: impl Fn(V) -> V) {
        debug_assert_eq!(x.len(), out.len());
        // SAFETY: caller; fill asks for lanes inside out.len() == x.len().
        unsafe {
            fill(
                out,
                store,
                #[inline(always)]
                |i, n| f(x.partial_or_lanes(i, n)),
            )
        }
    }

    /// # Safety
    /// Inside `V::with` on a CPU with the level; `x.len() == out.len()`.
    #[inline(always)]
    pub unsafe fn unary<V: F32Vec>(op: UnaryOp, x: &[f32], out: &mut [f32], store: Store) {
        use UnaryOp as U;
        // SAFETY (every arm): caller.
        unsafe {
            let splat = V::splat;
            match op {
                U::Neg => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| v.neg(),
                ),
                U::Exp => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| m::exp(v),
                ),
                U::Log => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| m::log(v),
                ),
                U::Sqrt => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| v.sqrt(),
                ),
                // Correctly rounded sqrt then divide, bit-identical to the scalar
                // 1.0 / x.sqrt() (the hardware reciprocal square roots are approximations).
                U::Rsqrt => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| splat(1.0).div(v.sqrt()),
                ),
                U::Tanh => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| m::tanh(v),
                ),
                U::Sigmoid => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| m::sigmoid(v),
                ),
                // Keep x where x > 0 or x is NaN, else +0.
                U::Relu => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| {
                        let keep = V::mask_or(splat(0.0).lt(v), v.unord(v));
                        V::select(keep, v, splat(0.0))
                    },
                ),
                U::Silu => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| v.mul(m::sigmoid(v)),
                ),
                U::GeluTanh => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| m::gelu_tanh(v),
                ),
                U::GeluErf => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| m::gelu_erf(v),
                ),
                U::Abs => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| v.abs(),
                ),
                U::Recip => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| splat(1.0).div(v),
                ),
                U::Square => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| v.mul(v),
                ),
                U::Powf(_) => portable::unary(op, x, out),
                // min/max return their second operand when either is NaN: with x second a NaN
                // x survives both steps, and a NaN bound is ignored, as f32::max/min do.
                U::Clamp { min, max } => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| splat(max).min(splat(min).max(v)),
                ),
                // Separate mul and add (no FMA) to round exactly like the scalar x * mul + add.
                U::Affine { mul, add } => map(
                    x,
                    out,
                    store,
                    #[inline(always)]
                    |v: V| v.mul(splat(mul)).add(splat(add)),
                ),
            }
        }
    }

    /// `out[i] = f(a[i], b[i])` through [`fill`].
    #[inline(always)]
    unsafe fn zip<V: F32Vec, A: Src, B: Src>(a: A, b: B, out: &mut [f32], store: Store, f: impl Fn(V, V) -> V) {
        // SAFETY: caller; `fill` asks for lanes inside `out.len()`, which slice operands have.
        unsafe {
            fill(
                out,
                store,
                #[inline(always)]
                |i, n| f(a.partial_or_lanes(i, n), b.partial_or_lanes(i, n)),
            )
        }
    }

    /// Maximum/Minimum: any NaN input gives NaN. `max`/`min` alone would drop a NaN in one
    /// operand, so pick NaN wherever the pair is unordered.
    #[inline(always)]
    unsafe fn nan_or<V: F32Vec>(r: V, x: V, y: V) -> V {
        // SAFETY: caller (inside `V::with`).
        unsafe { V::select(x.unord(y), V::splat(f32::NAN), r) }
    }

    /// `a` and `b` are slices of `out.len()` elements or broadcast scalars.
    ///
    /// # Safety
    /// Inside `V::with` on a CPU with the level; slice operands have `out.len()` elements.
    #[inline(always)]
    pub unsafe fn binary<V: F32Vec, A: Src, B: Src>(op: BinaryOp, a: A, b: B, out: &mut [f32], store: Store) {
        // SAFETY (every arm): caller.
        unsafe {
            match op {
                BinaryOp::Add => zip(
                    a,
                    b,
                    out,
                    store,
                    #[inline(always)]
                    |x: V, y: V| x.add(y),
                ),
                BinaryOp::Sub => zip(
                    a,
                    b,
                    out,
                    store,
                    #[inline(always)]
                    |x: V, y: V| x.sub(y),
                ),
                BinaryOp::Mul => zip(
                    a,
                    b,
                    out,
                    store,
                    #[inline(always)]
                    |x: V, y: V| x.mul(y),
                ),
                BinaryOp::Div => zip(
                    a,
                    b,
                    out,
                    store,
                    #[inline(always)]
                    |x: V, y: V| x.div(y),
                ),
                BinaryOp::Maximum => zip(
                    a,
                    b,
                    out,
                    store,
                    #[inline(always)]
                    |x: V, y: V| nan_or(x.max(y), x, y),
                ),
                BinaryOp::Minimum => zip(
                    a,
                    b,
                    out,
                    store,
                    #[inline(always)]
                    |x: V, y: V| nan_or(x.min(y), x, y),
                ),
            }
        }
    }
}
