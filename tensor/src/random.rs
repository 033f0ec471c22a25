//! Seeded random tensors. Element i is a pure function of (seed, i) — a counter-based
//! generator — so the values do not depend on thread count or evaluation order.

use crate::error::{invalid, Result};
use crate::layout::checked_numel;
use crate::{DType, Tensor};
use rayon::prelude::*;

/// SplitMix64's increment: 2^64 / golden ratio.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's finaliser: a strong 64-bit mix, enough for ML initialisation and masks.
#[inline]
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// SplitMix64 (Steele, Lea & Flood) applied to one value: a well-mixed seed derived from
/// `z`, for deriving independent seeds from a seed and a counter or name.
#[inline]
pub fn splitmix64(z: u64) -> u64 {
    mix(z.wrapping_add(GOLDEN))
}

/// A SplitMix64 stream: the workspace's one small seedable generator (data order, sampling,
/// test data). `new(s)` then `next_u64()` gives `splitmix64(s)`, `splitmix64(s + GOLDEN)`...
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        let z = splitmix64(self.0);
        self.0 = self.0.wrapping_add(GOLDEN);
        z
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0), by a 128-bit multiply (no modulo bias worth the name).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// Uniform in [0, 1) with 24 random bits (every value exactly representable in f32).
#[inline]
pub fn uniform_at(seed: u64, i: u64) -> f32 {
    let bits = mix(mix(seed ^ GOLDEN).wrapping_add(i.wrapping_mul(GOLDEN)));
    (bits >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
}

/// Standard normal via Box-Muller on a pair of uniforms: elements 2j and 2j+1 share one
/// pair (cos and sin branches).
#[inline]
pub fn normal_at(seed: u64, i: u64) -> f32 {
    let pair = i / 2;
    let u1 = (uniform_at(seed, 2 * pair) as f64 + 0.5 / (1u64 << 24) as f64).min(1.0); // (0, 1]
    let u2 = uniform_at(seed, 2 * pair + 1) as f64;
    let r = (-2.0 * u1.ln()).sqrt();
    let angle = 2.0 * std::f64::consts::PI * u2;
    (if i.is_multiple_of(2) { r * angle.cos() } else { r * angle.sin() }) as f32
}

/// Dropout's mask: 1/(1-p) where `uniform_at(seed, i) >= p`, else 0 (row-major index i).
pub(crate) fn dropout_mask(shape: &[usize], p: f32, seed: u64) -> Result<Vec<f32>> {
    let scale = 1.0 / (1.0 - p);
    fill(shape, |i| if uniform_at(seed, i) >= p { scale } else { 0.0 })
}

fn fill(shape: &[usize], f: impl Fn(u64) -> f32 + Sync + Send) -> Result<Vec<f32>> {
    let n = checked_numel("random", shape)?;
    let mut v = crate::storage::filled(n, 0f32)?;
    crate::cpu::parallel::install(|| v.par_iter_mut().enumerate().for_each(|(i, x)| *x = f(i as u64)));
    Ok(v)
}

impl Tensor {
    /// Uniform in [lo, hi).
    pub fn rand_uniform(shape: &[usize], lo: f32, hi: f32, seed: u64, dtype: DType) -> Result<Tensor> {
        if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
            return Err(invalid("rand_uniform", format!("bad range [{lo}, {hi})")));
        }
        let v = fill(shape, |i| lo + (hi - lo) * uniform_at(seed, i))?;
        Tensor::from_f32s(v, shape, dtype)
    }

    /// Normal with the given mean and standard deviation.
    pub fn randn(shape: &[usize], mean: f32, std: f32, seed: u64, dtype: DType) -> Result<Tensor> {
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(invalid("randn", format!("bad mean {mean} / std {std}")));
        }
        let v = fill(shape, |i| mean + std * normal_at(seed, i))?;
        Tensor::from_f32s(v, shape, dtype)
    }
}
