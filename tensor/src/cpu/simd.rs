//! Explicit-SIMD vector kernels for the CPU backend: elementwise maps, whole-slice
//! reductions and fused row kernels over contiguous f32 slices. Single-threaded; callers
//! parallelise over rows.
//!
//! Every function takes the [`Isa`] to use (normally `isa::active()`). Each kernel is
//! written twice: a portable twin in plain Rust that matches the scalar `eval_f32`
//! definitions exactly, and one generic version over [`vector::F32Vec`] that runs at every
//! SIMD level (AVX2, AVX-512, NEON) by instantiating it with the level's vector type inside
//! a function compiled for that level ([`dispatch!`]). The level is re-checked against the
//! CPU (a cached flag test), so passing a level this CPU lacks falls back to the level
//! below or the portable path instead of faulting: these functions are safe in every sense.
//!
//! Where things live:
//! - `simd/vector.rs`: the vector trait; `vector_x86.rs`, `vector_neon.rs` its levels.
//! - `simd/math.rs`: vector exp, log, tanh, sigmoid, erfc/GELU, with accuracy tests.
//! - `simd/elementwise.rs`: `unary`, `binary*`.
//! - `simd/reduce.rs`: `sum`, `max`, `dot`, `axpy`.
//! - `simd/rows.rs`: softmax, log-softmax, RMSNorm, LayerNorm row kernels.
//! - `simd/tests.rs`: every level against `eval_f32` and f64, awkward lengths, specials.
//!
//! Agreement between paths: bit-identical for Neg, Sqrt, Rsqrt, Relu, Abs, Recip, Square,
//! Clamp, Affine, Powf and all binary ops. exp/log/tanh/sigmoid are within 1.8e-7
//! relative of f64 (measured, see `math.rs`), so within ~3e-7 of the libm-based scalar
//! path; GELUs within 1e-6 * max(1, |x|) absolute (the vector forms avoid the 1 + tanh /
//! 1 + erf cancellation of the scalar formulas, so they are closer to f64). The SIMD
//! levels agree with each other bit for bit on the elementwise ops (tested in `math.rs`).
//! Reductions differ only by summation order.

use crate::cpu::isa::Isa;
use crate::ops::kinds::{BinaryOp, UnaryOp};

/// Runs `$simd` with `$V` bound to the vector type of the SIMD level `$isa` resolves to on
/// this CPU (see [`resolve`]), inside a function compiled for that level; `$portable`
/// when it resolves to the portable path.
macro_rules! dispatch {
    ($isa:expr, $V:ident => $simd:expr, _ => $portable:expr) => {{
        #[allow(unused_imports)]
        use $crate::cpu::simd::vector::F32Vec as _;
        match $crate::cpu::simd::resolve($isa) {
            #[cfg(target_arch = "x86_64")]
            $crate::cpu::isa::Isa::Avx512 => {
                type $V = $crate::cpu::simd::vector_x86::Avx512;
                // SAFETY: `resolve` checked that the CPU runs the level.
                #[allow(unused_unsafe)]
                unsafe {
                    $V::with(
                        #[inline(always)]
                        || $simd,
                    )
                }
            }
            #[cfg(target_arch = "x86_64")]
            $crate::cpu::isa::Isa::Avx2Fma => {
                type $V = $crate::cpu::simd::vector_x86::Avx2;
                // SAFETY: as above.
                #[allow(unused_unsafe)]
                unsafe {
                    $V::with(
                        #[inline(always)]
                        || $simd,
                    )
                }
            }
            #[cfg(target_arch = "aarch64")]
            $crate::cpu::isa::Isa::Neon => {
                type $V = $crate::cpu::simd::vector_neon::Neon;
                // SAFETY: as above.
                #[allow(unused_unsafe)]
                unsafe {
                    $V::with(
                        #[inline(always)]
                        || $simd,
                    )
                }
            }
            _ => $portable,
        }
    }};
}

mod adamw;
mod elementwise;
mod math;
mod reduce;
mod rows;
#[cfg(test)]
mod tests;
pub(crate) mod vector;
#[cfg(target_arch = "aarch64")]
pub(crate) mod vector_neon;
#[cfg(target_arch = "x86_64")]
pub(crate) mod vector_x86;

pub use adamw::AdamWConsts;
pub use rows::{layer_norm_row, log_softmax_row, rms_norm_row, softmax_row};

use vector::Src;

/// The level a kernel asked for `isa` runs at on this CPU: the level itself when the CPU
/// has it, AVX2 for AVX-512 on a CPU with AVX2 only, else portable.
#[inline]
pub(crate) fn resolve(isa: Isa) -> Isa {
    match isa {
        Isa::Avx512 if isa.supported() => Isa::Avx512,
        Isa::Avx512 | Isa::Avx2Fma if Isa::Avx2Fma.supported() => Isa::Avx2Fma,
        Isa::Neon if isa.supported() => Isa::Neon,
        _ => Isa::Portable,
    }
}

/// How a kernel writes its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// Ordinary stores: the output stays in cache for the next op.
    Cached,
    /// Non-temporal stores where the level has them (x86): the output goes to memory
    /// without being read first or evicting the caches. Pays when the whole output is too
    /// big to be read back from cache by the next op ([`Store::for_output`]).
    Stream,
}

impl Store {
    /// Outputs at least this big are streamed: about the size of a server part's share of
    /// L3, beyond which the next op reads the output from memory anyway.
    pub const STREAM_MIN_BYTES: usize = 16 << 20;

    /// The store for an op whose whole output has `elements` f32 values.
    pub fn for_output(elements: usize) -> Store {
        if elements.saturating_mul(4) >= Store::STREAM_MIN_BYTES {
            Store::Stream
        } else {
            Store::Cached
        }
    }
}

/// out[i] = op(x[i]). Powf is scalar on every path.
pub fn unary(isa: Isa, op: UnaryOp, x: &[f32], out: &mut [f32], store: Store) {
    assert_eq!(x.len(), out.len(), "unary: x and out lengths differ");
    dispatch!(isa, V => elementwise::vector::unary::<V>(op, x, out, store), _ => elementwise::portable::unary(op, x, out))
}

fn binary_any<A: Src, B: Src>(isa: Isa, op: BinaryOp, a: A, b: B, out: &mut [f32], store: Store) {
    assert!(a.len_ok(out.len()) && b.len_ok(out.len()), "binary: operand lengths differ");
    dispatch!(isa, V => elementwise::vector::binary::<V, A, B>(op, a, b, out, store), _ => elementwise::portable::binary(op, a, b, out))
}

/// out[i] = op(a[i], b[i]); all three the same length.
pub fn binary(isa: Isa, op: BinaryOp, a: &[f32], b: &[f32], out: &mut [f32], store: Store) {
    binary_any(isa, op, a, b, out, store)
}

/// out[i] = op(a[i], b).
pub fn binary_scalar_rhs(isa: Isa, op: BinaryOp, a: &[f32], b: f32, out: &mut [f32], store: Store) {
    binary_any(isa, op, a, b, out, store)
}

/// out[i] = op(a, b[i]).
pub fn binary_scalar_lhs(isa: Isa, op: BinaryOp, a: f32, b: &[f32], out: &mut [f32], store: Store) {
    binary_any(isa, op, a, b, out, store)
}

/// Sum of x (0 for empty): pairwise over 1024-element blocks, 32 (portable) or 4 vectors of
/// partial sums inside a block, so error grows like log n.
pub fn sum(isa: Isa, x: &[f32]) -> f32 {
    reduce::pairwise(0, x.len(), &|o, n| {
        let x = &x[o..o + n];
        dispatch!(isa, V => reduce::vector::block::<V>(x, None), _ => reduce::portable::sum_block(x))
    })
}

/// Largest element; NaN if any element is NaN; -inf for an empty slice.
pub fn max(isa: Isa, x: &[f32]) -> f32 {
    dispatch!(isa, V => reduce::vector::max::<V>(x), _ => reduce::portable::max(x))
}

/// Sum of a[i] * b[i], accumulated like [`sum`] (with FMA on the SIMD paths).
pub fn dot(isa: Isa, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    reduce::pairwise(0, a.len(), &|o, n| {
        let (a, b) = (&a[o..o + n], &b[o..o + n]);
        dispatch!(isa, V => reduce::vector::block::<V>(a, Some(b)), _ => reduce::portable::dot_block(a, b))
    })
}

/// One AdamW step over a slice of parameters `p` with moments `m`, `v` and gradient `g`
/// (all the same length), bit-identical on every path.
pub fn adamw(isa: Isa, h: &AdamWConsts, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    let n = p.len();
    assert!(m.len() == n && v.len() == n && g.len() == n, "adamw: slice lengths differ");
    dispatch!(isa, V => adamw::vector::<V>(h, p, m, v, g), _ => adamw::portable(h, p, m, v, g))
}

/// y[i] += alpha * x[i] (fused multiply-add on the SIMD paths).
pub fn axpy(isa: Isa, alpha: f32, x: &[f32], y: &mut [f32]) {
    assert_eq!(x.len(), y.len(), "axpy: lengths differ");
    dispatch!(isa, V => reduce::vector::axpy::<V>(alpha, x, y), _ => reduce::portable::axpy(alpha, x, y))
}
