//! The GGUF quantizer: rewrite a model with its weight matrices in a ggml block format,
//! keeping norms, biases and other 1-D tensors in F32 (as llama.cpp does), the metadata
//! unchanged except `general.file_type`, and the file written atomically.

use crate::error::{ModelError, Result};
use crate::gguf::{GgufFile, GgufWriter, MetaValue, TensorInfo};
use lamina_tensor::quant::{dequantize, quantize_row, GgmlType};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::Path;

/// Target formats `lamina quantize` writes (the K-quants need their own quantizers).
pub const TARGETS: [GgmlType; 6] =
    [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::F16];

/// llama.cpp's `general.file_type` (LLAMA_FTYPE_MOSTLY_*) for a target.
fn file_type(t: GgmlType) -> u32 {
    match t {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        _ => 0,
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizeReport {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub params: u64,
    pub quantized_tensors: usize,
    pub kept_tensors: usize,
}

impl QuantizeReport {
    /// Bits per weight of the tensor data (headers excluded).
    pub fn bits_per_weight(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / self.params.max(1) as f64
    }
}

/// The type a tensor gets: matrices named `*.weight` (not norms) whose rows are whole
/// blocks take the target; everything else is F32.
fn choose(info: &TensorInfo, target: GgmlType) -> GgmlType {
    let matrix = info.ne.len() == 2 && info.name.ends_with(".weight") && !info.name.contains("norm");
    if matrix && info.ne[0].is_multiple_of(target.block_size() as u64) {
        target
    } else {
        GgmlType::F32
    }
}

/// Quantize `input` to `target` into `out`. Tensors already quantized in another format
/// are refused unless `allow_requantize` (rounding twice loses more than once, as
/// llama.cpp warns). `progress(done, total)` is called after each tensor.
pub fn quantize_gguf(
    input: &GgufFile,
    out: &Path,
    target: GgmlType,
    allow_requantize: bool,
    mut progress: impl FnMut(usize, usize),
) -> Result<QuantizeReport> {
    if !TARGETS.contains(&target) {
        let names: Vec<&str> = TARGETS.iter().map(|t| t.name()).collect();
        return Err(ModelError::Unsupported(format!("quantizing to {target} (supported: {})", names.join(", "))));
    }
    let float = [GgmlType::F32, GgmlType::F16, GgmlType::BF16];
    let mut metadata: Vec<(String, MetaValue)> =
        input.metadata_in_order().map(|(k, v)| (k.to_string(), v.clone())).collect();
    for (key, value) in [("general.file_type", file_type(target)), ("general.quantization_version", 2)] {
        match metadata.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = MetaValue::U32(value),
            None => metadata.push((key.to_string(), MetaValue::U32(value))),
        }
    }
    let mut writer = GgufWriter::new(metadata)?;
    let mut report = QuantizeReport { bytes_in: 0, bytes_out: 0, params: 0, quantized_tensors: 0, kept_tensors: 0 };
    for info in &input.tensors {
        let ty = choose(info, target);
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
        report.bytes_in += info.n_bytes;
        report.bytes_out += t.n_bytes;
        report.params += info.n_elements();
        if ty == GgmlType::F32 {
            report.kept_tensors += 1;
        } else {
            report.quantized_tensors += 1;
        }
    }
    let total = input.tensors.len();
    let mut done = 0;
    writer.write_file(out, |t| {
        let info = input.tensor_info(&t.name).expect("the table was built from the input");
        let bytes = convert(input, info, t.ty)?;
        done += 1;
        progress(done, total);
        Ok(bytes)
    })?;
    Ok(report)
}

/// One tensor's bytes as `ty`: copied when the type does not change, else decoded to f32
/// and encoded again, rows in parallel.
fn convert<'a>(input: &'a GgufFile, info: &TensorInfo, ty: GgmlType) -> Result<Cow<'a, [u8]>> {
    let src = input.tensor_bytes(info);
    if info.ty == ty {
        return Ok(Cow::Borrowed(src));
    }
    let n = info.n_elements() as usize;
    let values = dequantize(info.ty, src, n)?;
    let row = info.ne[0] as usize;
    let row_bytes = ty.row_bytes(row as u64).expect("checked by add_tensor") as usize;
    let mut out = vec![0u8; n / row.max(1) * row_bytes];
    if row > 0 {
        lamina_tensor::cpu::parallel::install(|| {
            out.par_chunks_mut(row_bytes).zip(values.par_chunks(row)).try_for_each(|(o, x)| quantize_row(ty, x, o))
        })?;
    }
    Ok(Cow::Owned(out))
}
