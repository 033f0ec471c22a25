//! Norms, cross-entropy, rotary embeddings and dropout.

use super::elementwise::round_to;
use crate::tensor::RefTensor;
use lamina_tensor::{DType, RopeConvention};

/// Split `x` into rows of its last dim and map each row.
fn rows(x: &RefTensor, f: impl Fn(&[f64]) -> Vec<f64>) -> RefTensor {
    let d = *x.shape.last().expect("needs rank >= 1");
    let mut data = Vec::with_capacity(x.numel());
    if d > 0 {
        for row in x.data.chunks(d) {
            data.extend(f(row));
        }
    }
    RefTensor::new(&x.shape, data)
}

/// (x - mean) / sqrt(var + eps) * weight + bias over the last dim, biased variance.
pub fn layer_norm(x: &RefTensor, weight: Option<&RefTensor>, bias: Option<&RefTensor>, eps: f64) -> RefTensor {
    rows(x, |r| {
        let n = r.len() as f64;
        let mean = r.iter().sum::<f64>() / n;
        let var = r.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let rstd = 1.0 / (var + eps).sqrt();
        (0..r.len())
            .map(|i| (r[i] - mean) * rstd * weight.map_or(1.0, |w| w.data[i]) + bias.map_or(0.0, |b| b.data[i]))
            .collect()
    })
}

/// x / sqrt(mean(x^2) + eps) * weight over the last dim.
pub fn rms_norm(x: &RefTensor, weight: Option<&RefTensor>, eps: f64) -> RefTensor {
    rows(x, |r| {
        let ms = r.iter().map(|v| v * v).sum::<f64>() / r.len() as f64;
        let rstd = 1.0 / (ms + eps).sqrt();
        (0..r.len()).map(|i| r[i] * rstd * weight.map_or(1.0, |w| w.data[i])).collect()
    })
}

/// Mean over rows whose target is not `ignore_index` of logsumexp(z) - z[target];
/// logits (N, C). A 0-d tensor; NaN when every row is ignored.
pub fn cross_entropy(logits: &RefTensor, targets: &[i64], ignore_index: i64) -> RefTensor {
    let c = logits.shape[1];
    let (mut total, mut count) = (0.0, 0usize);
    for (row, &t) in logits.data.chunks(c.max(1)).zip(targets) {
        if t == ignore_index {
            continue;
        }
        let m = row.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v));
        let lse = m + row.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
        total += lse - row[t as usize];
        count += 1;
    }
    RefTensor::scalar(total / count as f64)
}

/// cos/sin tables (T, D/2): angle i at position p is p * base^(-2i/D).
pub fn rope_tables(start: usize, t: usize, d: usize, base: f64) -> (RefTensor, RefTensor) {
    let half = d / 2;
    let angle = |idx: &[usize]| (start + idx[0]) as f64 * base.powf(-2.0 * idx[1] as f64 / d as f64);
    (RefTensor::from_fn(&[t, half], |i| angle(i).cos()), RefTensor::from_fn(&[t, half], |i| angle(i).sin()))
}

/// Rotate feature pairs of x (..., T, D) by the angles of cos/sin (T, D/2): pair i is
/// (x[2i], x[2i+1]) interleaved, or (x[i], x[i + D/2]) split-halves.
pub fn rope(x: &RefTensor, cos: &RefTensor, sin: &RefTensor, convention: RopeConvention) -> RefTensor {
    let r = x.rank();
    let (t, d) = (x.shape[r - 2], x.shape[r - 1]);
    let half = d / 2;
    let mut out = x.clone();
    if d == 0 {
        return out;
    }
    for (row_idx, row) in x.data.chunks(d).enumerate() {
        let pos = row_idx % t;
        for i in 0..half {
            let (a, b) = match convention {
                RopeConvention::Interleaved => (2 * i, 2 * i + 1),
                RopeConvention::SplitHalves => (i, i + half),
            };
            let (c, s) = (cos.at(&[pos, i]), sin.at(&[pos, i]));
            out.data[row_idx * d + a] = row[a] * c - row[b] * s;
            out.data[row_idx * d + b] = row[a] * s + row[b] * c;
        }
    }
    out
}

/// The engine's counter-based uniform in [0, 1): element i of seed s is a pure function
/// of (s, i) — SplitMix64's finaliser, 24 random bits. NOT an independent oracle: it
/// restates the engine's own definition, so the dropout rows of the conformance table are
/// an engine self-consistency check (every backend, dtype and layout draws the same mask
/// and scales it the same way). That the mask is a fair, independent draw is tested
/// statistically, without this function, in `tests/dropout_statistics.rs`.
pub fn engine_dropout_uniform(seed: u64, i: u64) -> f64 {
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;
    let bits = mix(mix(seed ^ GOLDEN).wrapping_add(i.wrapping_mul(GOLDEN)));
    (bits >> 40) as f64 / (1u64 << 24) as f64
}

/// Keep element i (row-major) when u_i >= p and scale it by 1/(1-p), else 0: the engine's
/// own mask (`engine_dropout_uniform`), for the self-consistency rows. The draw (24
/// bits, exact in f32) and the threshold are compared as f32 whatever the tensor's dtype, so
/// an f16 or bf16 tensor keeps exactly the elements an f32 one would.
pub fn dropout(x: &RefTensor, p: f64, seed: u64, _dtype: DType) -> RefTensor {
    let threshold = round_to(DType::F32, p);
    let mut out = x.clone();
    for (i, v) in out.data.iter_mut().enumerate() {
        let keep = engine_dropout_uniform(seed, i as u64) >= threshold;
        *v = if keep { *v / (1.0 - p) } else { 0.0 };
    }
    out
}
