//! The portable twin: every weight type, one 32-element group at a time, in plain Rust.
//!
//! Each group of a weight row decodes to small integers and scales,
//! `w[i] = d[i / 16] * q[i] + m`, which covers all the block formats: Q8_0 (q signed,
//! m = 0), Q4_0/Q5_0 (q = the unsigned code, m = -8d / -16d), Q4_1/Q5_1 (m = the block
//! minimum), Q4_K/Q5_K (each 32-element sub-block has its own 6-bit scale and minimum) and
//! Q6_K (16-element sub-blocks, so the two halves of a group have separate scales: hence
//! two `d`s). The dot with a Q8 activation group is then exact integer sums per half and
//! three multiplies: `da * (d0 * isum0 + d1 * isum1) + m * sa`.

use super::act::{Q8Row, QK};
use crate::quant::{scale_min_k4, GgmlType};
use half::f16;

/// One decoded weight group: `w[i] = d[i / 16] * q[i] + m`.
pub(super) struct WGroup {
    pub q: [i8; QK],
    pub d: [f32; 2],
    pub m: f32,
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Group `g` of a weight row of type `ty` (one of the block types, see `int_kernel`).
pub(super) fn decode(ty: GgmlType, row: &[u8], g: usize) -> WGroup {
    let mut q = [0i8; QK];
    match ty {
        GgmlType::Q8_0 => {
            let b = &row[g * 34..(g + 1) * 34];
            for (qi, &v) in q.iter_mut().zip(&b[2..]) {
                *qi = v as i8;
            }
            let d = f16_at(b, 0);
            WGroup { q, d: [d; 2], m: 0.0 }
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let ts = ty.type_size();
            let b = &row[g * ts..(g + 1) * ts];
            let d = f16_at(b, 0);
            // Byte layout: d, [m], [qh: u32, bit j = fifth bit of element j], then 16 bytes
            // of nibbles (element j low, element j + 16 high).
            let (m, rest) = match ty {
                GgmlType::Q4_0 => (-8.0 * d, &b[2..]),
                GgmlType::Q5_0 => (-16.0 * d, &b[2..]),
                _ => (f16_at(b, 2), &b[4..]),
            };
            let five = matches!(ty, GgmlType::Q5_0 | GgmlType::Q5_1);
            let (qh, qs) =
                if five { (u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]), &rest[4..]) } else { (0, rest) };
            for j in 0..QK / 2 {
                let h0 = ((qh >> j) & 1) << 4;
                let h1 = ((qh >> (j + 16)) & 1) << 4;
                q[j] = ((qs[j] & 0x0F) as u32 | h0) as i8;
                q[j + 16] = ((qs[j] >> 4) as u32 | h1) as i8;
            }
            WGroup { q, d: [d; 2], m }
        }
        GgmlType::Q4K => {
            // 144-byte super-block: d, dmin, 12 bytes of 6-bit (scale, min) pairs, then
            // 128 bytes where chunk c of 32 bytes holds sub-block 2c (low nibbles) and
            // 2c + 1 (high nibbles).
            let b = &row[(g / 8) * 144..(g / 8 + 1) * 144];
            let j = g % 8;
            let (sc, mn) = scale_min_k4(j, &b[4..16]);
            let qs = &b[16 + 32 * (j / 2)..16 + 32 * (j / 2) + 32];
            let shift = 4 * (j % 2);
            for (qi, &v) in q.iter_mut().zip(qs) {
                *qi = ((v >> shift) & 0x0F) as i8;
            }
            let d = f16_at(b, 0) * sc as f32;
            WGroup { q, d: [d; 2], m: -f16_at(b, 2) * mn as f32 }
        }
        GgmlType::Q5K => {
            // 176-byte super-block: as Q4_K, with 32 bytes of fifth bits between the
            // scales and the nibbles; bit j of qh[l] belongs to element l of sub-block j.
            let b = &row[(g / 8) * 176..(g / 8 + 1) * 176];
            let j = g % 8;
            let (sc, mn) = scale_min_k4(j, &b[4..16]);
            let qh = &b[16..48];
            let qs = &b[48 + 32 * (j / 2)..48 + 32 * (j / 2) + 32];
            let shift = 4 * (j % 2);
            for ((qi, &v), &h) in q.iter_mut().zip(qs).zip(qh) {
                *qi = (((v >> shift) & 0x0F) | (((h >> j) & 1) << 4)) as i8;
            }
            let d = f16_at(b, 0) * sc as f32;
            WGroup { q, d: [d; 2], m: -f16_at(b, 2) * mn as f32 }
        }
        GgmlType::Q6K => {
            // 210-byte super-block of two 128-element halves: ql (64 bytes of nibbles per
            // half), qh (32 bytes of 2-bit pairs per half), 16 signed scales, d at 208.
            // Group k of a half is elements l + 32k: the low (k < 2) or high nibble of
            // ql[l + 32 (k % 2)] and bits 2k..2k+2 of qh[l]; scales[2k] for l < 16, else
            // scales[2k + 1].
            let b = &row[(g / 8) * 210..(g / 8 + 1) * 210];
            let (half, k) = ((g % 8) / 4, g % 4);
            let ql = &b[half * 64 + 32 * (k % 2)..half * 64 + 32 * (k % 2) + 32];
            let qh = &b[128 + half * 32..128 + half * 32 + 32];
            let sc = &b[192 + half * 8..192 + half * 8 + 8];
            for l in 0..QK {
                let lo = (ql[l] >> (4 * (k / 2))) & 0x0F;
                let hi = (qh[l] >> (2 * k)) & 3;
                q[l] = (lo | (hi << 4)) as i8 - 32;
            }
            let d = f16_at(b, 208);
            WGroup { q, d: [d * (sc[2 * k] as i8) as f32, d * (sc[2 * k + 1] as i8) as f32], m: 0.0 }
        }
        _ => unreachable!("qmatmul: {ty} has no integer kernel"),
    }
}

/// `out[j] = w_row . acts[j]` for each activation row, decoding each weight group once.
pub(super) fn dot_rows(ty: GgmlType, row: &[u8], acts: &[Q8Row], out: &mut [f32]) {
    out.fill(0.0);
    let groups = acts.first().map_or(0, |a| a.d.len());
    for g in 0..groups {
        let w = decode(ty, row, g);
        for (a, o) in acts.iter().zip(out.iter_mut()) {
            let qa = &a.qs[g].0;
            let isum = |r: std::ops::Range<usize>| r.map(|i| w.q[i] as i32 * qa[i] as i32).sum::<i32>() as f32;
            let (lo, hi) = (isum(0..16), isum(16..32));
            *o += a.d[g] * (w.d[0] * lo + w.d[1] * hi) + w.m * a.s[g];
        }
    }
}
