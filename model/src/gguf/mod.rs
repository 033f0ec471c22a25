//! GGUF (v2 and v3) reader. The file is memory-mapped; metadata is parsed into owned
//! values and tensor data stays in the map until a tensor is materialised.
//!
//! Every length, count and offset is checked against the bytes that remain before
//! anything is allocated, so truncated or hostile files give an error, never a panic or
//! an allocation larger than (a small multiple of) the file.

mod parse;
mod rewrite;
mod value;
mod write;

use crate::error::{format_err, ModelError, Result};
use crate::file_bytes::FileBytes;
use lamina_tensor::quant::{dequantize, GgmlType};
use lamina_tensor::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

pub use parse::{parse, Header};
pub use rewrite::write_with_replacements;
pub use value::{MetaArray, MetaValue};
pub use write::{to_bytes, write_gguf, GgufTensor, GgufWriter};

/// One tensor's entry in the file's tensor table.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions as GGUF lists them: `ne[0]` first, the contiguous (row) length.
    pub ne: Vec<u64>,
    pub ty: GgmlType,
    /// Offset from the start of the data section (already checked against the file).
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.ne.iter().product()
    }

    /// The shape in row-major order (outermost first): GGUF's `ne` reversed. A weight
    /// with ne = [in, out] is an (out, in) matrix.
    pub fn shape(&self) -> Vec<usize> {
        self.ne.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file.
pub struct GgufFile {
    pub version: u32,
    pub metadata: BTreeMap<String, MetaValue>,
    /// The metadata keys in file order.
    pub key_order: Vec<String>,
    pub tensors: Vec<TensorInfo>,
    pub alignment: u64,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    bytes: Arc<FileBytes>,
}

impl GgufFile {
    /// Open and parse `path` (memory-mapped).
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile> {
        Self::from_bytes_inner(FileBytes::map(path.as_ref())?)
    }

    /// Parse a GGUF image held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<GgufFile> {
        Self::from_bytes_inner(FileBytes::Owned(bytes))
    }

    fn from_bytes_inner(bytes: FileBytes) -> Result<GgufFile> {
        let header = parse(&bytes)?;
        Ok(GgufFile {
            version: header.version,
            metadata: header.metadata,
            key_order: header.key_order,
            tensors: header.tensors,
            alignment: header.alignment,
            data_offset: header.data_offset,
            bytes: Arc::new(bytes),
        })
    }

    pub fn file_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The metadata in file order.
    pub fn metadata_in_order(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.key_order.iter().map(|k| (k.as_str(), &self.metadata[k]))
    }

    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.metadata.get(key)
    }

    /// `general.architecture`, which prefixes the hyperparameter keys.
    pub fn architecture(&self) -> Result<&str> {
        self.get_str("general.architecture")
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.require(key)?.as_str().ok_or_else(|| wrong_type(key, "a string"))
    }

    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.require(key)?.as_u64().ok_or_else(|| wrong_type(key, "a non-negative integer"))
    }

    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.require(key)?.as_f64().ok_or_else(|| wrong_type(key, "a number"))
    }

    pub fn get_array(&self, key: &str) -> Result<&MetaArray> {
        self.require(key)?.as_array().ok_or_else(|| wrong_type(key, "an array"))
    }

    fn require(&self, key: &str) -> Result<&MetaValue> {
        self.metadata.get(key).ok_or_else(|| ModelError::Missing(format!("GGUF metadata key `{key}` is missing")))
    }

    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw bytes of a tensor, straight from the map.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> &[u8] {
        // Bounds were checked at parse time.
        let start = (self.data_offset + info.offset) as usize;
        &self.bytes[start..start + info.n_bytes as usize]
    }

    /// A quantized 2-D tensor as a `QMatrix` over the file's bytes (no copy: the matrix
    /// keeps the memory map alive).
    pub fn qmatrix(&self, info: &TensorInfo) -> Result<lamina_tensor::quant::QMatrix> {
        let shape = info.shape();
        if shape.len() != 2 {
            return Err(ModelError::Unsupported(format!("tensor `{}` is not a matrix: {shape:?}", info.name)));
        }
        let start = (self.data_offset + info.offset) as usize;
        let owner: lamina_tensor::quant::SharedBytes = self.bytes.clone();
        let range = start..start + info.n_bytes as usize;
        Ok(lamina_tensor::quant::QMatrix::from_shared(info.ty, shape[0], shape[1], owner, range)?)
    }

    /// Tensor `name` as f32 (dequantized when stored quantized), in row-major shape.
    pub fn tensor_f32(&self, name: &str) -> Result<Tensor> {
        let info =
            self.tensor_info(name).ok_or_else(|| ModelError::Missing(format!("tensor `{name}` is not in the file")))?;
        self.load(info, DType::F32)
    }

    /// Materialise a tensor as `dtype` (f32, f16 or bf16).
    pub fn load(&self, info: &TensorInfo, dtype: DType) -> Result<Tensor> {
        if !info.ty.can_dequantize() {
            return Err(ModelError::Unsupported(format!(
                "tensor `{}` has type {}, which this build cannot load yet",
                info.name, info.ty
            )));
        }
        let n = info.n_elements() as usize;
        let values = dequantize(info.ty, self.tensor_bytes(info), n)?;
        Ok(Tensor::from_f32s(values, &info.shape(), dtype)?)
    }
}

fn wrong_type(key: &str, want: &str) -> ModelError {
    format_err("GGUF", format!("metadata key `{key}` should be {want}"))
}
