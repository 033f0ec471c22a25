//! GGUF/ggml tensor types and their block formats. Quantized weights are stored in
//! blocks of 32 (or 256 for K-quants) elements that share a scale; the layouts here are
//! bit-exact with ggml's, so a GGUF file's bytes are read as they are.

mod blocks;
mod kquants;
mod qmatrix;
#[cfg(test)]
mod tests;

use crate::error::{invalid, Result};
use rayon::prelude::*;

pub use blocks::{dequantize_row, quantize_row};
pub(crate) use kquants::scale_min_k4;
pub use qmatrix::{QMatrix, SharedBytes};

/// A ggml tensor type, numbered as in GGUF's tensor info (`ggml_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    Q8K,
    I8,
    I16,
    I32,
    I64,
    F64,
    BF16,
}

impl GgmlType {
    /// The type with GGUF id `id`, or `None` for an id this build does not know.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        use GgmlType::*;
        Some(match id {
            0 => F32,
            1 => F16,
            2 => Q4_0,
            3 => Q4_1,
            6 => Q5_0,
            7 => Q5_1,
            8 => Q8_0,
            9 => Q8_1,
            10 => Q2K,
            11 => Q3K,
            12 => Q4K,
            13 => Q5K,
            14 => Q6K,
            15 => Q8K,
            24 => I8,
            25 => I16,
            26 => I32,
            27 => I64,
            28 => F64,
            30 => BF16,
            _ => return None,
        })
    }

    pub fn id(self) -> u32 {
        use GgmlType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q8_1 => 9,
            Q2K => 10,
            Q3K => 11,
            Q4K => 12,
            Q5K => 13,
            Q6K => 14,
            Q8K => 15,
            I8 => 24,
            I16 => 25,
            I32 => 26,
            I64 => 27,
            F64 => 28,
            BF16 => 30,
        }
    }

    /// The type among `allowed` named `name` (case-insensitive: `q4_0` or `Q4_0`), or an
    /// error listing the allowed names: the one parser behind every `--type`-like option.
    pub fn parse_among(name: &str, allowed: &[GgmlType]) -> std::result::Result<GgmlType, String> {
        let name = name.trim();
        allowed.iter().copied().find(|t| t.name().eq_ignore_ascii_case(name)).ok_or_else(|| {
            let names: Vec<String> = allowed.iter().map(|t| t.name().to_lowercase()).collect();
            format!("unknown type `{name}` (choose one of {})", names.join(", "))
        })
    }

    pub fn name(self) -> &'static str {
        use GgmlType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q8_0 => "Q8_0",
            Q8_1 => "Q8_1",
            Q2K => "Q2_K",
            Q3K => "Q3_K",
            Q4K => "Q4_K",
            Q5K => "Q5_K",
            Q6K => "Q6_K",
            Q8K => "Q8_K",
            I8 => "I8",
            I16 => "I16",
            I32 => "I32",
            I64 => "I64",
            F64 => "F64",
            BF16 => "BF16",
        }
    }

    /// Elements per block (1 for plain types).
    pub fn block_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | F16 | BF16 | I8 | I16 | I32 | I64 | F64 => 1,
            Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q8_1 => 32,
            Q2K | Q3K | Q4K | Q5K | Q6K | Q8K => 256,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        use GgmlType::*;
        match self {
            F32 | I32 => 4,
            F16 | BF16 | I16 => 2,
            I8 => 1,
            I64 | F64 => 8,
            Q4_0 => 18,
            Q4_1 => 20,
            Q5_0 => 22,
            Q5_1 => 24,
            Q8_0 => 34,
            Q8_1 => 36,
            Q2K => 84,
            Q3K => 110,
            Q4K => 144,
            Q5K => 176,
            Q6K => 210,
            Q8K => 292,
        }
    }

    /// Bytes taken by a row of `n` elements, or `None` when `n` is not a whole number of
    /// blocks or the size overflows.
    pub fn row_bytes(self, n: u64) -> Option<u64> {
        let bs = self.block_size() as u64;
        if !n.is_multiple_of(bs) {
            return None;
        }
        (n / bs).checked_mul(self.type_size() as u64)
    }

    /// Whether `dequantize_row` can read this type.
    pub fn can_dequantize(self) -> bool {
        use GgmlType::*;
        matches!(self, F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q4K | Q5K | Q6K)
    }

    /// Whether `quantize_row` can write this type.
    pub fn can_quantize(self) -> bool {
        self.can_dequantize()
    }

    /// Bits per weight, scales included.
    pub fn bits_per_weight(self) -> f64 {
        self.type_size() as f64 * 8.0 / self.block_size() as f64
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Dequantize `n` elements stored as `ty` in `bytes` to f32, in parallel over blocks.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>> {
    let want = ty.row_bytes(n as u64).ok_or_else(|| {
        invalid("dequantize", format!("{n} elements are not a whole number of {ty} blocks of {}", ty.block_size()))
    })?;
    if bytes.len() as u64 != want {
        return Err(invalid("dequantize", format!("{n} {ty} elements need {want} bytes, got {}", bytes.len())));
    }
    if !ty.can_dequantize() {
        return Err(invalid("dequantize", format!("type {ty} cannot be dequantized by this build")));
    }
    let mut out = crate::storage::filled(n, 0f32)?;
    // Chunks of whole blocks, big enough to amortise the task overhead.
    let blocks_per_chunk = (1 << 16) / ty.block_size();
    let (elems, chunk_bytes) = (blocks_per_chunk * ty.block_size(), blocks_per_chunk * ty.type_size());
    crate::cpu::parallel::install(|| {
        out.par_chunks_mut(elems.max(1))
            .zip(bytes.par_chunks(chunk_bytes.max(1)))
            .try_for_each(|(o, b)| dequantize_row(ty, b, o))
    })?;
    Ok(out)
}
