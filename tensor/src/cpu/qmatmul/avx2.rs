//! AVX2 integer dot products: one weight row against `RA` (1..=4) quantized activation
//! rows, so each weight group is loaded and unpacked once per `RA` products.
//!
//! Per 32-element group: unpack the weight codes to 32 bytes, then per activation row
//! `maddubs` (u8 x i8 -> adjacent pairs summed to i16), `madd` with ones (-> eight i32
//! lanes, lane k = elements 4k..4k+4), convert to f32 and FMA with the product of the two
//! scales into an 8-lane accumulator. The horizontal sum happens once per row, not per
//! group. Same decoding as `portable.rs` (`w = d * q + m`, `d` per 16-element half).
//!
//! `maddubs` wants its first operand unsigned. The 4/5-bit codes are unsigned already
//! (their zero point is the per-group `m`, added through the activation sums `s`). The
//! signed types (Q8_0, Q6_K) use ggml's sign trick: `|w| * (a with w's sign) = w * a`,
//! via `sign_epi8`. No i16 saturation: |pair| <= 2 * 128 * 127 = 32512 for signed codes and
//! 2 * 31 * 127 for unsigned ones.

use super::act::{Q8Row, QK};
use crate::quant::{scale_min_k4, GgmlType};
use std::arch::x86_64::*;

/// `out[j] = w_row . acts[j]`, `acts.len()` in 1..=4.
///
/// # Safety
/// The CPU supports AVX2, FMA and F16C; `row` holds whole blocks of `ty` covering the
/// activation rows' `groups` groups of 32.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_rows(ty: GgmlType, row: &[u8], acts: &[Q8Row], out: &mut [f32]) {
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        match acts.len() {
            1 => dot_tile::<1>(ty, row, acts.try_into().unwrap(), out),
            2 => dot_tile::<2>(ty, row, acts.try_into().unwrap(), out),
            3 => dot_tile::<3>(ty, row, acts.try_into().unwrap(), out),
            4 => dot_tile::<4>(ty, row, acts.try_into().unwrap(), out),
            n => panic!("qmatmul avx2: tile of {n} activation rows"),
        }
    }
}

/// Partial sums of one weight row against RA activation rows.
struct Acc<const RA: usize> {
    v: [__m256; RA],
    /// The weight minimum's contribution, `sum_g m_g * s_g`.
    m: [f32; RA],
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_tile<const RA: usize>(ty: GgmlType, row: &[u8], acts: &[Q8Row; RA], out: &mut [f32]) {
    let groups = acts[0].d.len();
    debug_assert!(acts.iter().all(|a| a.d.len() == groups && a.s.len() == groups && a.qs.len() == groups));
    debug_assert_eq!(row.len(), groups * QK / ty.block_size() * ty.type_size());
    let mut acc = Acc::<RA> { v: [_mm256_setzero_ps(); RA], m: [0.0; RA] };
    let p = row.as_ptr();
    let low4 = _mm256_set1_epi8(0x0F);
    // SAFETY (whole body): every pointer stays inside `row` (whole blocks, size checked
    // above) and `group` reads group g < groups of each activation row.
    unsafe {
        match ty {
            GgmlType::Q8_0 => {
                for g in 0..groups {
                    let b = p.add(g * 34);
                    let q = _mm256_loadu_si256(b.add(2) as *const __m256i);
                    group::<RA, true>(q, _mm256_set1_ps(f16_1(b)), 0.0, acts, g, &mut acc);
                }
            }
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                let (ts, qs_at) = if ty == GgmlType::Q4_0 { (18, 2) } else { (20, 4) };
                for g in 0..groups {
                    let b = p.add(g * ts);
                    let (d, m) = if ty == GgmlType::Q4_0 { (f16_1(b), -8.0 * f16_1(b)) } else { f16_2(b) };
                    let q = nibbles_32(b.add(qs_at), low4);
                    group::<RA, false>(q, _mm256_set1_ps(d), m, acts, g, &mut acc);
                }
            }
            GgmlType::Q5_0 | GgmlType::Q5_1 => {
                let (ts, qh_at) = if ty == GgmlType::Q5_0 { (22, 2) } else { (24, 4) };
                for g in 0..groups {
                    let b = p.add(g * ts);
                    let (d, m) = if ty == GgmlType::Q5_0 { (f16_1(b), -16.0 * f16_1(b)) } else { f16_2(b) };
                    let qh = (b.add(qh_at) as *const u32).read_unaligned();
                    let fifth = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
                    let q = _mm256_or_si256(nibbles_32(b.add(qh_at + 4), low4), fifth);
                    group::<RA, false>(q, _mm256_set1_ps(d), m, acts, g, &mut acc);
                }
            }
            GgmlType::Q4K => {
                for sb in 0..groups / 8 {
                    let b = p.add(sb * 144);
                    let (d, dmin) = f16_2(b);
                    let scales = std::slice::from_raw_parts(b.add(4), 12);
                    for c in 0..4 {
                        // 32 bytes: sub-block 2c in the low nibbles, 2c + 1 in the high ones.
                        let v = _mm256_loadu_si256(b.add(16 + 32 * c) as *const __m256i);
                        let halves = [_mm256_and_si256(v, low4), _mm256_and_si256(_mm256_srli_epi16::<4>(v), low4)];
                        for (h, q) in halves.into_iter().enumerate() {
                            let (sc, mn) = scale_min_k4(2 * c + h, scales);
                            let g = sb * 8 + 2 * c + h;
                            group::<RA, false>(q, _mm256_set1_ps(d * sc as f32), -dmin * mn as f32, acts, g, &mut acc);
                        }
                    }
                }
            }
            GgmlType::Q6K => {
                for sb in 0..groups / 8 {
                    let b = p.add(sb * 210);
                    let d = f16_1(b.add(208));
                    for half in 0..2 {
                        let ql = b.add(half * 64);
                        let qh = _mm256_loadu_si256(b.add(128 + half * 32) as *const __m256i);
                        let sc = b.add(192 + half * 8) as *const i8;
                        for k in 0..4 {
                            // Group k: low (k < 2) or high nibble of ql[32 (k % 2)..], bits
                            // 2k..2k+2 of qh as bits 4..6; then centre on zero (signed path).
                            let v = _mm256_loadu_si256(ql.add(32 * (k % 2)) as *const __m256i);
                            let lo = _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(4 * (k as i32 / 2))), low4);
                            let hi = _mm256_and_si256(
                                _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k as i32)),
                                _mm256_set1_epi8(3),
                            );
                            let q =
                                _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16::<4>(hi)), _mm256_set1_epi8(32));
                            // Lanes 0-3 (elements 0-15) and 4-7 (16-31) have their own scales.
                            let (s0, s1) = (*sc.add(2 * k) as f32, *sc.add(2 * k + 1) as f32);
                            let vd = _mm256_setr_m128(_mm_set1_ps(d * s0), _mm_set1_ps(d * s1));
                            group::<RA, true>(q, vd, 0.0, acts, sb * 8 + half * 4 + k, &mut acc);
                        }
                    }
                }
            }
            _ => unreachable!("qmatmul: {ty} has no integer kernel"),
        }
    }
    for j in 0..RA {
        out[j] = hsum(acc.v[j]) + acc.m[j];
    }
}

/// Adds weight group `q` (scales `vd` per i32 lane, offset `m`) times group `g` of each
/// activation row. `SIGNED`: `q` holds signed codes and `m` is zero; otherwise `q` holds
/// unsigned codes.
///
/// # Safety
/// `g` is below every activation row's group count.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group<const RA: usize, const SIGNED: bool>(
    q: __m256i,
    vd: __m256,
    m: f32,
    acts: &[Q8Row; RA],
    g: usize,
    acc: &mut Acc<RA>,
) {
    let ones = _mm256_set1_epi16(1);
    let wu = if SIGNED { _mm256_sign_epi8(q, q) } else { q };
    for j in 0..RA {
        let a = &acts[j];
        // SAFETY: g < groups (caller); Q8Group is 32-byte aligned.
        let (qa, da, sa) = unsafe {
            (
                _mm256_load_si256(a.qs.get_unchecked(g).0.as_ptr() as *const __m256i),
                *a.d.get_unchecked(g),
                *a.s.get_unchecked(g),
            )
        };
        let qa = if SIGNED { _mm256_sign_epi8(qa, q) } else { qa };
        let dot = _mm256_madd_epi16(_mm256_maddubs_epi16(wu, qa), ones);
        let scale = _mm256_mul_ps(vd, _mm256_set1_ps(da));
        acc.v[j] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(dot), acc.v[j]);
        if !SIGNED {
            acc.m[j] += m * sa;
        }
    }
}

/// 16 bytes of nibbles -> 32 bytes: element j (low nibble of byte j) in byte j, element
/// j + 16 (high nibble) in byte j + 16.
///
/// # Safety
/// `p` is valid for 16 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles_32(p: *const u8, low4: __m256i) -> __m256i {
    // SAFETY: caller.
    let v = unsafe { _mm_loadu_si128(p as *const __m128i) };
    let both = _mm256_setr_m128i(v, _mm_srli_epi16::<4>(v));
    _mm256_and_si256(both, low4)
}

/// Bit j of `x` -> byte j = 0xFF or 0x00 (ggml's `bytes_from_bits_32`): broadcast,
/// shuffle byte j/8 of `x` into byte j, set every bit except bit j%8, compare with all-ones.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn bits_to_bytes(x: u32) -> __m256i {
    let shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
    let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
}

/// The f16 at `p`.
///
/// # Safety
/// `p` is valid for 2 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_1(p: *const u8) -> f32 {
    // SAFETY: caller.
    let bits = unsafe { (p as *const u16).read_unaligned() };
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// The two f16s at `p` (a block's d and m), converted in one instruction.
///
/// # Safety
/// `p` is valid for 4 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_2(p: *const u8) -> (f32, f32) {
    // SAFETY: caller.
    let bits = unsafe { (p as *const i32).read_unaligned() };
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(bits));
    (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}
