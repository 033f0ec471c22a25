//! One vector of f32 lanes at one instruction-set level: the operations the generic
//! kernels (`math.rs`, the elementwise maps, reductions and row kernels) are written with,
//! so each kernel exists once and runs at every level. Implementations: `Avx2` (`__m256`,
//! 8 lanes) and `Avx512` (`__m512`, 16 lanes) in `vector_x86.rs`, `Neon` (`float32x4_t`, 4
//! lanes) in `vector_neon.rs`.
//!
//! Semantics shared by every level, so results agree across them:
//! - `min`/`max` follow x86's `minps`/`maxps`: when either operand is NaN the result is the
//!   second operand (NEON's `fmin`/`fmax` would return NaN; its implementation compensates).
//! - comparisons are ordered (false when either side is NaN) except `unord`.
//! - `round` is round-to-nearest-even; `ldexp` and `frexp` are exact bit manipulations.
//!
//! How the target features reach the code: every method is `#[inline(always)]` and
//! `unsafe`; a kernel is a generic `#[inline(always)]` function run inside
//! [`F32Vec::with`], whose body is compiled with the level's `#[target_feature]`s, so the
//! whole kernel is inlined into one function built for that level. Calling a method outside
//! `with` (on a CPU without the level) is undefined behaviour: the entry points in
//! `simd.rs` check the CPU before they call `with`.

/// A vector of `LANES` f32 values at one instruction-set level (see the module doc).
///
/// # Safety
/// All methods require the level's CPU features (they run inside [`F32Vec::with`]); the
/// pointer methods require `p` valid for `LANES` reads or writes (`n` for the partial ones).
pub(crate) trait F32Vec: Copy {
    /// Lane-wise boolean result of a comparison.
    type Mask: Copy;
    const LANES: usize;

    /// Runs `f` in a function compiled with this level's target features.
    ///
    /// # Safety
    /// The CPU supports the level.
    unsafe fn with<R>(f: impl FnOnce() -> R) -> R;

    unsafe fn splat(v: f32) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(self, p: *mut f32);
    /// Non-temporal store (bypasses the caches, no read-for-ownership): for outputs too big to
    /// be read again from cache. `p` is aligned to `LANES * 4` bytes. Where the level has no
    /// such store it is a plain store. Call [`F32Vec::stream_fence`] after the last one.
    unsafe fn stream(self, p: *mut f32);
    /// Orders earlier [`F32Vec::stream`] stores before later stores (sfence on x86).
    unsafe fn stream_fence();
    /// Hints that the cache line at `p` will be read soon (never faults; a no-op where the
    /// level has no stable prefetch intrinsic).
    unsafe fn prefetch(p: *const u8);
    /// The first `n < LANES` lanes from `p`, zero in the others.
    unsafe fn load_partial(p: *const f32, n: usize) -> Self;
    /// Stores the first `n < LANES` lanes to `p`.
    unsafe fn store_partial(self, p: *mut f32, n: usize);

    unsafe fn add(self, o: Self) -> Self;
    unsafe fn sub(self, o: Self) -> Self;
    unsafe fn mul(self, o: Self) -> Self;
    unsafe fn div(self, o: Self) -> Self;
    /// `self * b + c`, one rounding.
    unsafe fn fmadd(self, b: Self, c: Self) -> Self;
    /// `c - self * b`, one rounding.
    unsafe fn fnmadd(self, b: Self, c: Self) -> Self;
    /// x86 `minps`: `self < o ? self : o` (so `o` when either is NaN).
    unsafe fn min(self, o: Self) -> Self;
    /// x86 `maxps`: `self > o ? self : o` (so `o` when either is NaN).
    unsafe fn max(self, o: Self) -> Self;
    /// Correctly rounded square root.
    unsafe fn sqrt(self) -> Self;
    /// Round to the nearest integer, ties to even.
    unsafe fn round(self) -> Self;
    /// Clear the sign bit.
    unsafe fn abs(self) -> Self;
    /// Flip the sign bit.
    unsafe fn neg(self) -> Self;
    /// `self` with the sign bit of `sign` OR-ed in (copysign for a non-negative `self`).
    unsafe fn or_sign_of(self, sign: Self) -> Self;

    unsafe fn lt(self, o: Self) -> Self::Mask;
    unsafe fn ge(self, o: Self) -> Self::Mask;
    unsafe fn eq(self, o: Self) -> Self::Mask;
    /// True where `self` or `o` is NaN.
    unsafe fn unord(self, o: Self) -> Self::Mask;
    unsafe fn mask_or(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// True if any lane of the mask is set.
    unsafe fn any(m: Self::Mask) -> bool;
    /// `m ? t : f` lane-wise.
    unsafe fn select(m: Self::Mask, t: Self, f: Self) -> Self;

    /// `self * 2^n` for integer-valued `n` in [-150, 128], exact: scaled in two halves so
    /// results near overflow reach inf and tiny ones round to subnormals like libm.
    unsafe fn ldexp(self, n: Self) -> Self;
    /// For positive finite `self` (subnormals included): `(m, e)` with `self = m * 2^e`,
    /// `m` in [0.5, 1) and `e` integer-valued. Other inputs give unspecified lanes.
    unsafe fn frexp(self) -> (Self, Self);

    /// Sum of the lanes as a balanced tree.
    unsafe fn hsum(self) -> f32;
    /// Largest lane under `maxps` rules (NaN lanes are handled by the callers' masks).
    unsafe fn hmax(self) -> f32;
}

/// The operand of a binary kernel: a slice read lane by lane, or a scalar repeated.
pub(crate) trait Src: Copy {
    fn at(self, i: usize) -> f32;
    /// Whether this operand can pair with `n` output elements.
    fn len_ok(self, n: usize) -> bool;
    /// `V::LANES` lanes starting at `i`; `i + V::LANES <= len` for slices.
    ///
    /// # Safety
    /// As [`F32Vec`]'s methods, and the bound above.
    unsafe fn lanes<V: F32Vec>(self, i: usize) -> V;
    /// `n < V::LANES` lanes starting at `i` (for slices, zeros after; a scalar fills every
    /// lane).
    ///
    /// # Safety
    /// As [`F32Vec`]'s methods; `i + n <= len` for slices.
    unsafe fn partial<V: F32Vec>(self, i: usize, n: usize) -> V;
    /// `n <= V::LANES` lanes starting at `i`: [`Src::lanes`] when `n` is a whole vector,
    /// else [`Src::partial`].
    ///
    /// # Safety
    /// As [`F32Vec`]'s methods; `i + n <= len` for slices.
    #[inline(always)]
    unsafe fn partial_or_lanes<V: F32Vec>(self, i: usize, n: usize) -> V {
        // SAFETY: caller.
        unsafe {
            if n == V::LANES {
                self.lanes(i)
            } else {
                self.partial(i, n)
            }
        }
    }
}

impl Src for &[f32] {
    #[inline(always)]
    fn at(self, i: usize) -> f32 {
        self[i]
    }
    fn len_ok(self, n: usize) -> bool {
        self.len() == n
    }
    #[inline(always)]
    unsafe fn lanes<V: F32Vec>(self, i: usize) -> V {
        // SAFETY: caller.
        unsafe { V::load(self.as_ptr().add(i)) }
    }
    #[inline(always)]
    unsafe fn partial<V: F32Vec>(self, i: usize, n: usize) -> V {
        // SAFETY: caller.
        unsafe { V::load_partial(self.as_ptr().add(i), n) }
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
    #[inline(always)]
    unsafe fn lanes<V: F32Vec>(self, _: usize) -> V {
        // SAFETY: caller.
        unsafe { V::splat(self) }
    }
    #[inline(always)]
    unsafe fn partial<V: F32Vec>(self, _: usize, _: usize) -> V {
        // SAFETY: caller.
        unsafe { V::splat(self) }
    }
}
