//! NEON integer dot products (aarch64): the tiles of `avx2.rs` on 128-bit registers, with
//! the Armv8.2 `sdot` instruction where the CPU has the `dotprod` extension (four i8 x i8
//! products summed into each i32 lane) and `smull` + pairwise widening adds where it has not
//! (Cortex-A53/A72, e.g. the Raspberry Pi 3 and 4).
//!
//! A weight group decodes to 32 signed bytes in two registers (elements 0-15 and 16-31),
//! one scale per half and an offset (`w = d[i / 16] * q + m`, as in `portable.rs`). The
//! codes are at most 6 bits plus sign, so signed x signed products need no sign trick.
//! Each half's four i32 lanes are converted to f32 and accumulated with one FMA by the
//! product of the scales; the outputs are summed once at the end.
//!
//! `vdotq_s32` is not yet a stable intrinsic (rust-lang/rust#117224), so `sdot` is written
//! as inline assembly in a function compiled with the `dotprod` feature.

use super::act::{Q8Row, QK};
use super::{TileOut, MAX_TILE};
use crate::quant::{scale_min_k4, GgmlType};
use half::f16;
use std::arch::aarch64::*;

/// `out[r * MAX_TILE + j] = rows[r] . acts[j]` for the tiles `mod.rs` uses; `dotprod`
/// selects `sdot`.
///
/// # Safety
/// The CPU supports NEON, and `dotprod` when `dotprod`; each row holds whole blocks of `ty`
/// covering the activation rows' groups of 32.
pub(super) unsafe fn dot_tile(ty: GgmlType, rows: &[&[u8]], acts: &[Q8Row], out: &mut TileOut, dotprod: bool) {
    let row_bytes = acts[0].d.len() * QK / ty.block_size() * ty.type_size();
    debug_assert!(rows.iter().all(|r| r.len() == row_bytes));
    macro_rules! go {
        ($t:ident) => {
            // SAFETY: forwarded from the caller's contract.
            unsafe { tile_dispatch::<$t>(rows, acts, out, dotprod) }
        };
    }
    with_block_type!(ty, go)
}

unsafe fn tile_dispatch<B: Block>(rows: &[&[u8]], acts: &[Q8Row], out: &mut TileOut, dotprod: bool) {
    macro_rules! go {
        ($rw:literal, $ra:literal) => {
            // SAFETY: forwarded; the lengths match the const sizes; `dotprod` only when present.
            unsafe {
                let (r, a) = (rows.try_into().unwrap(), acts.try_into().unwrap());
                if dotprod {
                    tile_sdot::<B, $rw, $ra>(r, a, out)
                } else {
                    tile_plain::<B, $rw, $ra>(r, a, out)
                }
            }
        };
    }
    with_tile_size!(rows.len(), acts.len(), go)
}

#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_sdot<B: Block, const RW: usize, const RA: usize>(
    rows: &[&[u8]; RW],
    acts: &[Q8Row; RA],
    out: &mut TileOut,
) {
    // SAFETY: forwarded.
    unsafe { tile::<B, RW, RA, true>(rows, acts, out) }
}

#[target_feature(enable = "neon")]
unsafe fn tile_plain<B: Block, const RW: usize, const RA: usize>(
    rows: &[&[u8]; RW],
    acts: &[Q8Row; RA],
    out: &mut TileOut,
) {
    // SAFETY: forwarded.
    unsafe { tile::<B, RW, RA, false>(rows, acts, out) }
}

/// `acc + ` the sums of four adjacent products of `w` and `a`, per i32 lane.
#[inline(always)]
unsafe fn dot16<const SDOT: bool>(w: int8x16_t, a: int8x16_t) -> int32x4_t {
    // SAFETY: NEON; `sdot` only when SDOT, which only the dotprod-enabled wrapper passes.
    unsafe {
        if SDOT {
            let mut acc = vdupq_n_s32(0);
            std::arch::asm!(
                "sdot {acc:v}.4s, {w:v}.16b, {a:v}.16b",
                acc = inout(vreg) acc, w = in(vreg) w, a = in(vreg) a,
                options(pure, nomem, nostack),
            );
            acc
        } else {
            // One product per i16 lane (|q| <= 128, so |product| <= 2^14: no overflow), then
            // adjacent pairs widened and added into i32: lane k sums elements 4k..4k+4 as
            // `sdot` does, though the order differs (integers: same result).
            let lo = vmull_s8(vget_low_s8(w), vget_low_s8(a));
            let hi = vmull_high_s8(w, a);
            let lo = vpaddlq_s16(lo); // i32 lanes: (0+1, 2+3, 4+5, 6+7)
            let hi = vpaddlq_s16(hi); // (8+9, ..)
                                      // (0+1)+(2+3), (4+5)+(6+7), ...
            vpaddq_s32(lo, hi)
        }
    }
}

#[inline(always)]
unsafe fn tile<B: Block, const RW: usize, const RA: usize, const SDOT: bool>(
    rows: &[&[u8]; RW],
    acts: &[Q8Row; RA],
    out: &mut TileOut,
) {
    let groups = acts[0].d.len();
    debug_assert!(acts.iter().all(|a| a.d.len() == groups && a.s.len() == groups && a.qs.len() == groups));
    // SAFETY (whole body): NEON (and dotprod when SDOT) from the wrappers; every group index
    // read is < groups, which every weight row and activation row holds.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); RA]; RW];
        let mut msum = [[0f32; RA]; RW];
        for g in 0..groups {
            let mut w = [B::load(rows[0].as_ptr(), g); RW];
            for r in 1..RW {
                w[r] = B::load(rows[r].as_ptr(), g);
            }
            for j in 0..RA {
                let a = &acts[j];
                let pa = a.qs.get_unchecked(g).0.as_ptr();
                let (a0, a1) = (vld1q_s8(pa), vld1q_s8(pa.add(16)));
                let (da, sa) = (*a.d.get_unchecked(g), *a.s.get_unchecked(g));
                for r in 0..RW {
                    let lo = vcvtq_f32_s32(dot16::<SDOT>(w[r].q[0], a0));
                    let hi = vcvtq_f32_s32(dot16::<SDOT>(w[r].q[1], a1));
                    acc[r][j] = vfmaq_n_f32(vfmaq_n_f32(acc[r][j], lo, w[r].d[0] * da), hi, w[r].d[1] * da);
                    msum[r][j] += w[r].m * sa;
                }
            }
        }
        for r in 0..RW {
            for j in 0..RA {
                out[r * MAX_TILE + j] = vaddvq_f32(acc[r][j]) + msum[r][j];
            }
        }
    }
}

// ---- block types -------------------------------------------------------------------------

/// One decoded weight group: `w[i] = d[i / 16] * q[i] + m`, codes as two 16-byte halves.
#[derive(Clone, Copy)]
struct Group {
    q: [int8x16_t; 2],
    d: [f32; 2],
    m: f32,
}

/// A ggml block type as the tile kernel reads it (layouts in `portable.rs`).
trait Block {
    /// Group `g` of the weight row at `row`.
    ///
    /// # Safety
    /// NEON; the row holds group `g`.
    unsafe fn load(row: *const u8, g: usize) -> Group;
}

struct Q4_0;
struct Q4_1;
struct Q5_0;
struct Q5_1;
struct Q8_0;
struct Q4K;
struct Q5K;
struct Q6K;

/// The f16 at `p`.
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: caller; 2 bytes.
    unsafe { f16::from_bits((p as *const u16).read_unaligned()).to_f32() }
}

/// 16 bytes of nibbles at `p` -> (low nibbles, high nibbles): elements j and j + 16.
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> [uint8x16_t; 2] {
    // SAFETY: caller; 16 bytes.
    unsafe {
        let v = vld1q_u8(p);
        [vandq_u8(v, vdupq_n_u8(0x0F)), vshrq_n_u8::<4>(v)]
    }
}

/// Bit j of `h` (16 bits) -> byte j = 0x10 or 0: the fifth bit of 16 elements.
#[inline(always)]
unsafe fn fifth_bits(h: u32) -> uint8x16_t {
    const BIT: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // SAFETY: NEON.
    unsafe {
        let bytes = vcombine_u8(vdup_n_u8(h as u8), vdup_n_u8((h >> 8) as u8));
        vandq_u8(vtstq_u8(bytes, vld1q_u8(BIT.as_ptr())), vdupq_n_u8(0x10))
    }
}

#[inline(always)]
unsafe fn signed(v: [uint8x16_t; 2]) -> [int8x16_t; 2] {
    // SAFETY: NEON.
    unsafe { [vreinterpretq_s8_u8(v[0]), vreinterpretq_s8_u8(v[1])] }
}

impl Block for Q8_0 {
    #[inline(always)]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 34-byte block: d (f16), 32 signed codes.
        unsafe {
            let b = row.add(g * 34);
            let d = f16_at(b);
            Group { q: [vld1q_s8(b.add(2) as *const i8), vld1q_s8(b.add(18) as *const i8)], d: [d; 2], m: 0.0 }
        }
    }
}

impl Block for Q4_0 {
    #[inline(always)]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 18-byte block: d, 16 bytes of nibbles; value (q - 8) d.
        unsafe {
            let b = row.add(g * 18);
            let d = f16_at(b);
            Group { q: signed(nibbles(b.add(2))), d: [d; 2], m: -8.0 * d }
        }
    }
}

impl Block for Q4_1 {
    #[inline(always)]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 20-byte block: d, m, 16 bytes of nibbles; value q d + m.
        unsafe {
            let b = row.add(g * 20);
            Group { q: signed(nibbles(b.add(4))), d: [f16_at(b); 2], m: f16_at(b.add(2)) }
        }
    }
}

/// The 32 five-bit codes at `b`: a u32 of fifth bits, then 16 bytes of nibbles.
#[inline(always)]
unsafe fn five_bit_codes(b: *const u8) -> [int8x16_t; 2] {
    // SAFETY: caller; 20 bytes.
    unsafe {
        let qh = (b as *const u32).read_unaligned();
        let [lo, hi] = nibbles(b.add(4));
        signed([vorrq_u8(lo, fifth_bits(qh & 0xFFFF)), vorrq_u8(hi, fifth_bits(qh >> 16))])
    }
}

impl Block for Q5_0 {
    #[inline(always)]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 22-byte block: d, qh, nibbles; value (q - 16) d.
        unsafe {
            let b = row.add(g * 22);
            let d = f16_at(b);
            Group { q: five_bit_codes(b.add(2)), d: [d; 2], m: -16.0 * d }
        }
    }
}

impl Block for Q5_1 {
    #[inline(always)]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 24-byte block: d, m, qh, nibbles; value q d + m.
        unsafe {
            let b = row.add(g * 24);
            Group { q: five_bit_codes(b.add(4)), d: [f16_at(b); 2], m: f16_at(b.add(2)) }
        }
    }
}

/// The 32 bytes at `p` shifted right by `shift` and masked to `mask`.
#[inline(always)]
unsafe fn bits_of(p: *const u8, shift: i8, mask: u8) -> [uint8x16_t; 2] {
    // SAFETY: caller; 32 bytes.
    unsafe {
        let s = vdupq_n_s8(-shift);
        let m = vdupq_n_u8(mask);
        [vandq_u8(vshlq_u8(vld1q_u8(p), s), m), vandq_u8(vshlq_u8(vld1q_u8(p.add(16)), s), m)]
    }
}

impl Block for Q4K {
    #[inline(always)]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 144-byte super-block of 8 groups (layout in portable.rs).
        unsafe {
            let (b, j) = (row.add((g / 8) * 144), g % 8);
            let (sc, mn) = scale_min_k4(j, std::slice::from_raw_parts(b.add(4), 12));
            let q = bits_of(b.add(16 + 32 * (j / 2)), 4 * (j % 2) as i8, 0x0F);
            let d = f16_at(b) * sc as f32;
            Group { q: signed(q), d: [d; 2], m: -f16_at(b.add(2)) * mn as f32 }
        }
    }
}

impl Block for Q5K {
    #[inline(always)]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 176-byte super-block: the Q4_K nibbles at 48.., plus bit j of the
        // 32 bytes at 16.. as bit 4 of the code.
        unsafe {
            let (b, j) = (row.add((g / 8) * 176), g % 8);
            let (sc, mn) = scale_min_k4(j, std::slice::from_raw_parts(b.add(4), 12));
            let lo = bits_of(b.add(48 + 32 * (j / 2)), 4 * (j % 2) as i8, 0x0F);
            let hi = bits_of(b.add(16), j as i8, 1);
            let q = [vorrq_u8(lo[0], vshlq_n_u8::<4>(hi[0])), vorrq_u8(lo[1], vshlq_n_u8::<4>(hi[1]))];
            let d = f16_at(b) * sc as f32;
            Group { q: signed(q), d: [d; 2], m: -f16_at(b.add(2)) * mn as f32 }
        }
    }
}

impl Block for Q6K {
    #[inline(always)]
    unsafe fn load(row: *const u8, g: usize) -> Group {
        // SAFETY: caller; 210-byte super-block (layout in portable.rs): group k of a half is
        // the low (k < 2) or high nibble of ql[32 (k % 2)..], bits 2k..2k+2 of qh as bits
        // 4..6, centred on zero; its halves have scales sc[2k] and sc[2k + 1].
        unsafe {
            let b = row.add((g / 8) * 210);
            let (half, k) = ((g % 8) / 4, g % 4);
            let lo = bits_of(b.add(half * 64 + 32 * (k % 2)), 4 * (k / 2) as i8, 0x0F);
            let hi = bits_of(b.add(128 + half * 32), 2 * k as i8, 3);
            let c = |l: uint8x16_t, h: uint8x16_t| {
                vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(l, vshlq_n_u8::<4>(h))), vdupq_n_s8(32))
            };
            let sc = b.add(192 + half * 8 + 2 * k) as *const i8;
            let d = f16_at(b.add(208));
            Group { q: [c(lo[0], hi[0]), c(lo[1], hi[1])], d: [d * *sc as f32, d * *sc.add(1) as f32], m: 0.0 }
        }
    }
}
