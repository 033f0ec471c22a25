//! AVX-512 integer dot products: the tiles of `avx2.rs` with two 32-element groups per zmm
//! register, and VNNI's `vpdpbusd` (u8 x i8, four products summed into each i32 lane, no
//! i16 intermediate) in place of the `maddubs` + `madd` pair where the CPU has it.
//!
//! Per pair of groups (g, g + 1): each weight group is decoded by the AVX2 code
//! (`avx2::Block::load`: codes, per-lane scales, offset) and the two halves are joined into
//! one zmm, lanes 0-7 group g and 8-15 group g + 1; the activations' 64 bytes are one load
//! (`Q8Group`s are contiguous). The dot product gives 16 i32 lanes, each the sum over four
//! elements, converted to f32 and accumulated with one FMA by the product of the scales. An
//! odd last group runs with the upper half zero. The offsets (`m * s`) are added per group
//! exactly as in `avx2.rs`, and the outputs are summed once at the end.
//!
//! Signed codes (Q8_0, Q6_K) use the same sign trick as the AVX2 kernel, `|w| * (a with w's
//! sign)`; AVX-512 has no `sign_epi8`, so the activation is negated where w < 0 with a masked
//! subtract.

use super::act::{Q8Row, QK};
use super::avx2::{self, Block, Group};
use super::{TileOut, MAX_TILE};
use crate::quant::GgmlType;
use std::arch::x86_64::*;

/// `out[r * MAX_TILE + j] = rows[r] . acts[j]` for the tiles `avx2::dot_tile` lists; `vnni`
/// selects `vpdpbusd`.
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VL/DQ, AVX2, FMA and F16C, and AVX-512 VNNI when `vnni`;
/// each row holds whole blocks of `ty` covering the activation rows' groups of 32.
pub(super) unsafe fn dot_tile(ty: GgmlType, rows: &[&[u8]], acts: &[Q8Row], out: &mut TileOut, vnni: bool) {
    let row_bytes = acts[0].d.len() * QK / ty.block_size() * ty.type_size();
    debug_assert!(rows.iter().all(|r| r.len() == row_bytes));
    macro_rules! go {
        ($t:ident) => {
            // SAFETY: forwarded from the caller's contract.
            unsafe { tile_dispatch::<avx2::$t>(rows, acts, out, vnni) }
        };
    }
    with_block_type!(ty, go)
}

unsafe fn tile_dispatch<B: Block>(rows: &[&[u8]], acts: &[Q8Row], out: &mut TileOut, vnni: bool) {
    macro_rules! go {
        ($rw:literal, $ra:literal) => {
            // SAFETY: forwarded; the lengths match the const sizes; `vnni` only when present.
            unsafe {
                let (r, a) = (rows.try_into().unwrap(), acts.try_into().unwrap());
                if vnni {
                    tile_vnni::<B, $rw, $ra>(r, a, out)
                } else {
                    tile_plain::<B, $rw, $ra>(r, a, out)
                }
            }
        };
    }
    with_tile_size!(rows.len(), acts.len(), go)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
unsafe fn tile_vnni<B: Block, const RW: usize, const RA: usize>(
    rows: &[&[u8]; RW],
    acts: &[Q8Row; RA],
    out: &mut TileOut,
) {
    // SAFETY: forwarded.
    unsafe { tile::<B, RW, RA, true>(rows, acts, out) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
unsafe fn tile_plain<B: Block, const RW: usize, const RA: usize>(
    rows: &[&[u8]; RW],
    acts: &[Q8Row; RA],
    out: &mut TileOut,
) {
    // SAFETY: forwarded.
    unsafe { tile::<B, RW, RA, false>(rows, acts, out) }
}

/// Two groups' decoded weights in one zmm: codes and per-lane scales.
#[derive(Clone, Copy)]
struct Pair {
    q: __m512i,
    d: __m512,
}

/// Adds group `g`'s weight offset times the activation sums to `msum` (unsigned types only):
/// with one activation row in lane 1 (where `Group::m` has it), with several in lane j for
/// activation row j, as in avx2.rs.
#[inline(always)]
unsafe fn add_offsets<B: Block, const RA: usize>(msum: &mut __m128, m: __m128, acts: &[Q8Row; RA], g: usize) {
    if B::SIGNED {
        return;
    }
    // SAFETY: the caller runs with AVX2/FMA; g < the groups of every activation row.
    unsafe {
        if RA == 1 {
            *msum = _mm_fmadd_ps(m, _mm_set1_ps(*acts[0].s.get_unchecked(g)), *msum);
        } else {
            let mut s = [0f32; 4];
            for j in 0..RA {
                s[j] = *acts[j].s.get_unchecked(g);
            }
            *msum = _mm_fmadd_ps(_mm_shuffle_ps::<0x55>(m, m), _mm_loadu_ps(s.as_ptr()), *msum);
        }
    }
}

/// Sum of four adjacent u8 x i8 products per i32 lane.
#[inline(always)]
unsafe fn dot4<const VNNI: bool>(wu: __m512i, a: __m512i) -> __m512i {
    // SAFETY: the caller runs with AVX-512 BW, and VNNI when VNNI.
    unsafe {
        if VNNI {
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, a)
        } else {
            _mm512_madd_epi16(_mm512_maddubs_epi16(wu, a), _mm512_set1_epi16(1))
        }
    }
}

#[inline(always)]
unsafe fn tile<B: Block, const RW: usize, const RA: usize, const VNNI: bool>(
    rows: &[&[u8]; RW],
    acts: &[Q8Row; RA],
    out: &mut TileOut,
) {
    let groups = acts[0].d.len();
    debug_assert!(acts.iter().all(|a| a.d.len() == groups && a.s.len() == groups && a.qs.len() == groups));
    // SAFETY (whole body): the CPU features are those of the calling `tile_*`; every group
    // index read is < groups, which every weight row and activation row holds.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); RA]; RW];
        // The weight offsets' share (see `add_offsets`).
        let mut msum = [_mm_setzero_ps(); RW];
        // Fetch the next tile's weight rows while this one computes (see avx2.rs).
        let step = (RW * rows[0].len()).div_ceil(groups.div_ceil(2));
        let next = rows[RW - 1].as_ptr_range().end;
        let zero_group = Group { q: _mm256_setzero_si256(), d: _mm256_setzero_ps(), m: _mm_setzero_ps() };
        for g in (0..groups).step_by(2) {
            let ahead = next.wrapping_add((g / 2) * step);
            for line in 0..3 {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line) as *const i8);
            }
            let two = g + 1 < groups;
            let mut w = [Pair { q: _mm512_setzero_si512(), d: _mm512_setzero_ps() }; RW];
            for r in 0..RW {
                let w0 = B::load(rows[r].as_ptr(), g);
                let w1 = if two { B::load(rows[r].as_ptr(), g + 1) } else { zero_group };
                w[r] = Pair {
                    q: _mm512_inserti64x4::<1>(_mm512_castsi256_si512(w0.q), w1.q),
                    d: _mm512_insertf32x8::<1>(_mm512_castps256_ps512(w0.d), w1.d),
                };
                add_offsets::<B, RA>(&mut msum[r], w0.m, acts, g);
                if two {
                    add_offsets::<B, RA>(&mut msum[r], w1.m, acts, g + 1);
                }
            }
            for (j, a) in acts.iter().enumerate() {
                let pa = a.qs.as_ptr().add(g) as *const __m256i;
                let (qa, da) = if two {
                    let d = _mm512_insertf32x8::<1>(
                        _mm512_set1_ps(*a.d.get_unchecked(g)),
                        _mm256_set1_ps(*a.d.get_unchecked(g + 1)),
                    );
                    (_mm512_loadu_si512(pa as *const __m512i), d)
                } else {
                    (_mm512_zextsi256_si512(_mm256_load_si256(pa)), _mm512_set1_ps(*a.d.get_unchecked(g)))
                };
                for r in 0..RW {
                    let (wu, qs) = if B::SIGNED {
                        let neg = _mm512_movepi8_mask(w[r].q);
                        (_mm512_abs_epi8(w[r].q), _mm512_mask_sub_epi8(qa, neg, _mm512_setzero_si512(), qa))
                    } else {
                        (w[r].q, qa)
                    };
                    let dot = _mm512_cvtepi32_ps(dot4::<VNNI>(wu, qs));
                    acc[r][j] = _mm512_fmadd_ps(_mm512_mul_ps(w[r].d, da), dot, acc[r][j]);
                }
            }
        }
        for r in 0..RW {
            let mut m = [0f32; 4];
            _mm_storeu_ps(m.as_mut_ptr(), msum[r]);
            for j in 0..RA {
                let v = acc[r][j];
                let half = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps::<1>(v));
                out[r * MAX_TILE + j] = avx2::hsum(half) + if RA == 1 { m[1] } else { m[j] };
            }
        }
    }
}
