//! Fused, numerically stable kernels over one row (the last dim): softmax, log-softmax,
//! RMSNorm, LayerNorm. Each driver is written once on top of `simd`'s reductions plus
//! the few row-specific passes below (portable and AVX2), chosen per call by `isa`.
//!
//! Row sums accumulate in f32 vectors within a block of [`BLOCK`] elements and then in
//! f64 across blocks, so a 50k-wide vocabulary row loses no more than a 1k one.

use super::elementwise::Src;
use super::{dot, max, use_avx2};
use crate::cpu::isa::Isa;

const BLOCK: usize = 1024;

/// out = softmax(x) = exp(x - max) / sum. Like PyTorch, a row that is all -inf (or has a
/// NaN, or a +inf) gives all NaN: x - max is then NaN somewhere and the sum is NaN.
pub fn softmax_row(isa: Isa, x: &[f32], out: &mut [f32]) {
    let m = max(isa, x);
    let s = exp_shift(isa, x, m, out);
    scale_in_place(isa, out, (1.0 / s) as f32);
}

/// out = x - max - ln(sum exp(x - max)); same non-finite behaviour as [`softmax_row`].
/// `out` doubles as scratch for the exponentials.
pub fn log_softmax_row(isa: Isa, x: &[f32], out: &mut [f32]) {
    let m = max(isa, x);
    let ls = exp_shift(isa, x, m, out).ln() as f32;
    norm_apply(isa, x, m, 1.0, 1.0f32, -ls, out);
}

/// out = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps), returned for backward.
/// An empty row has mean(x^2) = 0.
pub fn rms_norm_row(isa: Isa, x: &[f32], weight: Option<&[f32]>, eps: f32, out: &mut [f32]) -> f32 {
    let n = x.len().max(1) as f32;
    let rstd = 1.0 / (dot(isa, x, x) / n + eps).sqrt();
    match weight {
        Some(w) => norm_apply(isa, x, 0.0, rstd, w, 0.0f32, out),
        None => norm_apply(isa, x, 0.0, rstd, 1.0f32, 0.0f32, out),
    }
    rstd
}

/// out = (x - mean) * rstd * weight + bias, with the variance from a second pass over
/// x - mean (no E[x^2] - E[x]^2 cancellation). Returns (mean, rstd) for backward.
pub fn layer_norm_row(
    isa: Isa,
    x: &[f32],
    weight: Option<&[f32]>,
    bias: Option<&[f32]>,
    eps: f32,
    out: &mut [f32],
) -> (f32, f32) {
    let n = x.len().max(1) as f64;
    // Sum x - x[0] rather than x: with a large common offset the f32 block sums would
    // otherwise round away the spread. The f32 mean is then within half an ulp.
    let c = x.first().copied().unwrap_or(0.0);
    let mean = (c as f64 + centered_sum(isa, x, c, false) / n) as f32;
    let rstd = 1.0 / ((centered_sum(isa, x, mean, true) / n) as f32 + eps).sqrt();
    match (weight, bias) {
        (Some(w), Some(b)) => norm_apply(isa, x, mean, rstd, w, b, out),
        (Some(w), None) => norm_apply(isa, x, mean, rstd, w, 0.0f32, out),
        (None, Some(b)) => norm_apply(isa, x, mean, rstd, 1.0f32, b, out),
        (None, None) => norm_apply(isa, x, mean, rstd, 1.0f32, 0.0f32, out),
    }
    (mean, rstd)
}

// ---- row passes: dispatch, then the two implementations -------------------------------

/// out = exp(x - m); returns the sum of out in f64.
fn exp_shift(isa: Isa, x: &[f32], m: f32, out: &mut [f32]) -> f64 {
    assert_eq!(x.len(), out.len(), "row kernel: x and out lengths differ");
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        // SAFETY: use_avx2 checked the CPU.
        return unsafe { avx2::exp_shift(x, m, out) };
    }
    portable::exp_shift(x, m, out)
}

fn scale_in_place(isa: Isa, y: &mut [f32], s: f32) {
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        return unsafe { avx2::scale_in_place(y, s) };
    }
    y.iter_mut().for_each(|v| *v *= s);
}

/// Sum of (x - c)^2 if `square`, else of x - c; f32 within blocks, f64 total.
fn centered_sum(isa: Isa, x: &[f32], c: f32, square: bool) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        return unsafe { avx2::centered_sum(x, c, square) };
    }
    portable::centered_sum(x, c, square)
}

/// out = (x - shift) * scale * w + b, rounded op by op identically on both paths.
/// Slice operands must have x.len() elements.
fn norm_apply<W: Src, B: Src>(isa: Isa, x: &[f32], shift: f32, scale: f32, w: W, b: B, out: &mut [f32]) {
    let n = x.len();
    assert_eq!(n, out.len(), "row kernel: x and out lengths differ");
    assert!(w.len_ok(n) && b.len_ok(n), "row kernel: weight/bias length differs from the row");
    #[cfg(target_arch = "x86_64")]
    if use_avx2(isa) {
        return unsafe { avx2::norm_apply(x, shift, scale, w, b, out) };
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = (x[i] - shift) * scale * w.at(i) + b.at(i);
    }
}

mod portable {
    use super::BLOCK;

    /// Fold f over x in blocks: 8 f32 accumulators inside a block, f64 across blocks.
    fn blocked_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f64 {
        let mut total = 0.0f64;
        for blk in x.chunks(BLOCK) {
            let mut acc = [0.0f32; 8];
            for (i, &v) in blk.iter().enumerate() {
                acc[i % 8] += f(v);
            }
            total += acc.iter().sum::<f32>() as f64;
        }
        total
    }

    pub fn exp_shift(x: &[f32], m: f32, out: &mut [f32]) -> f64 {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = (v - m).exp();
        }
        blocked_sum(out, |e| e)
    }

    pub fn centered_sum(x: &[f32], c: f32, square: bool) -> f64 {
        match square {
            true => blocked_sum(x, |v| (v - c) * (v - c)),
            false => blocked_sum(x, |v| v - c),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::super::math_avx2 as m;
    use super::super::reduce::avx2::hsum;
    use super::{Src, BLOCK};
    use std::arch::x86_64::*;

    /// For each block: out[i] = g(x[i]) when `store`, and sum of g into 2 vector
    /// accumulators; block sums are added in f64. Tails go through a padded buffer whose
    /// padding lanes are masked out of the sum.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn blocked(x: &[f32], out: &mut [f32], store: bool, g: impl Fn(__m256) -> __m256) -> f64 {
        let mut total = 0.0f64;
        for (b, blk) in x.chunks(BLOCK).enumerate() {
            let base = b * BLOCK;
            let n = blk.len();
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            // SAFETY (loads/stores): offsets stay below n; out is as long as x when `store`.
            let mut one = |i: usize| {
                let v = g(unsafe { _mm256_loadu_ps(blk.as_ptr().add(i)) });
                if store {
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(base + i), v) };
                }
                v
            };
            let mut i = 0;
            // Two accumulators in registers: halves the add latency chain.
            while i + 16 <= n {
                acc0 = _mm256_add_ps(acc0, one(i));
                acc1 = _mm256_add_ps(acc1, one(i + 8));
                i += 16;
            }
            if i + 8 <= n {
                acc0 = _mm256_add_ps(acc0, one(i));
                i += 8;
            }
            if i < n {
                let r = n - i;
                let mut buf = [0.0f32; 8];
                buf[..r].copy_from_slice(&blk[i..]);
                let v = g(unsafe { _mm256_loadu_ps(buf.as_ptr()) });
                unsafe { _mm256_storeu_ps(buf.as_mut_ptr(), v) };
                if store {
                    out[base + i..base + n].copy_from_slice(&buf[..r]);
                }
                buf[r..].fill(0.0);
                acc0 = _mm256_add_ps(acc0, unsafe { _mm256_loadu_ps(buf.as_ptr()) });
            }
            total += hsum(_mm256_add_ps(acc0, acc1)) as f64;
        }
        total
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn exp_shift(x: &[f32], mx: f32, out: &mut [f32]) -> f64 {
        let mv = _mm256_set1_ps(mx);
        blocked(x, out, true, |v| m::exp(_mm256_sub_ps(v, mv)))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn centered_sum(x: &[f32], c: f32, square: bool) -> f64 {
        let cv = _mm256_set1_ps(c);
        match square {
            true => blocked(x, &mut [], false, |v| {
                let d = _mm256_sub_ps(v, cv);
                _mm256_mul_ps(d, d)
            }),
            false => blocked(x, &mut [], false, |v| _mm256_sub_ps(v, cv)),
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scale_in_place(y: &mut [f32], s: f32) {
        let sv = _mm256_set1_ps(s);
        let mut chunks = y.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: c has exactly 8 elements.
            unsafe { _mm256_storeu_ps(c.as_mut_ptr(), _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), sv)) };
        }
        chunks.into_remainder().iter_mut().for_each(|v| *v *= s);
    }

    /// No FMA here on purpose: the portable path rounds after each op, and matching it
    /// bit for bit makes the cross-path tests exact.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn norm_apply<W: Src, B: Src>(x: &[f32], shift: f32, scale: f32, w: W, b: B, out: &mut [f32]) {
        let n = x.len();
        let (sh, sc) = (_mm256_set1_ps(shift), _mm256_set1_ps(scale));
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n; slice operands were checked to have n elements.
            unsafe {
                let v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), sh), sc);
                let v = _mm256_add_ps(_mm256_mul_ps(v, w.lanes(i)), b.lanes(i));
                _mm256_storeu_ps(out.as_mut_ptr().add(i), v);
            }
            i += 8;
        }
        for j in i..n {
            out[j] = (x[j] - shift) * scale * w.at(j) + b.at(j);
        }
    }
}
