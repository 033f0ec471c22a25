//! Explicit-SIMD vector kernels for the CPU backend: elementwise maps, whole-slice
//! reductions and fused row kernels over contiguous f32 slices. Single-threaded; callers
//! parallelise over rows.
//!
//! Every function takes the [`Isa`] to use (normally `isa::active()`). `Isa::Avx2Fma` runs
//! the `#[target_feature(enable = "avx2,fma")]` code, `Isa::Portable` plain Rust that
//! matches the scalar `eval_f32` definitions exactly. The AVX2 choice is re-checked
//! against the CPU (a cached flag test), so passing `Avx2Fma` on a CPU without it falls
//! back to portable instead of faulting: these functions are safe in every sense.
//!
//! Where things live:
//! - `simd/math_avx2.rs`: vector exp, log, tanh, sigmoid, erfc/GELU, with accuracy tests.
//! - `simd/elementwise.rs`: `unary`, `binary*` for both paths.
//! - `simd/reduce.rs`: `sum`, `max`, `dot`, `axpy` for both paths.
//! - `simd/rows.rs`: softmax, log-softmax, RMSNorm, LayerNorm row kernels.
//! - `simd/tests.rs`: both paths against `eval_f32` and f64, awkward lengths, specials.
//!
//! Agreement between paths: bit-identical for Neg, Sqrt, Rsqrt, Relu, Abs, Recip, Square,
//! Clamp, Affine, Powf and all binary ops. exp/log/tanh/sigmoid are within 1.8e-7
//! relative of f64 (measured, see `math_avx2.rs`), so within ~3e-7 of the libm-based
//! scalar path; GELUs within 1e-6 * max(1, |x|) absolute (the vector forms avoid the
//! 1 + tanh / 1 + erf cancellation of the scalar formulas, so they are closer to f64).
//! Reductions differ only by summation order.

use crate::cpu::isa::Isa;
use crate::ops::kinds::{BinaryOp, UnaryOp};

mod elementwise;
#[cfg(target_arch = "x86_64")]
mod math_avx2;
mod reduce;
mod rows;
#[cfg(test)]
mod tests;

pub use rows::{layer_norm_row, log_softmax_row, rms_norm_row, softmax_row};

use elementwise::Src;

/// True when `isa` asks for AVX2+FMA and this CPU has it (cached by std after first use).
#[inline]
fn use_avx2(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa == Isa::Avx2Fma && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// out[i] = op(x[i]). Powf is scalar on every path.
pub fn unary(isa: Isa, op: UnaryOp, x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "unary: x and out lengths differ");
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        // SAFETY: use_avx2 verified the CPU supports AVX2 and FMA.
        return unsafe { elementwise::avx2::unary(op, x, out) };
    }
    elementwise::portable::unary(op, x, out)
}

fn binary_any<A: Src, B: Src>(isa: Isa, op: BinaryOp, a: A, b: B, out: &mut [f32]) {
    assert!(a.len_ok(out.len()) && b.len_ok(out.len()), "binary: operand lengths differ");
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        // SAFETY: CPU checked; slice operands have out.len() elements (asserted above).
        return unsafe { elementwise::avx2::binary(op, a, b, out) };
    }
    elementwise::portable::binary(op, a, b, out)
}

/// out[i] = op(a[i], b[i]); all three the same length.
pub fn binary(isa: Isa, op: BinaryOp, a: &[f32], b: &[f32], out: &mut [f32]) {
    binary_any(isa, op, a, b, out)
}

/// out[i] = op(a[i], b).
pub fn binary_scalar_rhs(isa: Isa, op: BinaryOp, a: &[f32], b: f32, out: &mut [f32]) {
    binary_any(isa, op, a, b, out)
}

/// out[i] = op(a, b[i]).
pub fn binary_scalar_lhs(isa: Isa, op: BinaryOp, a: f32, b: &[f32], out: &mut [f32]) {
    binary_any(isa, op, a, b, out)
}

/// Sum of x (0 for empty): pairwise over 1024-element blocks, 32 partial sums inside a
/// block, so error grows like log n.
pub fn sum(isa: Isa, x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        return unsafe { reduce::avx2::sum(x) };
    }
    reduce::portable::sum(x)
}

/// Largest element; NaN if any element is NaN; -inf for an empty slice.
pub fn max(isa: Isa, x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        return unsafe { reduce::avx2::max(x) };
    }
    reduce::portable::max(x)
}

/// Sum of a[i] * b[i], accumulated like [`sum`] (with FMA on the AVX2 path).
pub fn dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        return unsafe { reduce::avx2::dot(a, b) };
    }
    reduce::portable::dot(a, b)
}

/// y[i] += alpha * x[i] (fused multiply-add on the AVX2 path).
pub fn axpy(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        return unsafe { reduce::avx2::axpy(alpha, x, y) };
    }
    reduce::portable::axpy(alpha, x, y)
}
