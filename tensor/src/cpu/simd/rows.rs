//! Fused, numerically stable kernels over one row (the last dim): softmax, log-softmax,
//! RMSNorm, LayerNorm. Each driver is written once on top of `simd`'s reductions plus
//! the few row-specific passes below (portable, and generic over the SIMD level), chosen
//! per call by `isa`.
//!
//! Row sums accumulate in f32 vectors within a block of [`BLOCK`] elements and then in
//! f64 across blocks, so a 50k-wide vocabulary row loses no more than a 1k one.
//!
//! Memory traffic: a row is read from memory once (the first pass) and re-read from L1/L2
//! by the later ones; the output is written once, in the last pass. With
//! [`Store::Stream`] that write bypasses the caches (no read-for-ownership of the output
//! lines), and softmax keeps its exponentials in a per-thread scratch row instead of in
//! `out`, so the output lines are never read at all.

use super::vector::{F32Vec, Src};
use super::{dot, max, Store};
use crate::cpu::isa::Isa;
use std::cell::Cell;

const BLOCK: usize = 1024;

/// out = softmax(x) = exp(x - max) / sum. Like PyTorch, a row that is all -inf (or has a
/// NaN, or a +inf) gives all NaN: x - max is then NaN somewhere and the sum is NaN.
pub fn softmax_row(isa: Isa, x: &[f32], out: &mut [f32], store: Store) {
    assert_eq!(x.len(), out.len(), "row kernel: x and out lengths differ");
    let m = max(isa, x);
    match store {
        Store::Cached => {
            let s = exp_shift(isa, x, m, out);
            scale(isa, None, (1.0 / s) as f32, out, Store::Cached);
        }
        Store::Stream => with_scratch(x.len(), |tmp| {
            let s = exp_shift(isa, x, m, tmp);
            scale(isa, Some(tmp), (1.0 / s) as f32, out, Store::Stream);
        }),
    }
}

/// out = x - max - ln(sum exp(x - max)); same non-finite behaviour as [`softmax_row`].
pub fn log_softmax_row(isa: Isa, x: &[f32], out: &mut [f32], store: Store) {
    assert_eq!(x.len(), out.len(), "row kernel: x and out lengths differ");
    let m = max(isa, x);
    // The exponentials are only summed: no row-sized scratch is written.
    let ls = exp_shift_sum(isa, x, m).ln() as f32;
    norm_apply(isa, x, m, 1.0, 1.0f32, -ls, out, store);
}

/// out = x * rstd * weight, rstd = 1 / sqrt(mean(x^2) + eps), returned for backward.
/// An empty row has mean(x^2) = 0.
pub fn rms_norm_row(isa: Isa, x: &[f32], weight: Option<&[f32]>, eps: f32, out: &mut [f32], store: Store) -> f32 {
    let n = x.len().max(1) as f32;
    let rstd = 1.0 / (dot(isa, x, x) / n + eps).sqrt();
    match weight {
        Some(w) => norm_apply(isa, x, 0.0, rstd, w, 0.0f32, out, store),
        None => norm_apply(isa, x, 0.0, rstd, 1.0f32, 0.0f32, out, store),
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
    store: Store,
) -> (f32, f32) {
    let n = x.len().max(1) as f64;
    // Sum x - x[0] rather than x: with a large common offset the f32 block sums would
    // otherwise round away the spread. The f32 mean is then within half an ulp.
    let c = x.first().copied().unwrap_or(0.0);
    let mean = (c as f64 + centered_sum(isa, x, c, false) / n) as f32;
    let rstd = 1.0 / ((centered_sum(isa, x, mean, true) / n) as f32 + eps).sqrt();
    match (weight, bias) {
        (Some(w), Some(b)) => norm_apply(isa, x, mean, rstd, w, b, out, store),
        (Some(w), None) => norm_apply(isa, x, mean, rstd, w, 0.0f32, out, store),
        (None, Some(b)) => norm_apply(isa, x, mean, rstd, 1.0f32, b, out, store),
        (None, None) => norm_apply(isa, x, mean, rstd, 1.0f32, 0.0f32, out, store),
    }
    (mean, rstd)
}

thread_local! {
    // Softmax's streamed path keeps the exponentials of one row here (reused: no page faults).
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` with a scratch row of `n` floats (this thread's, taken out while in use, so a
/// nested call just allocates its own).
fn with_scratch(n: usize, f: impl FnOnce(&mut [f32])) {
    let mut v = SCRATCH.with(Cell::take);
    if v.len() < n {
        v.resize(n, 0.0);
    }
    f(&mut v[..n]);
    SCRATCH.with(|c| c.set(v));
}

// ---- row passes: dispatch, then the two implementations -------------------------------

/// out = exp(x - m); returns the sum of out in f64.
fn exp_shift(isa: Isa, x: &[f32], m: f32, out: &mut [f32]) -> f64 {
    assert_eq!(x.len(), out.len(), "row kernel: x and out lengths differ");
    dispatch!(isa, V => vector::exp_shift::<V>(x, m, Some(out)), _ => portable::exp_shift(x, m, Some(out)))
}

/// The sum of exp(x - m) in f64, nothing stored.
fn exp_shift_sum(isa: Isa, x: &[f32], m: f32) -> f64 {
    dispatch!(isa, V => vector::exp_shift::<V>(x, m, None), _ => portable::exp_shift(x, m, None))
}

/// out = src * s, where `src` is `out` itself when None.
fn scale(isa: Isa, src: Option<&[f32]>, s: f32, out: &mut [f32], store: Store) {
    dispatch!(isa, V => vector::scale::<V>(src, s, out, store), _ => portable::scale(src, s, out))
}

/// Sum of (x - c)^2 if `square`, else of x - c; f32 within blocks, f64 total.
fn centered_sum(isa: Isa, x: &[f32], c: f32, square: bool) -> f64 {
    dispatch!(isa, V => vector::centered_sum::<V>(x, c, square), _ => portable::centered_sum(x, c, square))
}

/// out = (x - shift) * scale * w + b, rounded op by op identically on every path.
/// Slice operands must have x.len() elements.
#[allow(clippy::too_many_arguments)]
fn norm_apply<W: Src, B: Src>(isa: Isa, x: &[f32], shift: f32, scale: f32, w: W, b: B, out: &mut [f32], store: Store) {
    let n = x.len();
    assert_eq!(n, out.len(), "row kernel: x and out lengths differ");
    assert!(w.len_ok(n) && b.len_ok(n), "row kernel: weight/bias length differs from the row");
    dispatch!(isa, V => vector::norm_apply::<V, W, B>(x, shift, scale, w, b, out, store), _ => {
        for (i, o) in out.iter_mut().enumerate() {
            *o = (x[i] - shift) * scale * w.at(i) + b.at(i);
        }
    })
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

    pub fn exp_shift(x: &[f32], m: f32, out: Option<&mut [f32]>) -> f64 {
        match out {
            Some(out) => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = (v - m).exp();
                }
                blocked_sum(out, |e| e)
            }
            None => blocked_sum(x, |v| (v - m).exp()),
        }
    }

    pub fn scale(src: Option<&[f32]>, s: f32, out: &mut [f32]) {
        match src {
            Some(src) => out.iter_mut().zip(src).for_each(|(o, &v)| *o = v * s),
            None => out.iter_mut().for_each(|v| *v *= s),
        }
    }

    pub fn centered_sum(x: &[f32], c: f32, square: bool) -> f64 {
        match square {
            true => blocked_sum(x, |v| (v - c) * (v - c)),
            false => blocked_sum(x, |v| v - c),
        }
    }
}

/// The SIMD passes at any level `V`.
///
/// # Safety (every function here)
/// Inside `V::with` on a CPU with the level; slices as the dispatchers above assert.
mod vector {
    use super::super::elementwise::vector::fill;
    use super::super::math as m;
    use super::{F32Vec, Src, Store, BLOCK};

    /// For each block: `out[i] = g(x[i])` when `out` is given, and the sum of g into two
    /// vector accumulators; block sums are added in f64. The tail is one partial vector
    /// whose padding lanes are zeroed before they reach the sum.
    #[inline(always)]
    unsafe fn blocked<V: F32Vec>(x: &[f32], mut out: Option<&mut [f32]>, g: impl Fn(V) -> V) -> f64 {
        let l = V::LANES;
        let mut total = 0.0f64;
        // SAFETY (loads/stores): offsets stay below the block's n; out is as long as x.
        unsafe {
            for (b, blk) in x.chunks(BLOCK).enumerate() {
                let (base, n, p) = (b * BLOCK, blk.len(), blk.as_ptr());
                let mut acc = [V::splat(0.0); 2];
                let mut i = 0;
                // Two accumulators: halves the add latency chain.
                while i + 2 * l <= n {
                    for (k, acc_k) in acc.iter_mut().enumerate() {
                        let v = g(V::load(p.add(i + k * l)));
                        if let Some(o) = out.as_deref_mut() {
                            v.store(o.as_mut_ptr().add(base + i + k * l));
                        }
                        *acc_k = acc_k.add(v);
                    }
                    i += 2 * l;
                }
                if i + l <= n {
                    let v = g(V::load(p.add(i)));
                    if let Some(o) = out.as_deref_mut() {
                        v.store(o.as_mut_ptr().add(base + i));
                    }
                    acc[0] = acc[0].add(v);
                    i += l;
                }
                if i < n {
                    let r = n - i;
                    let v = g(V::load_partial(p.add(i), r));
                    if let Some(o) = out.as_deref_mut() {
                        v.store_partial(o.as_mut_ptr().add(base + i), r);
                    }
                    // g(0) may be nonzero (exp): keep only the r real lanes.
                    let mut buf = [0f32; 16];
                    debug_assert!(V::LANES <= buf.len());
                    v.store_partial(buf.as_mut_ptr(), r);
                    acc[0] = acc[0].add(V::load(buf.as_ptr()));
                }
                total += acc[0].add(acc[1]).hsum() as f64;
            }
        }
        total
    }

    #[inline(always)]
    pub unsafe fn exp_shift<V: F32Vec>(x: &[f32], mx: f32, out: Option<&mut [f32]>) -> f64 {
        unsafe {
            let mv = V::splat(mx);
            blocked(
                x,
                out,
                #[inline(always)]
                |v: V| m::exp(v.sub(mv)),
            )
        }
    }

    #[inline(always)]
    pub unsafe fn centered_sum<V: F32Vec>(x: &[f32], c: f32, square: bool) -> f64 {
        unsafe {
            let cv = V::splat(c);
            match square {
                true => blocked(
                    x,
                    None,
                    #[inline(always)]
                    |v: V| {
                        let d = v.sub(cv);
                        d.mul(d)
                    },
                ),
                false => blocked(
                    x,
                    None,
                    #[inline(always)]
                    |v: V| v.sub(cv),
                ),
            }
        }
    }

    #[inline(always)]
    pub unsafe fn scale<V: F32Vec>(src: Option<&[f32]>, s: f32, out: &mut [f32], store: Store) {
        unsafe {
            let sv = V::splat(s);
            let Some(src) = src else {
                // In place (never streamed: the row was just written and is in cache).
                for c in out.chunks_mut(V::LANES) {
                    let (p, n) = (c.as_mut_ptr(), c.len());
                    if n == V::LANES {
                        V::load(p).mul(sv).store(p)
                    } else {
                        V::load_partial(p, n).mul(sv).store_partial(p, n)
                    }
                }
                return;
            };
            fill(
                out,
                store,
                #[inline(always)]
                |i, n| src.partial_or_lanes::<V>(i, n).mul(sv),
            )
        }
    }

    /// No FMA here on purpose: the portable path rounds after each op, and matching it
    /// bit for bit makes the cross-path tests exact.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn norm_apply<V: F32Vec, W: Src, B: Src>(
        x: &[f32],
        shift: f32,
        scale: f32,
        w: W,
        b: B,
        out: &mut [f32],
        store: Store,
    ) {
        unsafe {
            let (sh, sc) = (V::splat(shift), V::splat(scale));
            fill(
                out,
                store,
                #[inline(always)]
                |i, n| {
                    let (xv, wv, bv) =
                        (x.partial_or_lanes::<V>(i, n), w.partial_or_lanes::<V>(i, n), b.partial_or_lanes::<V>(i, n));
                    xv.sub(sh).mul(sc).mul(wv).add(bv)
                },
            )
        }
    }
}
