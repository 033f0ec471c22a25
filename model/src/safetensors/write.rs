//! safetensors writer: the header lists tensors in the order given, padded with spaces to
//! a multiple of 8 bytes (as the reference implementation does, so the data is aligned);
//! the file is written atomically.

use super::SafeDtype;
use crate::atomic::{io_err, write_atomic};
use crate::error::{ModelError, Result};
use half::{bf16, f16};
use lamina_tensor::{DType, Tensor};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

/// Write `tensors` (any dtype; stored as F32, F16, BF16, I32 or U32) and `metadata`
/// (the `__metadata__` map, left out when empty) to `path`.
pub fn write_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(&str, &Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let header = header(tensors, metadata)?;
    write_atomic(path, |w| {
        w.write_all(&header).map_err(|e| io_err(path, e))?;
        for (_, t) in tensors {
            w.write_all(&le_bytes(t)?).map_err(|e| io_err(path, e))?;
        }
        Ok(())
    })
}

/// A safetensors image in memory.
pub fn to_bytes(tensors: &[(&str, &Tensor)], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut out = header(tensors, metadata)?;
    for (_, t) in tensors {
        out.extend_from_slice(&le_bytes(t)?);
    }
    Ok(out)
}

fn stored_dtype(dtype: DType) -> SafeDtype {
    match dtype {
        DType::F32 => SafeDtype::F32,
        DType::F16 => SafeDtype::F16,
        DType::BF16 => SafeDtype::BF16,
        DType::I32 => SafeDtype::I32,
        DType::U32 => SafeDtype::U32,
    }
}

/// The length prefix and the JSON header, padded.
fn header(tensors: &[(&str, &Tensor)], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut map = Map::new();
    if !metadata.is_empty() {
        map.insert("__metadata__".into(), json!(metadata));
    }
    let mut names = HashSet::new();
    let mut offset = 0u64;
    for (name, t) in tensors {
        if *name == "__metadata__" || !names.insert(*name) {
            return Err(ModelError::Invalid(format!(
                "safetensors writer: tensor name `{name}` is reserved or repeated"
            )));
        }
        let end = offset + (t.numel() * t.dtype().size_in_bytes()) as u64;
        let entry =
            json!({ "dtype": stored_dtype(t.dtype()).name(), "shape": t.shape(), "data_offsets": [offset, end] });
        map.insert(name.to_string(), entry);
        offset = end;
    }
    let mut text = Value::Object(map).to_string().into_bytes();
    text.resize(text.len().next_multiple_of(8), b' ');
    Ok([(text.len() as u64).to_le_bytes().as_slice(), &text].concat())
}

/// A tensor's elements in row-major order, little-endian.
fn le_bytes(t: &Tensor) -> Result<Vec<u8>> {
    Ok(match t.dtype() {
        DType::F32 => t.to_vec::<f32>()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::F16 => t.to_vec::<f16>()?.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        DType::BF16 => t.to_vec::<bf16>()?.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        DType::I32 => t.to_vec::<i32>()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::U32 => t.to_vec::<u32>()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
    })
}
