//! The GGUF quantizer: rewrite a model (a GGUF file, or a Hugging Face directory through
//! `crate::convert`) with its weight matrices in ggml block formats, chosen per tensor by
//! the target (`target.rs`, `plan.rs`); vectors and norms F32 (as llama.cpp does); the
//! metadata carried over with `general.file_type` set; the file streamed one tensor at a
//! time and written atomically.

mod encode;
mod plan;
mod source;
mod target;

pub(crate) use encode::{check_finite, encode_rows};

pub use plan::{plan, ModelShape};
pub use source::{model_shape, Source, SourceTensor};
pub use target::{Mix, Target, TARGETS};

use crate::error::{ModelError, Result};
use crate::gguf::{GgufWriter, MetaValue};
use lamina_tensor::quant::{dequantize, GgmlType};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeReport {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub params: u64,
    pub quantized_tensors: usize,
    pub kept_tensors: usize,
    /// How many tensors each output type got.
    pub types: BTreeMap<String, usize>,
}

impl QuantizeReport {
    /// Bits per weight of the tensor data (headers excluded).
    pub fn bits_per_weight(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / self.params.max(1) as f64
    }
}

/// The output type of each of `input`'s tensors for `target`.
pub fn tensor_types(input: &dyn Source, target: &Target) -> Vec<GgmlType> {
    types_for(&input.metadata(), &input.tensors(), target)
}

fn types_for(metadata: &[(String, MetaValue)], tensors: &[SourceTensor], target: &Target) -> Vec<GgmlType> {
    let named: Vec<(&str, &[u64])> = tensors.iter().map(|t| (t.name.as_str(), t.ne.as_slice())).collect();
    plan(target, &named, &model_shape(metadata, tensors))
}

/// Quantize `input` to `target` into `out`. Tensors already quantized in another format
/// are refused unless `allow_requantize` (rounding twice loses more than once, as
/// llama.cpp warns). `progress(done, total)` is called after each tensor.
pub fn quantize_model(
    input: &dyn Source,
    out: &Path,
    target: &Target,
    allow_requantize: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<QuantizeReport> {
    let float = [GgmlType::F32, GgmlType::F16, GgmlType::BF16];
    let mut metadata = input.metadata();
    for (key, value) in [("general.quantization_version", 2), ("general.file_type", target.file_type)] {
        match metadata.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = MetaValue::U32(value),
            None => metadata.push((key.to_string(), MetaValue::U32(value))),
        }
    }
    let tensors = input.tensors();
    let types = types_for(&metadata, &tensors, target);
    let mut writer = GgufWriter::new(metadata)?;
    let mut report = QuantizeReport {
        bytes_in: 0,
        bytes_out: 0,
        params: 0,
        quantized_tensors: 0,
        kept_tensors: 0,
        types: BTreeMap::new(),
    };
    for (info, &ty) in tensors.iter().zip(&types) {
        if !float.contains(&info.ty) && info.ty != ty && !allow_requantize {
            return Err(ModelError::Invalid(format!(
                "tensor `{}` is already {}: requantizing it to {ty} rounds twice (pass --allow-requantize to do it anyway)",
                info.name, info.ty
            )));
        }
        if !info.ty.can_dequantize() {
            return Err(ModelError::Unsupported(format!("tensor `{}` has type {}", info.name, info.ty)));
        }
        let t = writer.add_tensor(&info.name, ty, &info.ne)?;
        report.bytes_in += info.n_bytes().unwrap_or(0);
        report.bytes_out += t.n_bytes;
        report.params += info.n_elements();
        *report.types.entry(ty.name().to_string()).or_default() += 1;
        if ty == GgmlType::F32 {
            report.kept_tensors += 1;
        } else {
            report.quantized_tensors += 1;
        }
    }
    let total = tensors.len();
    let mut done = 0;
    writer.write_file(out, |t| {
        let i = done;
        debug_assert_eq!(t.name, tensors[i].name, "the writer keeps the table order");
        let bytes = convert(input.tensor_bytes(i)?, &tensors[i], t.ty)?;
        done += 1;
        progress(done, total);
        Ok(bytes)
    })?;
    Ok(report)
}

/// One tensor's bytes as `ty`: passed through when the type does not change, else decoded
/// to f32 and encoded again, rows in parallel. Either way checked finite.
fn convert<'a>(src: Cow<'a, [u8]>, info: &SourceTensor, ty: GgmlType) -> Result<Cow<'a, [u8]>> {
    let n = info.n_elements() as usize;
    if info.ty == ty {
        check_finite(&info.name, ty, &src, n)?;
        return Ok(src);
    }
    let values = dequantize(info.ty, &src, n)?;
    drop(src);
    Ok(Cow::Owned(encode_rows(&info.name, &values, info.ne[0] as usize, ty)?))
}
