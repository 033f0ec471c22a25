//! Whole-slice reductions (`sum`, `max`, `dot`) and `axpy`: the portable twin and the SIMD
//! version, generic over the level's vector type.
//!
//! Sums are pairwise above [`BLOCK`] elements and use 32 (portable; 4 vectors at a SIMD
//! level) independent f32 partial sums inside a block, so the rounding error grows like log2(n) rather than n, and the adds
//! are not one serial dependency chain.

/// Blocks at most this long are summed directly; longer slices are split in half.
const BLOCK: usize = 1024;

/// Split point for the pairwise recursion, kept a multiple of 32 so both halves start
/// on a full vector group.
#[inline]
fn half(n: usize) -> usize {
    (n / 2) & !31
}

/// The pairwise sum over `x[off..off + n]`: `block(off, len)` sums one block of at most
/// [`BLOCK`] elements, longer ranges are split in half (shared by every level, so the split
/// points, and hence the rounding, do not depend on the vector width).
pub(super) fn pairwise(off: usize, n: usize, block: &impl Fn(usize, usize) -> f32) -> f32 {
    if n <= BLOCK {
        return block(off, n);
    }
    let h = half(n);
    pairwise(off, h, block) + pairwise(off + h, n - h, block)
}

pub(super) mod portable {
    /// Eight scalar accumulators, which LLVM turns into whatever vectors the baseline has.
    pub fn sum_block(x: &[f32]) -> f32 {
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

    /// Plain mul + add (not `mul_add`, which is a libm call without hardware FMA).
    pub fn dot_block(a: &[f32], b: &[f32]) -> f32 {
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

pub(super) mod vector {
    use super::super::vector::F32Vec;
    use super::*;

    /// Sum of a * b (b = None: of a) over one block (at most [`BLOCK`] elements; callers
    /// go through [`pairwise`]) with 4 vector accumulators; the tail is one partial
    /// (zero-padded) vector. `b.len() == a.len()` when given.
    ///
    /// # Safety (every function here)
    /// Inside `V::with` on a CPU with the level.
    #[inline(always)]
    pub unsafe fn block<V: F32Vec>(a: &[f32], b: Option<&[f32]>) -> f32 {
        let n = a.len();
        let (pa, l) = (a.as_ptr(), V::LANES);
        /// One vector (or `len < LANES` lanes, zero-padded) of a at `i`, times b's if given.
        #[inline(always)]
        unsafe fn step<V: F32Vec>(acc: V, a: *const f32, b: Option<*const f32>, i: usize, len: usize) -> V {
            // SAFETY: the caller keeps i + len within both slices.
            unsafe {
                let x = if len == V::LANES { V::load(a.add(i)) } else { V::load_partial(a.add(i), len) };
                match b {
                    Some(b) => {
                        x.fmadd(if len == V::LANES { V::load(b.add(i)) } else { V::load_partial(b.add(i), len) }, acc)
                    }
                    None => acc.add(x),
                }
            }
        }
        let pb = b.map(|b| b.as_ptr());
        // SAFETY (all loads below): indices stay below n, and b, when given, has length n.
        unsafe {
            let mut acc = [V::splat(0.0); 4];
            let mut i = 0;
            while i + 4 * l <= n {
                for (k, acc_k) in acc.iter_mut().enumerate() {
                    *acc_k = step(*acc_k, pa, pb, i + l * k, l);
                }
                i += 4 * l;
            }
            while i + l <= n {
                acc[0] = step(acc[0], pa, pb, i, l);
                i += l;
            }
            if i < n {
                acc[1] = step(acc[1], pa, pb, i, n - i);
            }
            acc[0].add(acc[1]).add(acc[2].add(acc[3])).hsum()
        }
    }

    /// NaN-propagating max. `max` drops NaNs, so unordered lanes are OR-ed into a
    /// separate mask and checked once at the end.
    #[inline(always)]
    pub unsafe fn max<V: F32Vec>(x: &[f32]) -> f32 {
        let (n, l) = (x.len(), V::LANES);
        // SAFETY: loads stay inside x.
        unsafe {
            let mut acc = [V::splat(f32::NEG_INFINITY); 2];
            let mut nan = V::splat(0.0).unord(V::splat(0.0));
            let mut i = 0;
            while i + 2 * l <= n {
                for (k, a) in acc.iter_mut().enumerate() {
                    let v = V::load(x.as_ptr().add(i + l * k));
                    *a = a.max(v);
                    nan = V::mask_or(nan, v.unord(v));
                }
                i += 2 * l;
            }
            if V::any(nan) {
                return f32::NAN;
            }
            let m = acc[0].max(acc[1]).hmax();
            // The < 2 vectors of leftover elements go through the portable rule, NaN check
            // included.
            let t = portable::max(&x[i..]);
            if t.is_nan() || t > m {
                t
            } else {
                m
            }
        }
    }

    /// y += alpha * x with one FMA rounding per element; `x.len() == y.len()`.
    #[inline(always)]
    pub unsafe fn axpy<V: F32Vec>(alpha: f32, x: &[f32], y: &mut [f32]) {
        let (n, l) = (y.len(), V::LANES);
        // SAFETY: i + l <= n = len of both.
        unsafe {
            let av = V::splat(alpha);
            let mut i = 0;
            while i + l <= n {
                let py = y.as_mut_ptr().add(i);
                av.fmadd(V::load(x.as_ptr().add(i)), V::load(py)).store(py);
                i += l;
            }
            if i < n {
                let py = y.as_mut_ptr().add(i);
                av.fmadd(V::load_partial(x.as_ptr().add(i), n - i), V::load_partial(py, n - i))
                    .store_partial(py, n - i);
            }
        }
    }
}
