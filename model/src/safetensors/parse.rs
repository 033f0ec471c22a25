//! The safetensors header: an 8-byte little-endian length, then that many bytes of JSON
//! mapping tensor names to `{dtype, shape, data_offsets}` (plus an optional string map
//! `__metadata__`), then the data. Every length, shape and offset is checked against the
//! file before it is trusted, and the JSON is read straight into the tensor table (no
//! generic JSON tree, whose nodes would be many times the size of the text).

use crate::error::{format_err, ModelError, Result};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// The reference implementation's limit; real headers are a few hundred kilobytes.
const MAX_HEADER: u64 = 100_000_000;
/// No framework writes tensors of more dimensions than this.
const MAX_DIMS: usize = 8;

fn bad(msg: impl Into<String>) -> ModelError {
    format_err("safetensors", msg)
}

/// The element types safetensors defines (sizes in bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SafeDtype {
    Bool,
    U8,
    I8,
    F8E4M3,
    F8E5M2,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl SafeDtype {
    const ALL: [SafeDtype; 15] = {
        use SafeDtype::*;
        [Bool, U8, I8, F8E4M3, F8E5M2, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64]
    };

    pub fn from_name(name: &str) -> Option<SafeDtype> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The name as written in the header.
    pub fn name(self) -> &'static str {
        use SafeDtype::*;
        match self {
            Bool => "BOOL",
            U8 => "U8",
            I8 => "I8",
            F8E4M3 => "F8_E4M3",
            F8E5M2 => "F8_E5M2",
            I16 => "I16",
            U16 => "U16",
            F16 => "F16",
            BF16 => "BF16",
            I32 => "I32",
            U32 => "U32",
            F32 => "F32",
            F64 => "F64",
            I64 => "I64",
            U64 => "U64",
        }
    }

    pub fn size(self) -> usize {
        use SafeDtype::*;
        match self {
            Bool | U8 | I8 | F8E4M3 | F8E5M2 => 1,
            I16 | U16 | F16 | BF16 => 2,
            I32 | U32 | F32 => 4,
            F64 | I64 | U64 => 8,
        }
    }
}

impl fmt::Display for SafeDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor's entry in the header.
#[derive(Clone, Debug, PartialEq)]
pub struct SafeTensorInfo {
    pub name: String,
    pub dtype: SafeDtype,
    /// Row-major, outermost first (as PyTorch stores it).
    pub shape: Vec<usize>,
    /// Byte range within the data section: `begin..end`.
    pub begin: u64,
    pub end: u64,
}

impl SafeTensorInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn n_bytes(&self) -> u64 {
        self.end - self.begin
    }
}

/// A parsed header: metadata, tensors in the order of their data, and where data starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    pub metadata: BTreeMap<String, String>,
    pub tensors: Vec<SafeTensorInfo>,
    /// Absolute offset of the data section (8 + header length).
    pub data_offset: u64,
}

/// Parse and check the header of a safetensors image.
pub fn parse(buf: &[u8]) -> Result<Header> {
    let Some(len_bytes) = buf.get(..8) else {
        return Err(bad(format!("truncated: {} bytes, too short for the 8-byte header length", buf.len())));
    };
    let n = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
    let after = buf.len() as u64 - 8;
    if n > after {
        return Err(bad(format!("header length {n} is more than the {after} bytes after it: truncated or corrupt")));
    }
    if n > MAX_HEADER {
        return Err(bad(format!("header length {n} is over the {MAX_HEADER}-byte limit")));
    }
    let json = &buf[8..8 + n as usize];
    if json.first() != Some(&b'{') {
        return Err(bad("the header is not a JSON object"));
    }
    let raw: RawHeader = serde_json::from_slice(json).map_err(|e| bad(format!("header JSON: {e}")))?;
    let mut tensors = raw.tensors.map_err(|e| e.into_error())?;
    let data_len = after - n;

    // Duplicate names (JSON allows them; a map would silently keep one).
    tensors.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = tensors.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(bad(format!("tensor `{}` appears twice", w[0].name)));
    }
    for t in &tensors {
        if t.end > data_len {
            return Err(bad(format!(
                "tensor `{}` (bytes {}..{}) runs past the end of the {data_len}-byte data section: truncated or corrupt",
                t.name, t.begin, t.end
            )));
        }
    }
    // Overlapping data: two tensors sharing bytes is how a crafted file aliases memory.
    tensors.sort_unstable_by(|a, b| (a.begin, a.end, &a.name).cmp(&(b.begin, b.end, &b.name)));
    let mut prev: Option<&SafeTensorInfo> = None;
    for t in tensors.iter().filter(|t| t.begin < t.end) {
        if let Some(p) = prev.filter(|p| p.end > t.begin) {
            return Err(bad(format!("tensors `{}` and `{}` overlap", p.name, t.name)));
        }
        prev = Some(t);
    }
    Ok(Header { metadata: raw.metadata.unwrap_or_default(), tensors, data_offset: 8 + n })
}

/// A problem found while reading an entry, reported after the JSON is read so that
/// unsupported dtypes keep their own error kind.
enum EntryError {
    Format(String),
    Unsupported(String),
}

impl EntryError {
    fn into_error(self) -> ModelError {
        match self {
            EntryError::Format(m) => bad(m),
            EntryError::Unsupported(m) => ModelError::Unsupported(m),
        }
    }
}

struct RawHeader {
    metadata: Option<BTreeMap<String, String>>,
    tensors: std::result::Result<Vec<SafeTensorInfo>, EntryError>,
}

#[derive(Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Shape,
    data_offsets: (u64, u64),
}

/// Check one entry and turn it into a tensor info.
fn entry(name: String, e: RawEntry) -> std::result::Result<SafeTensorInfo, EntryError> {
    let dtype = SafeDtype::from_name(&e.dtype).ok_or_else(|| {
        EntryError::Unsupported(format!(
            "safetensors tensor `{name}` has dtype `{}`, which this build does not know",
            e.dtype
        ))
    })?;
    let numel = e.shape.0.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let size = numel.and_then(|n| n.checked_mul(dtype.size() as u64)).filter(|&s| s <= i64::MAX as u64);
    let Some(size) = size else {
        return Err(EntryError::Format(format!("tensor `{name}`: shape {:?} overflows", e.shape.0)));
    };
    let (begin, end) = e.data_offsets;
    if begin > end {
        return Err(EntryError::Format(format!(
            "tensor `{name}`: data_offsets [{begin}, {end}] end before they begin"
        )));
    }
    if end - begin != size {
        return Err(EntryError::Format(format!(
            "tensor `{name}`: {dtype} of shape {:?} needs {size} bytes, data_offsets [{begin}, {end}] hold {}",
            e.shape.0,
            end - begin
        )));
    }
    let shape = e.shape.0.iter().map(|&d| d as usize).collect();
    Ok(SafeTensorInfo { name, dtype, shape, begin, end })
}

impl<'de> Deserialize<'de> for RawHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of tensor names to {dtype, shape, data_offsets}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<RawHeader, A::Error> {
                let mut metadata = None;
                let mut tensors = Ok(Vec::new());
                while let Some(key) = map.next_key::<String>()? {
                    if key == "__metadata__" {
                        if metadata.is_some() {
                            return Err(de::Error::custom("`__metadata__` appears twice"));
                        }
                        metadata = Some(map.next_value()?);
                        continue;
                    }
                    let raw: RawEntry = map.next_value()?;
                    // Keep reading after a bad entry: a JSON syntax error later in the header is reported first.
                    if let Ok(v) = &mut tensors {
                        match entry(key, raw) {
                            Ok(info) => v.push(info),
                            Err(e) => tensors = Err(e),
                        }
                    }
                }
                Ok(RawHeader { metadata, tensors })
            }
        }
        d.deserialize_map(V)
    }
}

/// A shape, refused past `MAX_DIMS` while it is read (a shape of a million zeros would
/// otherwise cost 8 bytes of memory for every 2 bytes of header).
struct Shape(Vec<u64>);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Shape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of at most {MAX_DIMS} dimensions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Shape, A::Error> {
                let mut dims = Vec::new();
                while let Some(d) = seq.next_element::<u64>()? {
                    if dims.len() == MAX_DIMS {
                        return Err(de::Error::custom(format!("shape has more than {MAX_DIMS} dimensions")));
                    }
                    dims.push(d);
                }
                Ok(Shape(dims))
            }
        }
        d.deserialize_seq(V)
    }
}
