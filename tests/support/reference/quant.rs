//! ggml's quantized block formats, decoded in f64 from the format definitions (ggml's
//! `dequantize_row_*` in ggml-quants.c), byte by byte; plus random blocks to test with.
//! The reference of `matmul_qt` is x @ dequantize(W)^T in f64.

use crate::data::Rng;
use lamina_tensor::quant::GgmlType;

/// (bytes per block, elements per block) of the formats decoded here.
pub fn block_shape(ty: GgmlType) -> (usize, usize) {
    match ty {
        GgmlType::Q4_0 => (18, 32),
        GgmlType::Q4_1 => (20, 32),
        GgmlType::Q5_0 => (22, 32),
        GgmlType::Q5_1 => (24, 32),
        GgmlType::Q8_0 => (34, 32),
        GgmlType::Q4K => (144, 256),
        GgmlType::Q5K => (176, 256),
        GgmlType::Q6K => (210, 256),
        other => panic!("no reference decoder for {other}"),
    }
}

/// The IEEE half at byte `i` (little-endian): sign, 5-bit exponent (bias 15), 10-bit
/// mantissa; exponent 0 is subnormal, 31 is inf/NaN.
fn f16_at(b: &[u8], i: usize) -> f64 {
    let h = u16::from_le_bytes([b[i], b[i + 1]]);
    let sign = if h >> 15 == 1 { -1.0 } else { 1.0 };
    let (e, m) = ((h >> 10) & 31, (h & 1023) as f64);
    sign * match e {
        0 => m * 2f64.powi(-24),
        31 if m == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + m / 1024.0) * 2f64.powi(e as i32 - 15),
    }
}

/// Byte offsets of a block's f16 fields (d, and m / dmin where the format has one).
fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
        GgmlType::Q6K => &[208],
        other => panic!("no reference decoder for {other}"),
    }
}

/// Decode one block of `ty` into its elements.
pub fn dequantize_block(ty: GgmlType, b: &[u8]) -> Vec<f64> {
    let (bytes, n) = block_shape(ty);
    assert_eq!(b.len(), bytes, "{ty}: a block is {bytes} bytes");
    let mut y = vec![0.0; n];
    let d = f16_at(b, f16_fields(ty)[0]);
    match ty {
        // 16 bytes of nibbles: element j in the low nibble of byte j, element j + 16 in the high one.
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let (qs, m) = if ty == GgmlType::Q4_0 { (&b[2..18], -8.0 * d) } else { (&b[4..20], f16_at(b, 2)) };
            for j in 0..16 {
                y[j] = d * (qs[j] & 15) as f64 + m;
                y[j + 16] = d * (qs[j] >> 4) as f64 + m;
            }
        }
        // As Q4, plus a 32-bit word whose bit j is the fifth bit of element j.
        GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let (rest, m) = if ty == GgmlType::Q5_0 { (&b[2..22], -16.0 * d) } else { (&b[4..24], f16_at(b, 2)) };
            let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            for j in 0..16 {
                let lo = (rest[4 + j] & 15) as u32 | ((qh >> j) & 1) << 4;
                let hi = (rest[4 + j] >> 4) as u32 | ((qh >> (j + 16)) & 1) << 4;
                y[j] = d * lo as f64 + m;
                y[j + 16] = d * hi as f64 + m;
            }
        }
        GgmlType::Q8_0 => {
            for j in 0..32 {
                y[j] = d * (b[2 + j] as i8) as f64;
            }
        }
        // Q4_K: d, dmin, 12 bytes of 6-bit (scale, min) pairs for 8 sub-blocks of 32, then 4
        // chunks of 32 bytes: chunk c holds sub-block 2c in its low nibbles, 2c+1 in the
        // high. Q5_K: the same with 32 bytes of fifth bits before the nibbles (bit j of
        // byte l: element l of sub-block j).
        GgmlType::Q4K | GgmlType::Q5K => {
            let dmin = f16_at(b, 2);
            let s = &b[4..16];
            let (qh, qs) = if ty == GgmlType::Q5K { (Some(&b[16..48]), &b[48..176]) } else { (None, &b[16..144]) };
            for j in 0..8 {
                let (sc, mn) = if j < 4 {
                    (s[j] & 63, s[j + 4] & 63)
                } else {
                    ((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
                };
                let chunk = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                for l in 0..32 {
                    let lo = if j % 2 == 0 { chunk[l] & 15 } else { chunk[l] >> 4 };
                    let hi = qh.map_or(0, |h| ((h[l] >> j) & 1) << 4);
                    y[32 * j + l] = d * sc as f64 * (lo | hi) as f64 - dmin * mn as f64;
                }
            }
        }
        // 128 bytes of low nibbles (ql), 64 of 2-bit highs (qh), 16 signed scales of
        // 16-element sub-blocks, d. Element 128h + 32t + l: ql[64h + 32(t%2) + l] nibble t/2,
        // qh[32h + l] bits 2t..2t+2, scale 8h + 2t + l/16; value d * scale * (q - 32).
        GgmlType::Q6K => {
            for (i, yi) in y.iter_mut().enumerate().take(256) {
                let (h, t, l) = (i / 128, (i / 32) % 4, i % 32);
                let ql = b[64 * h + 32 * (t % 2) + l] >> (4 * (t / 2)) & 15;
                let qh = (b[128 + 32 * h + l] >> (2 * t)) & 3;
                let q = (ql | qh << 4) as i32 - 32;
                *yi = d * (b[192 + 8 * h + 2 * t + l / 16] as i8) as f64 * q as f64;
            }
        }
        other => panic!("no reference decoder for {other}"),
    }
    y
}

/// A (rows, cols) matrix of `ty` blocks as f64, row-major.
pub fn dequantize(ty: GgmlType, bytes: &[u8], rows: usize, cols: usize) -> Vec<f64> {
    let (bb, n) = block_shape(ty);
    assert_eq!(cols % n, 0, "{ty}: {cols} columns are not whole blocks");
    assert_eq!(bytes.len(), rows * cols / n * bb, "{ty}: wrong byte count");
    bytes.chunks_exact(bb).flat_map(|b| dequantize_block(ty, b)).collect()
}

/// Random `ty` blocks for a (rows, cols) matrix: every quantized bit random; the f16
/// fields of either sign, random mantissa, exponent 2^-10..2^-5 (so products stay O(1)
/// for N(0, 1) inputs).
pub fn random_blocks(ty: GgmlType, rows: usize, cols: usize, rng: &mut Rng) -> Vec<u8> {
    let (bb, n) = block_shape(ty);
    let mut bytes: Vec<u8> = (0..rows * cols / n * bb).map(|_| rng.next_u64() as u8).collect();
    for block in bytes.chunks_exact_mut(bb) {
        for &at in f16_fields(ty) {
            let r = rng.next_u64();
            let half = ((r & 1) << 15) as u16 | ((5 + (r >> 1) % 6) << 10) as u16 | ((r >> 8) & 1023) as u16;
            block[at..at + 2].copy_from_slice(&half.to_le_bytes());
        }
    }
    bytes
}
