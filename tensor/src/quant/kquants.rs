//! The K-quant super-blocks (256 elements): Q4_K, Q5_K and Q6_K, both ways.
//!
//! The quantizers are ggml's reference ones without an importance matrix
//! (`quantize_row_q{4,5,6}_K_ref` in `ggml-quants.c`), transcribed operation for
//! operation: the same f32 expressions evaluated in the same order (ggml-base is built
//! without FMA contraction, so neither side fuses), the same magic-number rounding
//! (`nearest_int`) and the same integer conversions, so the bytes equal llama.cpp's. The
//! fixture test (`model/tests/kquant_reference.rs`) checks that against blocks made by
//! llama.cpp itself.
//!
//! How they work: each 32-element (Q4_K/Q5_K) or 16-element (Q6_K) sub-block gets the
//! scale (and, for Q4_K/Q5_K, the minimum) that minimises a weighted squared error over a
//! small grid of candidate scales (`make_qkx2_quants` / `make_qx_quants`); the sub-block
//! scales are then themselves quantized to 6 (8 for Q6_K) bits against one f16
//! super-block scale, and every element is rounded again against its final scale.

use half::f16;

pub(super) const QK_K: usize = 256;
/// Below this a group is "all zero" (ggml's `GROUP_MAX_EPS`).
const GROUP_MAX_EPS: f32 = 1e-15;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// f32 -> f16 bits, rounded to nearest even as `GGML_FP32_TO_FP16`.
fn to_f16(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_le_bytes()
}

/// ggml's `nearest_int`: adding 1.5 * 2^23 leaves round(fval) (ties to even) in the low
/// mantissa bits. Exact for |fval| < 2^22; for anything else (NaN, huge values) it gives
/// the same garbage as the C code, which is what bit-exactness asks for.
#[inline]
fn nearest_int(fval: f32) -> i32 {
    let i = (fval + 12_582_912.0).to_bits() as i32;
    (i & 0x007f_ffff) - 0x0040_0000
}

/// The 6-bit scale and minimum of sub-block `j` of a Q4_K/Q5_K block.
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Pack eight 6-bit (scale, min) pairs into Q4_K/Q5_K's 12 bytes (the inverse of
/// [`scale_min_k4`]): pairs 0-3 in the low six bits of bytes 0-7, pairs 4-7 as nibbles
/// of bytes 8-11 with their top two bits in the spare bits of bytes 0-7.
fn pack_scale_mins(ls: &[u8; 8], lm: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        if j < 4 {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (ls[j] & 0x0F) | ((lm[j] & 0x0F) << 4);
            s[j - 4] |= (ls[j] >> 4) << 6;
            s[j] |= (lm[j] >> 4) << 6;
        }
    }
    s
}

/// ggml's `make_qkx2_quants` (squared error): codes `l[i]` in 0..=nmax, a scale and a
/// minimum with `x[i] ≈ scale * l[i] - min`, minimising `sum w[i] (x - x̂)^2` over the
/// candidate inverse scales `(rmin + rdelta * is + nmax) / (max - min)`, is = 0..=nstep,
/// each refit by weighted least squares. Returns (scale, min), min >= 0.
fn make_qkx2_quants(nmax: i32, x: &[f32], w: &[f32], l: &mut [u8], rmin: f32, rdelta: f32, nstep: i32) -> (f32, f32) {
    let n = x.len();
    let (mut min, mut max) = (x[0], x[0]);
    let mut sum_w = w[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        l[i] = nearest_int(iscale * (x[i] - min)).clamp(0, nmax) as u8;
        let diff = scale * l[i] as f32 + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let li = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = li as u8;
            let lf = li as f32;
            sum_l += w[i] * lf;
            sum_l2 += w[i] * lf * lf;
            sum_xl += w[i] * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += w[i] * (diff * diff);
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights (weights
/// `x^2`): signed codes in -nmax..nmax stored as `l[i] = code + nmax`, the scale fitted
/// by least squares at 19 candidate inverse scales `-(nmax + 0.1 is) / max`.
fn make_qx_quants(nmax: i32, x: &[f32], l: &mut [i8]) -> f32 {
    let (mut max, mut amax) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l.fill(0);
        return 0.0;
    }
    let code = |iscale: f32, v: f32| nearest_int(iscale * v).clamp(-nmax, nmax - 1);
    let sums = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0f32, 0f32);
        for &v in x {
            let lf = code(iscale, v) as f32;
            let w = v * v;
            sumlx += w * v * lf;
            suml2 += w * lf * lf;
        }
        (sumlx, suml2)
    };
    let mut iscale = -(nmax as f32) / max;
    for (li, &v) in l.iter_mut().zip(x) {
        *li = (code(iscale, v) + nmax) as i8;
    }
    let (sumlx, suml2) = sums(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in (-9..=9).filter(|&is| is != 0) {
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        let (sumlx, suml2) = sums(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (li, &v) in l.iter_mut().zip(x) {
                *li = (code(iscale, v) + nmax) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Q4_K/Q5_K share everything but the code width (`nmax` 15 or 31) and the search grid.
/// Fills `b[0..4]` (d, dmin), `b[4..16]` (scales) and returns the 256 codes.
fn quantize_scale_min_block(x: &[f32], b: &mut [u8], nmax: i32, rmin: f32, nstep: i32) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    let (mut scales, mut mins) = ([0f32; 8], [0f32; 8]);
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    let mut weights = [0f32; 32];
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        (scales[j], mins[j]) = make_qkx2_quants(nmax, xs, &weights, &mut l[32 * j..32 * j + 32], rmin, 0.1, nstep);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 { 63.0 / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // `uint8_t ls = nearest_int(...)` wraps modulo 256 before the clamp; so does `as u8`.
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    b[0..2].copy_from_slice(&to_f16(max_scale / 63.0));
    b[2..4].copy_from_slice(&to_f16(max_min / 63.0));
    b[4..16].copy_from_slice(&pack_scale_mins(&ls, &lm));
    // Round every element again against the scale and minimum the block now stores.
    let (d_all, dmin_all) = (f16_at(b, 0), f16_at(b, 2));
    for j in 0..QK_K / 32 {
        let (sc, m) = scale_min_k4(j, &b[4..16]);
        let d = d_all * sc as f32;
        if d == 0.0 {
            continue; // the codes from make_qkx2_quants stay, as in ggml
        }
        let dm = dmin_all * m as f32;
        for i in 32 * j..32 * j + 32 {
            l[i] = nearest_int((x[i] + dm) / d).clamp(0, nmax) as u8;
        }
    }
    l
}

/// Q4_K (144 bytes): d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
/// (bytes 32c..32c+32 hold sub-block 2c in the low and 2c + 1 in the high nibbles).
pub(super) fn quantize_q4_k(x: &[f32], b: &mut [u8]) {
    let l = quantize_scale_min_block(x, b, 15, -1.0, 20);
    for (c, q) in b[16..144].chunks_exact_mut(32).enumerate() {
        for (i, q) in q.iter_mut().enumerate() {
            *q = l[64 * c + i] | (l[64 * c + i + 32] << 4);
        }
    }
}

/// Q5_K (176 bytes): as Q4_K plus 32 bytes of fifth bits after the scales: bit j of
/// byte i is the fifth bit of element i of sub-block j.
pub(super) fn quantize_q5_k(x: &[f32], b: &mut [u8]) {
    let l = quantize_scale_min_block(x, b, 31, -0.5, 15);
    let (qh, qs) = b[16..176].split_at_mut(32);
    qh.fill(0);
    for (c, q) in qs.chunks_exact_mut(32).enumerate() {
        for (i, q) in q.iter_mut().enumerate() {
            let (lo, hi) = (l[64 * c + i], l[64 * c + i + 32]);
            qh[i] |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
            *q = (lo & 0x0F) | ((hi & 0x0F) << 4);
        }
    }
}

/// Q6_K (210 bytes): 128 bytes of low nibbles, 64 bytes of high 2-bit pairs, 16 signed
/// 8-bit sub-block scales, d (f16). Sub-blocks of 16, `x ≈ d * sc * (q - 32)`.
pub(super) fn quantize_q6_k(x: &[f32], b: &mut [u8]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0f32; QK_K / 16];
    let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
    for (ib, s) in scales.iter_mut().enumerate() {
        *s = make_qx_quants(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..16 * ib + 16]);
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = *s;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        b.fill(0);
        return;
    }
    let iscale = -128.0 / max_scale;
    b[208..210].copy_from_slice(&to_f16(1.0 / iscale));
    for (ib, &s) in scales.iter().enumerate() {
        b[192 + ib] = nearest_int(iscale * s).min(127) as i8 as u8;
    }
    let d_all = f16_at(b, 208);
    for j in 0..QK_K / 16 {
        let d = d_all * (b[192 + j] as i8) as f32;
        if d == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(x[i] / d).clamp(-32, 31) + 32) as i8;
        }
    }
    let (ql, rest) = b.split_at_mut(128);
    for half in 0..2 {
        let (ql, qh) = (&mut ql[64 * half..64 * half + 64], &mut rest[32 * half..32 * half + 32]);
        let l = &l[128 * half..128 * half + 128];
        for i in 0..32 {
            let q = [l[i], l[i + 32], l[i + 64], l[i + 96]].map(|v| v as u8);
            ql[i] = (q[0] & 0x0F) | ((q[2] & 0x0F) << 4);
            ql[i + 32] = (q[1] & 0x0F) | ((q[3] & 0x0F) << 4);
            qh[i] = (q[0] >> 4) | ((q[1] >> 4) << 2) | ((q[2] >> 4) << 4) | ((q[3] >> 4) << 6);
        }
    }
}

/// Q4_K: eight sub-blocks of 32, each `d*sc*q - dmin*m`.
pub(super) fn dequantize_q4_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    for (c, (q, y)) in b[16..144].chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * c, scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            y[l] = d1 * (q[l] & 0x0F) as f32 - m1;
            y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

/// Q5_K: as Q4_K with a fifth bit per element from `qh`.
pub(super) fn dequantize_q5_k(b: &[u8], y: &mut [f32]) {
    let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
    let scales = &b[4..16];
    let qh = &b[16..48];
    for (c, (q, y)) in b[48..176].chunks_exact(32).zip(y.chunks_exact_mut(64)).enumerate() {
        let (sc1, m1) = scale_min_k4(2 * c, scales);
        let (sc2, m2) = scale_min_k4(2 * c + 1, scales);
        let (d1, m1) = (d * sc1 as f32, dmin * m1 as f32);
        let (d2, m2) = (d * sc2 as f32, dmin * m2 as f32);
        for l in 0..32 {
            let h1 = ((qh[l] >> (2 * c)) & 1) << 4;
            let h2 = ((qh[l] >> (2 * c + 1)) & 1) << 4;
            y[l] = d1 * ((q[l] & 0x0F) | h1) as f32 - m1;
            y[l + 32] = d2 * ((q[l] >> 4) | h2) as f32 - m2;
        }
    }
}

/// Q6_K: sixteen sub-blocks of 16, each `d*sc*(q-32)`.
pub(super) fn dequantize_q6_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 208);
    for half in 0..2 {
        let ql = &b[half * 64..half * 64 + 64];
        let qh = &b[128 + half * 32..128 + half * 32 + 32];
        let sc = &b[192 + half * 8..192 + half * 8 + 8];
        let y = &mut y[half * 128..half * 128 + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            y[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            y[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            y[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            y[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even_like_the_magic_number() {
        for (v, want) in [(0.5f32, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (3.49, 3), (-7.51, -8), (0.0, 0)] {
            assert_eq!(nearest_int(v), want, "{v}");
        }
        for v in [-4_194_303.0f32, -123.456, 0.25, 77.75, 4_194_303.0] {
            assert_eq!(nearest_int(v), v.round_ties_even() as i32, "{v}");
        }
    }

    #[test]
    fn scale_mins_pack_and_unpack() {
        let ls = [0, 1, 62, 63, 17, 63, 40, 5];
        let lm = [63, 0, 33, 12, 63, 0, 21, 48];
        let s = pack_scale_mins(&ls, &lm);
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &s), (ls[j], lm[j]), "pair {j}");
        }
    }

    /// Each format decodes its own blocks to within a step of the input.
    #[test]
    fn roundtrips_stay_within_a_step() {
        use crate::quant::{dequantize_row, quantize_row, GgmlType};
        let x: Vec<f32> = (0..QK_K).map(|i| ((i * 73 % 256) as f32 - 100.0) / 37.0).collect();
        for (ty, levels) in [(GgmlType::Q4K, 15.0), (GgmlType::Q5K, 31.0), (GgmlType::Q6K, 63.0)] {
            let mut b = vec![0u8; ty.type_size()];
            quantize_row(ty, &x, &mut b).unwrap();
            let mut y = vec![0f32; QK_K];
            dequantize_row(ty, &b, &mut y).unwrap();
            let range = 255.0 / 37.0;
            for (a, b) in x.iter().zip(&y) {
                // A sub-block step is at most the block range over the levels, plus the
                // 6-bit rounding of the sub-block scale.
                assert!((a - b).abs() <= range / levels * 1.2, "{ty}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn zero_blocks_stay_zero() {
        use crate::quant::{quantize_row, GgmlType};
        for ty in [GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K] {
            let mut b = vec![0xAAu8; ty.type_size()];
            quantize_row(ty, &[0f32; QK_K], &mut b).unwrap();
            assert!(b.iter().all(|&v| v == 0), "{ty}: {b:?}");
        }
    }
}
