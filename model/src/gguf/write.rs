//! GGUF v3 writer, byte-compatible with ggml's `gguf_write_to_file`: header, metadata in
//! the order given, the tensor table, zero padding to the alignment, then each tensor's
//! data padded to the alignment. Files are written atomically.
//!
//! The tensor table (and so every offset) is fixed before any data is written, so a
//! quantizer can produce one tensor at a time through [`GgufWriter::write_file`]'s
//! callback instead of holding the whole model.

use super::{MetaArray, MetaValue, TensorInfo};
use crate::atomic::{io_err, write_atomic};
use crate::error::{ModelError, Result};
use lamina_tensor::quant::GgmlType;
use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

const VERSION: u32 = 3;
const DEFAULT_ALIGNMENT: u64 = 32;
const MAX_DIMS: usize = 4;

/// A tensor to write whose bytes are already in memory.
#[derive(Clone, Copy, Debug)]
pub struct GgufTensor<'a> {
    pub name: &'a str,
    pub ty: GgmlType,
    /// GGUF order: `ne[0]` is the row length.
    pub ne: &'a [u64],
    pub data: &'a [u8],
}

/// The layout of a GGUF file being written: metadata, then tensors added one by one.
pub struct GgufWriter {
    metadata: Vec<(String, MetaValue)>,
    tensors: Vec<TensorInfo>,
    names: HashSet<String>,
    alignment: u64,
    /// End of the last tensor's data, relative to the data section.
    data_end: u64,
}

fn invalid(msg: String) -> ModelError {
    ModelError::Invalid(format!("GGUF writer: {msg}"))
}

impl GgufWriter {
    /// A writer for `metadata`, kept in this order. `general.alignment`, when present,
    /// must be a power of two; it sets the tensor alignment (default 32).
    pub fn new(metadata: Vec<(String, MetaValue)>) -> Result<GgufWriter> {
        let mut keys = HashSet::with_capacity(metadata.len());
        let mut alignment = DEFAULT_ALIGNMENT;
        for (key, value) in &metadata {
            if !keys.insert(key.as_str()) {
                return Err(invalid(format!("metadata key `{key}` given twice")));
            }
            if key == "general.alignment" {
                alignment = match value.as_u64() {
                    Some(a) if a.is_power_of_two() => a,
                    _ => {
                        return Err(invalid(format!(
                            "general.alignment must be a power of two, got {}",
                            value.summary()
                        )))
                    }
                };
            }
        }
        Ok(GgufWriter { metadata, tensors: Vec::new(), names: HashSet::new(), alignment, data_end: 0 })
    }

    /// Append a tensor to the table; its offset follows the previous tensor's data.
    pub fn add_tensor(&mut self, name: &str, ty: GgmlType, ne: &[u64]) -> Result<&TensorInfo> {
        if ne.is_empty() || ne.len() > MAX_DIMS {
            return Err(invalid(format!("tensor `{name}` has {} dimensions (1 to {MAX_DIMS} allowed)", ne.len())));
        }
        let n_bytes = ne
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .and_then(|n| ty.row_bytes(n).filter(|_| ne[0].is_multiple_of(ty.block_size() as u64)))
            .ok_or_else(|| {
                invalid(format!("tensor `{name}`: dimensions {ne:?} overflow or are not whole {ty} blocks"))
            })?;
        if !self.names.insert(name.to_string()) {
            return Err(invalid(format!("tensor `{name}` given twice")));
        }
        let offset = self.data_end.next_multiple_of(self.alignment);
        self.data_end = offset + n_bytes;
        self.tensors.push(TensorInfo { name: name.to_string(), ne: ne.to_vec(), ty, offset, n_bytes });
        Ok(self.tensors.last().expect("just pushed"))
    }

    /// The tensor table so far, with the offsets the file will have.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// Write the file atomically; `data` is asked for each tensor's bytes in table order.
    pub fn write_file<'d>(
        &self,
        path: impl AsRef<Path>,
        data: impl FnMut(&TensorInfo) -> Result<Cow<'d, [u8]>>,
    ) -> Result<()> {
        let path = path.as_ref();
        write_atomic(path, |w| self.emit(w, data, path))
    }

    /// The file's bytes in memory (tests, small files).
    pub fn to_vec<'d>(&self, data: impl FnMut(&TensorInfo) -> Result<Cow<'d, [u8]>>) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.emit(&mut out, data, Path::new("<memory>"))?;
        Ok(out)
    }

    fn emit<'d, W: Write>(
        &self,
        w: &mut W,
        mut data: impl FnMut(&TensorInfo) -> Result<Cow<'d, [u8]>>,
        path: &Path,
    ) -> Result<()> {
        let mut header = Vec::new();
        header.extend_from_slice(b"GGUF");
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        header.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut header, key);
            header.extend_from_slice(&value_type(value).to_le_bytes());
            put_value(&mut header, value);
        }
        for t in &self.tensors {
            put_str(&mut header, &t.name);
            header.extend_from_slice(&(t.ne.len() as u32).to_le_bytes());
            for d in &t.ne {
                header.extend_from_slice(&d.to_le_bytes());
            }
            header.extend_from_slice(&t.ty.id().to_le_bytes());
            header.extend_from_slice(&t.offset.to_le_bytes());
        }
        pad(&mut header, self.alignment);
        w.write_all(&header).map_err(|e| io_err(path, e))?;

        let mut pos = 0u64;
        for t in &self.tensors {
            let bytes = data(t)?;
            if bytes.len() as u64 != t.n_bytes {
                return Err(invalid(format!("tensor `{}` needs {} bytes, got {}", t.name, t.n_bytes, bytes.len())));
            }
            zeros(w, t.offset - pos).map_err(|e| io_err(path, e))?;
            w.write_all(&bytes).map_err(|e| io_err(path, e))?;
            pos = t.offset + t.n_bytes;
        }
        zeros(w, pos.next_multiple_of(self.alignment) - pos).map_err(|e| io_err(path, e))
    }
}

/// Write a GGUF v3 file atomically from metadata (in order) and in-memory tensors.
pub fn write_gguf(path: impl AsRef<Path>, metadata: Vec<(String, MetaValue)>, tensors: &[GgufTensor]) -> Result<()> {
    let (writer, mut data) = layout(metadata, tensors)?;
    writer.write_file(path, |_| Ok(Cow::Borrowed(data.next().expect("one per tensor"))))
}

/// A GGUF v3 image in memory.
pub fn to_bytes(metadata: Vec<(String, MetaValue)>, tensors: &[GgufTensor]) -> Result<Vec<u8>> {
    let (writer, mut data) = layout(metadata, tensors)?;
    writer.to_vec(|_| Ok(Cow::Borrowed(data.next().expect("one per tensor"))))
}

fn layout<'a>(
    metadata: Vec<(String, MetaValue)>,
    tensors: &'a [GgufTensor<'a>],
) -> Result<(GgufWriter, impl Iterator<Item = &'a [u8]>)> {
    let mut writer = GgufWriter::new(metadata)?;
    for t in tensors {
        writer.add_tensor(t.name, t.ty, t.ne)?;
    }
    Ok((writer, tensors.iter().map(|t| t.data)))
}

fn zeros(w: &mut impl Write, n: u64) -> std::io::Result<()> {
    std::io::copy(&mut std::io::Read::take(std::io::repeat(0), n), w).map(|_| ())
}

fn pad(buf: &mut Vec<u8>, alignment: u64) {
    let len = (buf.len() as u64).next_multiple_of(alignment);
    buf.resize(len as usize, 0);
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// GGUF's value type ids (`gguf_type`).
fn value_type(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::String(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

fn array_type(a: &MetaArray) -> u32 {
    match a {
        MetaArray::U8(_) => 0,
        MetaArray::I8(_) => 1,
        MetaArray::U16(_) => 2,
        MetaArray::I16(_) => 3,
        MetaArray::U32(_) => 4,
        MetaArray::I32(_) => 5,
        MetaArray::F32(_) => 6,
        MetaArray::Bool(_) => 7,
        MetaArray::String(_) => 8,
        MetaArray::Array(_) => 9,
        MetaArray::U64(_) => 10,
        MetaArray::I64(_) => 11,
        MetaArray::F64(_) => 12,
    }
}

fn put_value(buf: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I8(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I16(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::U32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F32(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::Bool(x) => buf.push(*x as u8),
        MetaValue::String(s) => put_str(buf, s),
        MetaValue::Array(a) => put_array(buf, a),
        MetaValue::U64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::I64(x) => buf.extend_from_slice(&x.to_le_bytes()),
        MetaValue::F64(x) => buf.extend_from_slice(&x.to_le_bytes()),
    }
}

/// An array: element type, count, elements (nested arrays carry their own type and count).
fn put_array(buf: &mut Vec<u8>, a: &MetaArray) {
    buf.extend_from_slice(&array_type(a).to_le_bytes());
    buf.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! each {
        ($v:expr) => {
            $v.iter().for_each(|x| buf.extend_from_slice(&x.to_le_bytes()))
        };
    }
    match a {
        MetaArray::U8(v) => buf.extend_from_slice(v),
        MetaArray::I8(v) => each!(v),
        MetaArray::U16(v) => each!(v),
        MetaArray::I16(v) => each!(v),
        MetaArray::U32(v) => each!(v),
        MetaArray::I32(v) => each!(v),
        MetaArray::F32(v) => each!(v),
        MetaArray::Bool(v) => buf.extend(v.iter().map(|&b| b as u8)),
        MetaArray::String(v) => v.iter().for_each(|s| put_str(buf, s)),
        MetaArray::Array(v) => v.iter().for_each(|inner| put_array(buf, inner)),
        MetaArray::U64(v) => each!(v),
        MetaArray::I64(v) => each!(v),
        MetaArray::F64(v) => each!(v),
    }
}
