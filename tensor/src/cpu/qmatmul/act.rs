//! Activations quantized to 8 bits in groups of 32 (ggml's Q8_1 idea, f32 scales): the
//! left operand of every integer dot product in this module.
//!
//! Group g of row j holds `q[32]` (i8) and `d` with `x[32g + i] ≈ d * q[i]`, plus
//! `s = d * sum(q)`, which turns a weight's per-group minimum `m` into one multiply:
//! `sum_i (dw*qw_i + m) * d*q_i = dw*d * sum_i qw_i*q_i + m*s`.
//!
//! Rounding is to nearest, ties to even, on both paths, so the two produce identical bytes
//! (`tests.rs` checks it); the scale is `max|x| / 127`, so |q| <= 127 and the AVX2 sign
//! trick never meets -128 from this side.

use crate::cpu::isa::Isa;

pub(super) const QK: usize = 32;

/// 32 quantized activations, aligned so the AVX2 kernel loads them with one aligned read.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
pub(super) struct Q8Group(pub [i8; QK]);

/// `m` rows of `cols` activations, quantized. Groups of one row are contiguous.
pub(super) struct Q8Acts {
    groups_per_row: usize,
    qs: Vec<Q8Group>, // (m, cols/32)
    d: Vec<f32>,      // (m, cols/32)
    s: Vec<f32>,      // (m, cols/32): d * sum(q)
}

/// One quantized row: the three arrays of [`Q8Acts`] for that row.
#[derive(Clone, Copy)]
pub(super) struct Q8Row<'a> {
    pub qs: &'a [Q8Group],
    pub d: &'a [f32],
    pub s: &'a [f32],
}

impl Q8Acts {
    /// Quantize `x` (m, cols), row-major; `cols` is a multiple of 32. `par`: rows in
    /// parallel on the current rayon pool (callers pass it only inside `parallel::install`).
    pub(super) fn quantize(isa: Isa, x: &[f32], m: usize, cols: usize, par: bool) -> Q8Acts {
        use rayon::prelude::*;
        debug_assert!(cols.is_multiple_of(QK) && x.len() == m * cols);
        let gpr = cols / QK;
        let mut a = Q8Acts {
            groups_per_row: gpr,
            qs: vec![Q8Group::default(); m * gpr],
            d: vec![0.0; m * gpr],
            s: vec![0.0; m * gpr],
        };
        if gpr == 0 {
            return a;
        }
        let (qs, d, s) = (&mut a.qs, &mut a.d, &mut a.s);
        if par {
            let rows = qs.par_chunks_mut(gpr).zip(d.par_chunks_mut(gpr)).zip(s.par_chunks_mut(gpr));
            rows.zip(x.par_chunks(cols))
                .with_min_len(((1 << 14) / cols).max(1))
                .for_each(|(((q, d), s), x)| quantize_row(isa, x, q, d, s));
        } else {
            let rows = qs.chunks_mut(gpr).zip(d.chunks_mut(gpr)).zip(s.chunks_mut(gpr));
            rows.zip(x.chunks(cols)).for_each(|(((q, d), s), x)| quantize_row(isa, x, q, d, s));
        }
        a
    }

    pub(super) fn row(&self, j: usize) -> Q8Row<'_> {
        let r = j * self.groups_per_row..(j + 1) * self.groups_per_row;
        Q8Row { qs: &self.qs[r.clone()], d: &self.d[r.clone()], s: &self.s[r] }
    }
}

/// One row: its groups' codes, scales and scaled sums.
fn quantize_row(isa: Isa, x: &[f32], q: &mut [Q8Group], d: &mut [f32], s: &mut [f32]) {
    for (g, xg) in x.chunks_exact(QK).enumerate() {
        (d[g], s[g]) = quantize_group(isa, xg.try_into().unwrap(), &mut q[g]);
    }
}

/// Quantize one group; returns (d, d * sum(q)).
fn quantize_group(isa: Isa, x: &[f32; QK], q: &mut Q8Group) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if super::use_avx2(isa) {
        // SAFETY: use_avx2 checked the CPU has AVX2 and FMA.
        return unsafe { quantize_group_avx2(x, q) };
    }
    let _ = isa;
    quantize_group_portable(x, q)
}

/// The scale and its reciprocal for a group whose largest magnitude is `amax` (NaN when
/// the group holds a NaN, so the product is NaN too instead of silently finite).
#[inline(always)]
fn scale(amax: f32) -> (f32, f32) {
    let d = amax / 127.0;
    (d, if d != 0.0 { 1.0 / d } else { 0.0 })
}

pub(super) fn quantize_group_portable(x: &[f32; QK], q: &mut Q8Group) -> (f32, f32) {
    let (mut amax, mut nan) = (0f32, false);
    for &v in x {
        amax = amax.max(v.abs());
        nan |= v.is_nan();
    }
    let amax = if nan { f32::NAN } else { amax };
    let (d, id) = scale(amax);
    let mut sum = 0i32;
    for (qi, &v) in q.0.iter_mut().zip(x) {
        let r = (v * id).round_ties_even();
        // cvtps_epi32 turns NaN into i32::MIN, which saturates to -128: do the same.
        *qi = if r.is_nan() { i8::MIN } else { r as i8 };
        sum += *qi as i32;
    }
    (d, d * sum as f32)
}

/// # Safety
/// The CPU supports AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_group_avx2(x: &[f32; QK], q: &mut Q8Group) -> (f32, f32) {
    use std::arch::x86_64::*;
    let p = x.as_ptr();
    // SAFETY: four 8-lane loads cover exactly the 32 floats of `x`; one 32-byte store
    // writes `q`, which is 32-byte aligned.
    unsafe {
        let v = [_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)), _mm256_loadu_ps(p.add(16)), _mm256_loadu_ps(p.add(24))];
        let sign = _mm256_set1_ps(-0.0);
        let (mut amax, mut nan) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for &vi in &v {
            amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, vi));
            nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(vi, vi));
        }
        // The max of |x| is exact in any order; only NaN needs the separate mask.
        let amax = if _mm256_movemask_ps(nan) != 0 { f32::NAN } else { hmax(amax) };
        let (d, id) = scale(amax);
        let vid = _mm256_set1_ps(id);
        let r = v.map(|vi| {
            _mm256_cvtps_epi32(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
                vi, vid,
            )))
        });
        // i32 -> i8 with saturating packs; packs interleave 128-bit lanes, the permute
        // restores element order.
        let i16s_lo = _mm256_packs_epi32(r[0], r[1]);
        let i16s_hi = _mm256_packs_epi32(r[2], r[3]);
        let i8s = _mm256_packs_epi16(i16s_lo, i16s_hi);
        let i8s = _mm256_permutevar8x32_epi32(i8s, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_store_si256(q.0.as_mut_ptr() as *mut __m256i, i8s);
        // Sum of the 32 bytes: madd with ones pairs them into i16 then i32 lanes.
        let s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), i8s);
        let s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
        let s128 = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256::<1>(s32));
        let s64 = _mm_add_epi32(s128, _mm_unpackhi_epi64(s128, s128));
        let sum = _mm_cvtsi128_si32(_mm_add_epi32(s64, _mm_shuffle_epi32::<1>(s64)));
        (d, d * sum as f32)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hmax(v: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
}
