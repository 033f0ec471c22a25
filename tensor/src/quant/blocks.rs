//! ggml's block layouts, element for element. Rounding in `quantize_row` follows ggml's
//! reference quantizers (`quantize_row_*_ref`) so that files we write match llama.cpp's.

use super::{kquants, GgmlType};
use crate::error::{invalid, Result};
use half::{bf16, f16};

const QK: usize = 32;

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

fn put_f16(b: &mut [u8], i: usize, v: f32) {
    b[i..i + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

fn check(ty: GgmlType, op: &'static str, bytes: usize, n: usize) -> Result<()> {
    let ok = n.is_multiple_of(ty.block_size()) && bytes == n / ty.block_size() * ty.type_size();
    if ok {
        Ok(())
    } else {
        Err(invalid(op, format!("{n} {ty} elements do not fit {bytes} bytes in whole blocks")))
    }
}

/// Decode `out.len()` elements of type `ty` from `bytes` (exactly that many blocks).
pub fn dequantize_row(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    check(ty, "dequantize", bytes.len(), out.len())?;
    let blocks = bytes.chunks_exact(ty.type_size()).zip(out.chunks_exact_mut(ty.block_size()));
    match ty {
        GgmlType::F32 => blocks.for_each(|(b, y)| y[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        GgmlType::F16 => blocks.for_each(|(b, y)| y[0] = f16_at(b, 0)),
        GgmlType::BF16 => blocks.for_each(|(b, y)| y[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        GgmlType::Q8_0 => blocks.for_each(|(b, y)| {
            let d = f16_at(b, 0);
            for (j, v) in y.iter_mut().enumerate() {
                *v = d * (b[2 + j] as i8) as f32;
            }
        }),
        GgmlType::Q4_0 | GgmlType::Q4_1 => blocks.for_each(|(b, y)| {
            let d = f16_at(b, 0);
            // Q4_0 centres the nibble at 8; Q4_1 adds a per-block minimum instead. Q4_0 adds
            // -0.0, the one addend that leaves every float as it is (ggml's 0 * d is -0 for a
            // negative scale, and +0.0 would turn it into +0: tests/fixtures/kquant/legacy.gguf).
            let (qs, bias, m) = if ty == GgmlType::Q4_0 { (&b[2..], -8.0, -0.0) } else { (&b[4..], 0.0, f16_at(b, 2)) };
            for j in 0..QK / 2 {
                y[j] = ((qs[j] & 0x0F) as f32 + bias) * d + m;
                y[j + QK / 2] = ((qs[j] >> 4) as f32 + bias) * d + m;
            }
        }),
        GgmlType::Q5_0 | GgmlType::Q5_1 => blocks.for_each(|(b, y)| {
            let d = f16_at(b, 0);
            let (rest, bias, m) =
                if ty == GgmlType::Q5_0 { (&b[2..], -16.0, -0.0) } else { (&b[4..], 0.0, f16_at(b, 2)) };
            let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let qs = &rest[4..];
            for j in 0..QK / 2 {
                let h0 = ((qh >> j) << 4) & 0x10;
                let h1 = (qh >> (j + 12)) & 0x10;
                y[j] = (((qs[j] & 0x0F) as u32 | h0) as f32 + bias) * d + m;
                y[j + QK / 2] = (((qs[j] >> 4) as u32 | h1) as f32 + bias) * d + m;
            }
        }),
        GgmlType::Q4K => blocks.for_each(|(b, y)| kquants::dequantize_q4_k(b, y)),
        GgmlType::Q5K => blocks.for_each(|(b, y)| kquants::dequantize_q5_k(b, y)),
        GgmlType::Q6K => blocks.for_each(|(b, y)| kquants::dequantize_q6_k(b, y)),
        _ => return Err(invalid("dequantize", format!("type {ty} cannot be dequantized by this build"))),
    }
    Ok(())
}

/// Encode `x` (a whole number of blocks) as `ty` into `out`, rounding as ggml does.
pub fn quantize_row(ty: GgmlType, x: &[f32], out: &mut [u8]) -> Result<()> {
    check(ty, "quantize", out.len(), x.len())?;
    let blocks = x.chunks_exact(ty.block_size()).zip(out.chunks_exact_mut(ty.type_size()));
    match ty {
        GgmlType::F32 => blocks.for_each(|(x, b)| b.copy_from_slice(&x[0].to_le_bytes())),
        GgmlType::F16 => blocks.for_each(|(x, b)| put_f16(b, 0, x[0])),
        GgmlType::BF16 => blocks.for_each(|(x, b)| b.copy_from_slice(&bf16::from_f32(x[0]).to_le_bytes())),
        GgmlType::Q8_0 => blocks.for_each(|(x, b)| {
            let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            put_f16(b, 0, d);
            for (j, v) in x.iter().enumerate() {
                b[2 + j] = ((v * id).round() as i8) as u8;
            }
        }),
        GgmlType::Q4_0 | GgmlType::Q5_0 => blocks.for_each(|(x, b)| {
            // The scale maps the element of largest magnitude, with its sign, to -8 (-16).
            let max = x.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
            let (levels, top) = if ty == GgmlType::Q4_0 { (8.0, 15) } else { (16.0, 31) };
            let d = max / -levels;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            put_f16(b, 0, d);
            let q = |v: f32| ((v * id + levels + 0.5) as i8).min(top) as u8;
            pack_nibbles(ty == GgmlType::Q5_0, x, &mut b[2..], q);
        }),
        GgmlType::Q4_1 | GgmlType::Q5_1 => blocks.for_each(|(x, b)| {
            let min = x.iter().copied().fold(f32::INFINITY, f32::min);
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let top = if ty == GgmlType::Q4_1 { 15 } else { 31 };
            let d = (max - min) / top as f32;
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            put_f16(b, 0, d);
            put_f16(b, 2, min);
            let q = |v: f32| (((v - min) * id + 0.5) as i8).min(top) as u8;
            pack_nibbles(ty == GgmlType::Q5_1, x, &mut b[4..], q);
        }),
        GgmlType::Q4K => blocks.for_each(|(x, b)| kquants::quantize_q4_k(x, b)),
        GgmlType::Q5K => blocks.for_each(|(x, b)| kquants::quantize_q5_k(x, b)),
        GgmlType::Q6K => blocks.for_each(|(x, b)| kquants::quantize_q6_k(x, b)),
        _ => return Err(invalid("quantize", format!("quantizing to {ty} is not supported by this build"))),
    }
    Ok(())
}

/// Store 32 quantized values as nibbles (element j low, j+16 high), with the fifth bits
/// in a leading little-endian u32 when `five_bit`.
fn pack_nibbles(five_bit: bool, x: &[f32], b: &mut [u8], q: impl Fn(f32) -> u8) {
    let mut qh = 0u32;
    let qs_at = if five_bit { 4 } else { 0 };
    for j in 0..QK / 2 {
        let (lo, hi) = (q(x[j]), q(x[j + QK / 2]));
        b[qs_at + j] = (lo & 0x0F) | ((hi & 0x0F) << 4);
        qh |= (((lo & 0x10) >> 4) as u32) << j;
        qh |= (((hi & 0x10) >> 4) as u32) << (j + QK / 2);
    }
    if five_bit {
        b[..4].copy_from_slice(&qh.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(ty: GgmlType, x: &[f32]) -> Vec<f32> {
        let mut b = vec![0u8; x.len() / ty.block_size() * ty.type_size()];
        quantize_row(ty, x, &mut b).unwrap();
        let mut y = vec![0f32; x.len()];
        dequantize_row(ty, &b, &mut y).unwrap();
        y
    }

    #[test]
    fn roundtrip_error_is_within_half_a_step() {
        let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32 - 31.5) / 10.0).collect();
        for (ty, steps) in [(GgmlType::Q8_0, 254.0), (GgmlType::Q4_1, 15.0), (GgmlType::Q5_1, 31.0)] {
            let y = roundtrip(ty, &x);
            for (blk_x, blk_y) in x.chunks(32).zip(y.chunks(32)) {
                let range = blk_x.iter().fold(0f32, |a, v| a.max(v.abs())) * 2.0;
                for (a, b) in blk_x.iter().zip(blk_y) {
                    assert!((a - b).abs() <= range / steps * 0.51 + 1e-3, "{ty}: {a} vs {b}");
                }
            }
        }
        for ty in [GgmlType::Q4_0, GgmlType::Q5_0] {
            let y = roundtrip(ty, &x);
            let err = x.iter().zip(&y).fold(0f32, |a, (p, q)| a.max((p - q).abs()));
            assert!(err < 0.5, "{ty}: max error {err}");
        }
    }

    #[test]
    fn q4_1_layout_is_ggmls() {
        // d = 1, m = -8: nibble q decodes to q - 8; element j in the low nibble of byte j.
        let mut b = vec![0u8; 20];
        b[0..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        b[2..4].copy_from_slice(&f16::from_f32(-8.0).to_le_bytes());
        b[4] = 0x3A; // element 0 = 0xA, element 16 = 0x3
        let mut y = vec![0f32; 32];
        dequantize_row(GgmlType::Q4_1, &b, &mut y).unwrap();
        assert_eq!((y[0], y[16], y[1]), (2.0, -5.0, -8.0));
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let mut y = vec![0f32; 31];
        assert!(dequantize_row(GgmlType::Q8_0, &[0u8; 34], &mut y).is_err());
        assert!(quantize_row(GgmlType::Q4K, &[0f32; 256], &mut [0u8; 143]).is_err());
        assert!(quantize_row(GgmlType::Q2K, &[0f32; 256], &mut [0u8; 84]).is_err());
    }
}
