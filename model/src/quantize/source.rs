//! What the quantizer reads: GGUF metadata and tensors (GGUF names and dimensions), from
//! a GGUF file or from a Hugging Face directory converted on the fly (`crate::convert`).

use super::plan::ModelShape;
use crate::error::Result;
use crate::gguf::{GgufFile, MetaValue};
use lamina_tensor::quant::GgmlType;
use std::borrow::Cow;

/// One input tensor: its GGUF name, dimensions (`ne[0]` is the row length) and storage type.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceTensor {
    pub name: String,
    pub ne: Vec<u64>,
    pub ty: GgmlType,
}

impl SourceTensor {
    pub fn n_elements(&self) -> u64 {
        self.ne.iter().product()
    }

    /// Bytes of the data in `ty` (`None` when the dimensions overflow or are not whole blocks).
    pub fn n_bytes(&self) -> Option<u64> {
        self.ne.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).and_then(|n| self.ty.row_bytes(n))
    }
}

/// A model to quantize.
pub trait Source: Sync {
    /// The GGUF metadata, in the order to write it.
    fn metadata(&self) -> Vec<(String, MetaValue)>;
    /// The tensors, in the order to write them.
    fn tensors(&self) -> Vec<SourceTensor>;
    /// The bytes of tensor `i` (of `tensors()`), stored as its `ty`.
    fn tensor_bytes(&self, i: usize) -> Result<Cow<'_, [u8]>>;
}

impl Source for GgufFile {
    fn metadata(&self) -> Vec<(String, MetaValue)> {
        self.metadata_in_order().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    fn tensors(&self) -> Vec<SourceTensor> {
        self.tensors.iter().map(|t| SourceTensor { name: t.name.clone(), ne: t.ne.clone(), ty: t.ty }).collect()
    }

    fn tensor_bytes(&self, i: usize) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(GgufFile::tensor_bytes(self, &self.tensors[i])))
    }
}

/// The hyperparameters the mixes need, from `<arch>.*` metadata (the layer count from
/// the tensor names when the key is missing).
pub fn model_shape(metadata: &[(String, MetaValue)], tensors: &[SourceTensor]) -> ModelShape {
    let get = |key: &str| metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let arch = get("general.architecture").and_then(|v| v.as_str()).unwrap_or("").to_string();
    let num = |k: &str| get(&format!("{arch}.{k}")).and_then(|v| v.as_u64()).map(|v| v as usize);
    let layers_named = tensors
        .iter()
        .filter_map(|t| t.name.strip_prefix("blk.")?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |l| l + 1);
    let n_head = num("attention.head_count").unwrap_or(0);
    ModelShape {
        n_layer: num("block_count").unwrap_or(layers_named),
        n_head,
        n_head_kv: num("attention.head_count_kv").unwrap_or(n_head),
        arch,
    }
}
