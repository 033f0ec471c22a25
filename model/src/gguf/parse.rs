//! The GGUF header parser: a bounds-checked cursor over the file's bytes.

use super::{MetaArray, MetaValue, TensorInfo};
use crate::error::{format_err, ModelError, Result};
use lamina_tensor::quant::GgmlType;
use std::collections::BTreeMap;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;
/// Arrays of arrays are legal; deeper nesting than this is not seen in real files.
const MAX_ARRAY_DEPTH: usize = 4;

/// What the header says: metadata, the tensor table and where the data starts.
pub struct Header {
    pub version: u32,
    pub metadata: BTreeMap<String, MetaValue>,
    /// The metadata keys in file order (GGUF keeps insertion order; the map does not).
    pub key_order: Vec<String>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    pub data_offset: u64,
}

/// Reads the header front to back. `reserved` is the least number of bytes that the items
/// still due in the enclosing counted lists (tensors, key/values, array elements) will
/// take: a count or a string length is checked against the bytes not so promised, so the
/// memory reserved for every list at once stays proportional to the file's size.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    reserved: u64,
}

fn bad(msg: impl Into<String>) -> ModelError {
    format_err("GGUF", msg)
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    /// Bytes left that no pending list item has a claim on.
    fn unreserved(&self) -> u64 {
        self.remaining().saturating_sub(self.reserved)
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(bad(format!(
                "truncated at byte {}: {what} needs {n} bytes, {} remain",
                self.pos,
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        Ok(self.take(N as u64, what)?.try_into().expect("take returned N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        if len > self.unreserved() {
            return Err(bad(format!(
                "truncated at byte {}: {what} of {len} bytes, {} remain",
                self.pos,
                self.unreserved()
            )));
        }
        let bytes = self.take(len, what)?;
        // llama.cpp does not validate UTF-8 either; a stray byte should not make a model unloadable.
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// A count of items that take at least `min_size` bytes each: refuse counts the rest
    /// of the file cannot hold before allocating for them, and reserve their bytes.
    fn count(&mut self, min_size: u64, what: &str) -> Result<usize> {
        let n = self.u64(what)?;
        if n.saturating_mul(min_size) > self.unreserved() {
            return Err(bad(format!(
                "{what} is {n}, more than the {} bytes left in the file can hold",
                self.unreserved()
            )));
        }
        self.reserved += n * min_size;
        Ok(n as usize)
    }

    /// Start reading one of the items `count` reserved `min_size` bytes for.
    fn next_item(&mut self, min_size: u64) {
        self.reserved -= min_size;
    }

    /// `n` items of at least `min_size` bytes each, counted by `count`.
    fn items<T>(&mut self, n: usize, min_size: u64, mut item: impl FnMut(&mut Self) -> Result<T>) -> Result<Vec<T>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            self.next_item(min_size);
            v.push(item(self)?);
        }
        Ok(v)
    }

    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<MetaValue> {
        Ok(match ty {
            0 => MetaValue::U8(u8::from_le_bytes(self.array(key)?)),
            1 => MetaValue::I8(i8::from_le_bytes(self.array(key)?)),
            2 => MetaValue::U16(u16::from_le_bytes(self.array(key)?)),
            3 => MetaValue::I16(i16::from_le_bytes(self.array(key)?)),
            4 => MetaValue::U32(self.u32(key)?),
            5 => MetaValue::I32(i32::from_le_bytes(self.array(key)?)),
            6 => MetaValue::F32(f32::from_le_bytes(self.array(key)?)),
            7 => MetaValue::Bool(self.bool(key)?),
            8 => MetaValue::String(self.string(key)?),
            9 => MetaValue::Array(self.meta_array(key, depth)?),
            10 => MetaValue::U64(self.u64(key)?),
            11 => MetaValue::I64(i64::from_le_bytes(self.array(key)?)),
            12 => MetaValue::F64(f64::from_le_bytes(self.array(key)?)),
            _ => return Err(bad(format!("metadata `{key}` has unknown value type {ty}"))),
        })
    }

    fn bool(&mut self, key: &str) -> Result<bool> {
        match self.array::<1>(key)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(bad(format!("metadata `{key}`: {b} is not a bool"))),
        }
    }

    fn meta_array(&mut self, key: &str, depth: usize) -> Result<MetaArray> {
        if depth >= MAX_ARRAY_DEPTH {
            return Err(bad(format!("metadata `{key}`: arrays nested deeper than {MAX_ARRAY_DEPTH}")));
        }
        let ty = self.u32(key)?;
        let what = format!("length of array `{key}`");
        macro_rules! fixed {
            ($variant:ident, $t:ty) => {{
                let size = std::mem::size_of::<$t>() as u64;
                let n = self.count(size, &what)?;
                self.next_item(n as u64 * size);
                let bytes = self.take(n as u64 * size, key)?;
                MetaArray::$variant(
                    bytes
                        .chunks_exact(std::mem::size_of::<$t>())
                        .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()))
                        .collect(),
                )
            }};
        }
        Ok(match ty {
            0 => fixed!(U8, u8),
            1 => fixed!(I8, i8),
            2 => fixed!(U16, u16),
            3 => fixed!(I16, i16),
            4 => fixed!(U32, u32),
            5 => fixed!(I32, i32),
            6 => fixed!(F32, f32),
            7 => {
                let n = self.count(1, &what)?;
                MetaArray::Bool(self.items(n, 1, |c| c.bool(key))?)
            }
            8 => {
                let n = self.count(8, &what)?;
                MetaArray::String(self.items(n, 8, |c| c.string(key))?)
            }
            9 => {
                let n = self.count(12, &what)?;
                MetaArray::Array(self.items(n, 12, |c| c.meta_array(key, depth + 1))?)
            }
            10 => fixed!(U64, u64),
            11 => fixed!(I64, i64),
            12 => fixed!(F64, f64),
            _ => return Err(bad(format!("array `{key}` has unknown element type {ty}"))),
        })
    }
}

/// Parse the header of a GGUF image and check every tensor against the file's size.
pub fn parse(buf: &[u8]) -> Result<Header> {
    let mut c = Cursor { buf, pos: 0, reserved: 0 };
    if c.take(4, "magic").ok() != Some(MAGIC.as_slice()) {
        return Err(bad("not a GGUF file (the magic bytes `GGUF` are missing)"));
    }
    let version = c.u32("version")?;
    if version == 1 {
        return Err(ModelError::Unsupported("GGUF version 1 (convert the file with a current llama.cpp)".into()));
    }
    if !(2..=3).contains(&version) {
        return Err(ModelError::Unsupported(format!("GGUF version {version} (this build reads versions 2 and 3)")));
    }
    // Smallest tensor info: name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
    let n_tensors = c.count(32, "tensor count")?;
    // Smallest key/value: key length (8) + value type (4) + a one-byte value.
    let n_kv = c.count(13, "metadata count")?;

    let mut metadata = BTreeMap::new();
    let mut key_order = Vec::with_capacity(n_kv);
    for _ in 0..n_kv {
        c.next_item(13);
        let key = c.string("metadata key")?;
        let ty = c.u32("metadata value type")?;
        let value = c.value(ty, &key, 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(bad(format!("metadata key `{key}` appears twice")));
        }
        key_order.push(key);
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() => a,
            _ => return Err(bad(format!("general.alignment must be a power of two, got {}", v.summary()))),
        },
    };

    let mut tensors = Vec::with_capacity(n_tensors);
    let mut names = std::collections::HashSet::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        c.next_item(32);
        let name = c.string("tensor name")?;
        let n_dims = c.u32("tensor rank")?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(bad(format!("tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")));
        }
        let ne = (0..n_dims).map(|_| c.u64("tensor dimension")).collect::<Result<Vec<u64>>>()?;
        let ty_id = c.u32("tensor type")?;
        let offset = c.u64("tensor offset")?;
        let ty = GgmlType::from_id(ty_id)
            .ok_or_else(|| ModelError::Unsupported(format!("tensor `{name}` has unknown ggml type id {ty_id}")))?;
        let n_elements = ne
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| bad(format!("tensor `{name}`: dimensions {ne:?} overflow")))?;
        if !ne[0].is_multiple_of(ty.block_size() as u64) {
            return Err(bad(format!(
                "tensor `{name}`: row length {} is not a multiple of the {ty} block size {}",
                ne[0],
                ty.block_size()
            )));
        }
        let n_bytes = ty.row_bytes(n_elements).ok_or_else(|| bad(format!("tensor `{name}`: byte size overflows")))?;
        if offset % alignment != 0 {
            return Err(bad(format!("tensor `{name}`: offset {offset} is not aligned to {alignment}")));
        }
        if !names.insert(name.clone()) {
            return Err(bad(format!("tensor `{name}` appears twice")));
        }
        tensors.push(TensorInfo { name, ne, ty, offset, n_bytes });
    }

    let data_offset = (c.pos as u64).div_ceil(alignment) * alignment;
    let file_len = buf.len() as u64;
    for t in &tensors {
        let end = data_offset.checked_add(t.offset).and_then(|s| s.checked_add(t.n_bytes));
        if end.is_none_or(|e| e > file_len) {
            return Err(bad(format!(
                "tensor `{}` ({} bytes at data offset {}) runs past the end of the file ({file_len} bytes): \
                 the file is truncated or corrupt",
                t.name, t.n_bytes, t.offset
            )));
        }
    }
    Ok(Header { version, metadata, key_order, tensors, alignment, data_offset })
}
