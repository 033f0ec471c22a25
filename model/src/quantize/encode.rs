//! Tensors encoded for a GGUF file, with the guarantee every writer of model files gives:
//! nothing non-finite is written. A NaN or infinite input value, or a finite one the
//! format cannot hold (beyond F16's 65504, a block scale that overflows), is an error
//! naming the tensor, never a file that produces NaN downstream.

use crate::error::{ModelError, Result};
use lamina_tensor::quant::{dequantize, quantize_row, GgmlType};
use rayon::prelude::*;

fn not_finite(name: &str, what: &str, at: usize, v: f32) -> ModelError {
    ModelError::Invalid(format!(
        "tensor `{name}`: {what} {v} at element {at}; refusing to write a model that is not finite"
    ))
}

/// `values` (rows of `row`) as `ty`'s bytes, rows in parallel, checked finite before and
/// after encoding.
pub(crate) fn encode_rows(name: &str, values: &[f32], row: usize, ty: GgmlType) -> Result<Vec<u8>> {
    if let Some(at) = values.iter().position(|v| !v.is_finite()) {
        return Err(not_finite(name, "the value is", at, values[at]));
    }
    let row_bytes = ty.row_bytes(row as u64).ok_or_else(|| {
        ModelError::Invalid(format!(
            "tensor `{name}`: rows of {row} weights are not whole {ty} blocks of {}",
            ty.block_size()
        ))
    })? as usize;
    let mut out = vec![0u8; values.len() / row.max(1) * row_bytes];
    if row > 0 {
        lamina_tensor::cpu::parallel::install(|| {
            out.par_chunks_mut(row_bytes).zip(values.par_chunks(row)).try_for_each(|(o, x)| quantize_row(ty, x, o))
        })?;
    }
    check_finite(name, ty, &out, values.len())?;
    Ok(out)
}

/// Refuse `n` values of type `ty` in `bytes` that decode to something not finite (integer
/// types always pass).
pub(crate) fn check_finite(name: &str, ty: GgmlType, bytes: &[u8], n: usize) -> Result<()> {
    if !ty.can_dequantize() || n == 0 {
        return Ok(());
    }
    let values = dequantize(ty, bytes, n)?;
    match values.iter().position(|v| !v.is_finite()) {
        Some(at) => Err(not_finite(name, &format!("as {ty} it holds"), at, values[at])),
        None => Ok(()),
    }
}
