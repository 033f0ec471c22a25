//! A GGUF file rewritten with some tensors replaced: how merged LoRA weights and fully
//! fine-tuned models are written back. Metadata and every other tensor are copied as they
//! are (no re-rounding); each replaced tensor is encoded in the type `encode_as` picks.
//! Every tensor written is checked finite (a NaN or overflowing adapter is an error).
//! The write is streamed and atomic (see `GgufWriter::write_file`).

use super::{GgufFile, GgufWriter, MetaValue, TensorInfo};
use crate::error::{ModelError, Result};
use crate::quantize::{check_finite, encode_rows};
use lamina_tensor::quant::GgmlType;
use lamina_tensor::{Device, Tensor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// Write `src` to `out` with the tensors in `replace` (by GGUF name, in PyTorch's shape
/// order: (out, in) for a matrix) substituted. `encode_as(info)` gives the type for a
/// replaced tensor (its row length must hold whole blocks of it).
pub fn write_with_replacements(
    src: &GgufFile,
    out: &Path,
    replace: &BTreeMap<String, Tensor>,
    encode_as: impl Fn(&TensorInfo) -> GgmlType,
    mut progress: impl FnMut(usize, usize),
) -> Result<()> {
    for name in replace.keys() {
        if src.tensor_info(name).is_none() {
            return Err(ModelError::Invalid(format!("cannot replace `{name}`: the file has no such tensor")));
        }
    }
    let metadata: Vec<(String, MetaValue)> = src.metadata_in_order().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let mut writer = GgufWriter::new(metadata)?;
    for info in &src.tensors {
        let ty = if replace.contains_key(&info.name) { encode_as(info) } else { info.ty };
        if let Some(t) = replace.get(&info.name) {
            // GGUF lists dims innermost first; PyTorch outermost first.
            let want: Vec<usize> = info.ne.iter().rev().map(|&d| d as usize).collect();
            if t.shape() != want.as_slice() {
                return Err(ModelError::Invalid(format!(
                    "replacement for `{}` has shape {:?}, the file's is {want:?}",
                    info.name,
                    t.shape()
                )));
            }
            if ty.row_bytes(info.ne[0]).is_none() {
                return Err(ModelError::Invalid(format!(
                    "`{}` rows of {} do not hold whole {ty} blocks of {}",
                    info.name,
                    info.ne[0],
                    ty.block_size()
                )));
            }
        }
        writer.add_tensor(&info.name, ty, &info.ne)?;
    }
    let total = src.tensors.len();
    let mut done = 0;
    writer.write_file(out, |t| {
        let bytes = match replace.get(&t.name) {
            None => {
                let bytes = src.tensor_bytes(src.tensor_info(&t.name).expect("listed from src"));
                check_finite(&t.name, t.ty, bytes, t.n_elements() as usize)?;
                Cow::Borrowed(bytes)
            }
            Some(x) => {
                Cow::Owned(encode_rows(&t.name, &x.to_device(Device::Cpu)?.to_vec_f32()?, t.ne[0] as usize, t.ty)?)
            }
        };
        done += 1;
        progress(done, total);
        Ok(bytes)
    })
}
