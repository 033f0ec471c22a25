//! Whole-slice reductions (`sum`, `max`, `dot`) and `axpy`, portable and AVX2+FMA.
//!
//! Sums are pairwise above [`BLOCK`] elements and use 32 independent f32 partial sums
//! inside a block, so the rounding error grows like log2(n) rather than n, and the adds
//! are not one serial dependency chain.

/// Blocks at most this long are summed directly; longer slices are split in half.
const BLOCK: usize = 1024;

/// Split point for the pairwise recursion, kept a multiple of 32 so both halves start
/// on a full vector group.
#[inline]
fn half(n: usize) -> usize {
    (n / 2) & !31
}

pub(super) mod portable {
    use super::*;

    /// Eight scalar accumulators, which LLVM turns into whatever vectors the baseline has.
    fn sum_block(x: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        let chunks = x.chunks_exact(8);
        let tail = chunks.remainder();
        for c in chunks {
            for j in 0..8 {
                acc[j] += c[j];
            }
        }
        let mut t = 0.0f32;
        for &v in tail {
            t += v;
        }
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + t
    }

    pub fn sum(x: &[f32]) -> f32 {
        if x.len() <= BLOCK {
            return sum_block(x);
        }
        let (l, r) = x.split_at(half(x.len()));
        sum(l) + sum(r)
    }

    /// Plain mul + add (not `mul_add`, which is a libm call without hardware FMA).
    fn dot_block(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for j in 0..8 {
                acc[j] += x[j] * y[j];
            }
        }
        let mut t = 0.0f32;
        for (x, y) in ta.iter().zip(tb) {
            t += x * y;
        }
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + t
    }

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        if a.len() <= BLOCK {
            return dot_block(a, b);
        }
        let h = half(a.len());
        dot(&a[..h], &b[..h]) + dot(&a[h..], &b[h..])
    }

    pub fn max(x: &[f32]) -> f32 {
        let mut m = f32::NEG_INFINITY;
        for &v in x {
            if v.is_nan() {
                return v;
            }
            m = if v > m { v } else { m };
        }
        m
    }

    pub fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        for (yi, &xi) in y.iter_mut().zip(x) {
            *yi += alpha * xi;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use super::*;
    use std::arch::x86_64::*;

    /// Sum of the 8 lanes, as a balanced tree.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }

    /// Sum of a * b (b = None means a * 1) over one block with 4 x 8 accumulators.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn block(a: &[f32], b: Option<&[f32]>) -> f32 {
        let n = a.len();
        let pa = a.as_ptr();
        // SAFETY (all loads below): indices stay below n, and b, when given, has length n.
        let ld = |i: usize| unsafe {
            let x = _mm256_loadu_ps(pa.add(i));
            (x, b.map(|b| _mm256_loadu_ps(b.as_ptr().add(i))))
        };
        let step = |acc: __m256, (x, y): (__m256, Option<__m256>)| match y {
            Some(y) => _mm256_fmadd_ps(x, y, acc),
            None => _mm256_add_ps(acc, x),
        };
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = step(*a, ld(i + 8 * k));
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = step(acc[0], ld(i));
            i += 8;
        }
        let mut t = 0.0f32;
        for j in i..n {
            t += a[j] * b.map_or(1.0, |b| b[j]);
        }
        hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) + t
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sum(x: &[f32]) -> f32 {
        if x.len() <= BLOCK {
            return block(x, None);
        }
        let (l, r) = x.split_at(half(x.len()));
        unsafe { sum(l) + sum(r) }
    }

    /// `b.len() == a.len()` (checked by the caller).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        if a.len() <= BLOCK {
            return block(a, Some(b));
        }
        let h = half(a.len());
        unsafe { dot(&a[..h], &b[..h]) + dot(&a[h..], &b[h..]) }
    }

    /// NaN-propagating max. max_ps drops NaNs, so unordered lanes are OR-ed into a
    /// separate mask and checked once at the end.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn max(x: &[f32]) -> f32 {
        let n = x.len();
        let mut acc = [_mm256_set1_ps(f32::NEG_INFINITY); 2];
        let mut nan = _mm256_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: i + 8k + 8 <= n.
                let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(i + 8 * k)) };
                *a = _mm256_max_ps(*a, v);
                nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
            }
            i += 16;
        }
        if _mm256_movemask_ps(nan) != 0 {
            return f32::NAN;
        }
        let mut lanes = [0.0f32; 8];
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_max_ps(acc[0], acc[1])) };
        let m = lanes.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
        // The < 16 leftover elements go through the portable rule, NaN check included.
        let t = portable::max(&x[i..]);
        if t.is_nan() || t > m {
            t
        } else {
            m
        }
    }

    /// y += alpha * x with one FMA rounding per element; `x.len() == y.len()`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
        let n = y.len();
        let av = _mm256_set1_ps(alpha);
        let mut i = 0;
        while i + 8 <= n {
            // SAFETY: i + 8 <= n = len of both.
            unsafe {
                let py = y.as_mut_ptr().add(i);
                _mm256_storeu_ps(py, _mm256_fmadd_ps(av, _mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(py)));
            }
            i += 8;
        }
        for j in i..n {
            y[j] = alpha.mul_add(x[j], y[j]);
        }
    }
}
