//! AVX2 integer dot products: a tile of `RW` weight rows x `RA` quantized activation rows
//! ((4, 1) for matrix-vector products, (2, 4) otherwise, and their remainders), so each
//! weight group is unpacked once per `RA` products, each activation group loaded once per
//! `RW`, and `RW * RA` independent accumulators hide the FMA latency.
//!
//! Per 32-element group: unpack the weight codes to 32 bytes ([`Block::load`]), then per
//! pair `maddubs` (u8 x i8 -> adjacent pairs summed to i16), `madd` with ones (-> eight
//! i32 lanes, lane k = elements 4k..4k+4), convert to f32 and FMA with the product of the
//! two scales into an 8-lane accumulator. The horizontal sum happens once per output, not
//! per group. Same decoding as `portable.rs` (`w = d * q + m`, `d` per 16-element half).
//!
//! `maddubs` wants its first operand unsigned. The 4/5-bit codes are unsigned already
//! (their zero point is the per-group `m`, added through the activation sums `s`). The
//! signed types (Q8_0, Q6_K) use ggml's sign trick: `|w| * (a with w's sign) = w * a`,
//! via `sign_epi8`. No i16 saturation: |pair| <= 2 * 128 * 127 = 32512 for signed codes and
//! 2 * 31 * 127 for unsigned ones.

use super::act::{Q8Row, QK};
use super::{TileOut, MAX_TILE};
use crate::quant::{scale_min_k4, GgmlType};
use std::arch::x86_64::*;

/// `out[r * MAX_TILE + j] = rows[r] . acts[j]` for a tile of (weight rows, activation
/// rows) in (1..=4, 1) or (1..=2, 1..=4): the tiles `mod.rs` uses and their remainders.
///
/// # Safety
/// The CPU supports AVX2, FMA and F16C; each row holds whole blocks of `ty` covering the
/// activation rows' groups of 32.
pub(super) unsafe fn dot_tile(ty: GgmlType, rows: &[&[u8]], acts: &[Q8Row], out: &mut TileOut) {
    let row_bytes = acts[0].d.len() * QK / ty.block_size() * ty.type_size();
    debug_assert!(rows.iter().all(|r| r.len() == row_bytes));
    macro_rules! go {
        ($t:ident) => {
            // SAFETY: forwarded from the caller's contract.
            unsafe { tile_dispatch::<$t>(rows, acts, out) }
        };
    }
    with_block_type!(ty, go)
}

/// The tile sizes as const generics, so the accumulators live in registers.
unsafe fn tile_dispatch<B: Block>(rows: &[&[u8]], acts: &[Q8Row], out: &mut TileOut) {
    macro_rules! go {
        ($rw:literal, $ra:literal) => {
            // SAFETY: forwarded; the lengths match the const sizes.
            unsafe { tile::<B, $rw, $ra>(rows.try_into().unwrap(), acts.try_into().unwrap(), out) }
        };
    }
    with_tile_size!(rows.len(), acts.len(), go)
}

/// One decoded weight group: codes, the scale per i32 lane (lanes 0-3 cover elements 0-15,
/// lanes 4-7 elements 16-31) and the offset (unsigned types only).
#[derive(Clone, Copy)]
pub(super) struct Group {
    pub q: __m256i,
    pub d: __m256,
    /// The offset in lane 1 (other lanes ignored): that is where `cvtph2ps` leaves a
    /// block's (d, m) pair, so Q4_1/Q5_1 need no shuffle, and one FMA per product adds
    /// `m * s` where scalar code would take a multiply and an add.
    pub m: __m128,
}

/// `[d, d]` from the f16 `d` at `p`, and `[d, k d]` for a type whose offset is `k d`.
///
/// # Safety
/// F16C; `p` is valid for 2 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn d_and_offset(p: *const u8, k: f32) -> (__m256, __m128) {
    // SAFETY: caller.
    let bits = unsafe { (p as *const u16).read_unaligned() } as i32;
    let dd = _mm_cvtph_ps(_mm_cvtsi32_si128(bits | (bits << 16)));
    (_mm256_broadcastss_ps(dd), _mm_mul_ps(dd, _mm_setr_ps(1.0, k, 0.0, 0.0)))
}

/// `d` broadcast and `[d, m]` from the f16 pair (d, m) at `p`.
///
/// # Safety
/// F16C; `p` is valid for 4 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn d_and_min(p: *const u8) -> (__m256, __m128) {
    // SAFETY: caller.
    let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(unsafe { (p as *const i32).read_unaligned() }));
    (_mm256_broadcastss_ps(dm), dm)
}

/// A ggml block type as the tile kernels read it (AVX2 here, AVX-512 in `avx512.rs`).
pub(super) trait Block {
    /// Codes are signed with no offset (else unsigned, with `m`).
    const SIGNED: bool;
    /// Group `g` of the weight row at `row`.
    ///
    /// # Safety
    /// AVX2/FMA/F16C; the row holds group `g`.
    unsafe fn load(row: *const u8, g: usize) -> Group;
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<B: Block, const RW: usize, const RA: usize>(rows: &[&[u8]; RW], acts: &[Q8Row; RA], out: &mut TileOut) {
    let groups = acts[0].d.len();
    debug_assert!(acts.iter().all(|a| a.d.len() == groups && a.s.len() == groups && a.qs.len() == groups));
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_ps(); RA]; RW];
    // The weight offsets' share, sum_g m_g * s_g, per weight row: with one activation row
    // in lane 1 (where `Group::m` has it), with several in lane j for activation row j
    // (one FMA per weight row and group, and RW registers instead of RW x RA).
    let mut msum = [_mm_setzero_ps(); RW];
    // The driver walks weight rows in order, so the next tile's rows follow this one's:
    // fetch them from memory while this tile computes, spread over its groups. (The
    // hardware prefetcher alone left matrix-vector products from DRAM at ~40% of the
    // read bandwidth; a wrong guess only costs a wasted prefetch, never a fault.)
    let step = (RW * rows[0].len()).div_ceil(groups);
    let next = rows[RW - 1].as_ptr_range().end;
    for g in 0..groups {
        let ahead = next.wrapping_add(g * step);
        _mm_prefetch::<_MM_HINT_T0>(ahead as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64) as *const i8);
        // SAFETY: g < groups, which every row holds (caller) and every activation row has.
        unsafe {
            let mut w = [B::load(rows[0].as_ptr(), g); RW];
            for r in 1..RW {
                w[r] = B::load(rows[r].as_ptr(), g);
            }
            if !B::SIGNED {
                if RA == 1 {
                    let s = _mm_set1_ps(*acts[0].s.get_unchecked(g));
                    for r in 0..RW {
                        msum[r] = _mm_fmadd_ps(w[r].m, s, msum[r]);
                    }
                } else {
                    let mut s = [0f32; 4];
                    for j in 0..RA {
                        s[j] = *acts[j].s.get_unchecked(g);
                    }
                    let s = _mm_loadu_ps(s.as_ptr());
                    for r in 0..RW {
                        msum[r] = _mm_fmadd_ps(_mm_shuffle_ps::<0x55>(w[r].m, w[r].m), s, msum[r]);
                    }
                }
            }
            for (j, a) in acts.iter().enumerate() {
                let qa = _mm256_load_si256(a.qs.get_unchecked(g).0.as_ptr() as *const __m256i);
                let da = _mm256_set1_ps(*a.d.get_unchecked(g));
                for r in 0..RW {
                    let (wu, qa) = if B::SIGNED {
                        (_mm256_sign_epi8(w[r].q, w[r].q), _mm256_sign_epi8(qa, w[r].q))
                    } else {
                        (w[r].q, qa)
                    };
                    let dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(wu, qa), ones));
                    acc[r][j] = _mm256_fmadd_ps(_mm256_mul_ps(w[r].d, da), dot, acc[r][j]);
                }
            }
        }
    }
    for r in 0..RW {
        let mut m = [0f32; 4];
        // SAFETY: m has 4 lanes.
        unsafe { _mm_storeu_ps(m.as_mut_ptr(), msum[r]) };
        for j in 0..RA {
            out[r * MAX_TILE + j] = hsum(acc[r][j]) + if RA == 1 { m[1] } else { m[j] };
        }
    }
}

// ---- block types -------------------------------------------------------------------------

pub(super) struct Q4_0;
pub(super) struct Q4_1;
pub(super) struct Q5_0;
pub(super) struct Q5_1;
pub(super) struct Q8_0;
pub(super) struct Q4K;
pub(super) struct Q5K;
pub(super) struct Q6K;

impl Block for Q8_0 {
    const SIGNED: bool = true;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 34-byte block: d (f16), 32 signed codes.
        unsafe {
            let b = row.add(g * 34);
            Group {
                q: _mm256_loadu_si256(b.add(2) as *const __m256i),
                d: _mm256_set1_ps(f16_1(b)),
                m: _mm_setzero_ps(),
            }
        }
    }
}

impl Block for Q4_0 {
    const SIGNED: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 18-byte block: d (f16), 16 bytes of nibbles; value (q - 8) d.
        unsafe {
            let b = row.add(g * 18);
            let (d, m) = d_and_offset(b, -8.0);
            Group { q: nibbles_32(b.add(2)), d, m }
        }
    }
}

impl Block for Q4_1 {
    const SIGNED: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 20-byte block: d, m (f16), 16 bytes of nibbles; value q d + m.
        unsafe {
            let b = row.add(g * 20);
            let (d, m) = d_and_min(b);
            Group { q: nibbles_32(b.add(4)), d, m }
        }
    }
}

/// The 32 five-bit codes at `b`: a u32 of fifth bits, then 16 bytes of nibbles.
///
/// # Safety
/// AVX2; `b` is valid for 20 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn five_bit_codes(b: *const u8) -> __m256i {
    // SAFETY: caller.
    unsafe {
        let qh = (b as *const u32).read_unaligned();
        let fifth = _mm256_and_si256(bits_to_bytes(qh), _mm256_set1_epi8(0x10));
        _mm256_or_si256(nibbles_32(b.add(4)), fifth)
    }
}

impl Block for Q5_0 {
    const SIGNED: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 22-byte block: d, qh, nibbles; value (q - 16) d.
        unsafe {
            let b = row.add(g * 22);
            let (d, m) = d_and_offset(b, -16.0);
            Group { q: five_bit_codes(b.add(2)), d, m }
        }
    }
}

impl Block for Q5_1 {
    const SIGNED: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 24-byte block: d, m, qh, nibbles; value q d + m.
        unsafe {
            let b = row.add(g * 24);
            let (d, m) = d_and_min(b);
            Group { q: five_bit_codes(b.add(4)), d, m }
        }
    }
}

impl Block for Q4K {
    const SIGNED: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 144-byte super-block of 8 groups (layout in portable.rs).
        unsafe {
            let (b, j) = (row.add((g / 8) * 144), g % 8);
            let (d, dmin) = f16_2(b);
            let (sc, mn) = scale_min_k4(j, std::slice::from_raw_parts(b.add(4), 12));
            let v = _mm256_loadu_si256(b.add(16 + 32 * (j / 2)) as *const __m256i);
            let q =
                _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(4 * (j % 2) as i32)), _mm256_set1_epi8(0x0F));
            Group { q, d: _mm256_set1_ps(d * sc as f32), m: _mm_setr_ps(0.0, -dmin * mn as f32, 0.0, 0.0) }
        }
    }
}

impl Block for Q5K {
    const SIGNED: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 176-byte super-block of 8 groups (layout in portable.rs): the
        // Q4_K nibbles at 48.., plus bit j of the 32 bytes at 16.. as bit 4 of the code.
        unsafe {
            let (b, j) = (row.add((g / 8) * 176), g % 8);
            let (d, dmin) = f16_2(b);
            let (sc, mn) = scale_min_k4(j, std::slice::from_raw_parts(b.add(4), 12));
            let v = _mm256_loadu_si256(b.add(48 + 32 * (j / 2)) as *const __m256i);
            let lo =
                _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(4 * (j % 2) as i32)), _mm256_set1_epi8(0x0F));
            let qh = _mm256_loadu_si256(b.add(16) as *const __m256i);
            let hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(j as i32)), _mm256_set1_epi8(1));
            let q = _mm256_or_si256(lo, _mm256_slli_epi16::<4>(hi));
            Group { q, d: _mm256_set1_ps(d * sc as f32), m: _mm_setr_ps(0.0, -dmin * mn as f32, 0.0, 0.0) }
        }
    }
}

impl Block for Q6K {
    const SIGNED: bool = true;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 210-byte super-block of 8 groups (layout in portable.rs). Group
        // k of a half: low (k < 2) or high nibble of ql[32 (k % 2)..], bits 2k..2k+2 of qh
        // as bits 4..6, centred on zero; its halves have scales sc[2k] and sc[2k + 1].
        unsafe {
            let b = row.add((g / 8) * 210);
            let (half, k) = ((g % 8) / 4, (g % 4) as i32);
            let ql = _mm256_loadu_si256(b.add(half * 64 + 32 * (k as usize % 2)) as *const __m256i);
            let qh = _mm256_loadu_si256(b.add(128 + half * 32) as *const __m256i);
            let lo = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (k / 2))), _mm256_set1_epi8(0x0F));
            let hi = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * k)), _mm256_set1_epi8(3));
            let q = _mm256_sub_epi8(_mm256_or_si256(lo, _mm256_slli_epi16::<4>(hi)), _mm256_set1_epi8(32));
            let sc = b.add(192 + half * 8 + 2 * k as usize) as *const i8;
            let d = f16_1(b.add(208));
            let d = _mm256_setr_m128(_mm_set1_ps(d * *sc as f32), _mm_set1_ps(d * *sc.add(1) as f32));
            Group { q, d, m: _mm_setzero_ps() }
        }
    }
}

// ---- helpers -----------------------------------------------------------------------------

/// 16 bytes of nibbles -> 32 bytes: element j (low nibble of byte j) in byte j, element
/// j + 16 (high nibble) in byte j + 16.
///
/// # Safety
/// AVX2; `p` is valid for 16 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles_32(p: *const u8) -> __m256i {
    // SAFETY: caller.
    unsafe {
        let v = _mm_loadu_si128(p as *const __m128i);
        let both = _mm256_setr_m128i(v, _mm_srli_epi16::<4>(v));
        _mm256_and_si256(both, _mm256_set1_epi8(0x0F))
    }
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
/// F16C; `p` is valid for 2 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_1(p: *const u8) -> f32 {
    // SAFETY: caller.
    unsafe {
        let bits = (p as *const u16).read_unaligned();
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
    }
}

/// The two f16s at `p` (a block's d and m), converted in one instruction.
///
/// # Safety
/// F16C; `p` is valid for 4 reads.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_2(p: *const u8) -> (f32, f32) {
    // SAFETY: caller.
    unsafe {
        let v = _mm_cvtph_ps(_mm_cvtsi32_si128((p as *const i32).read_unaligned()));
        (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
    }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}
