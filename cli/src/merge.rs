//! `lamina merge --adapter DIR OUT.gguf`: fold a LoRA or IA³ adapter into its base model
//! (W + s B A, or W's rows or columns scaled by the IA³ vector, in f32; quantized bases
//! dequantized first) and write a GGUF that needs no adapter: the merged matrices in the
//! base's own format (re-quantized), or F16/F32, or a chosen block format; every other
//! tensor and all metadata copied unchanged. Atomic.

use crate::llm::{model_path, CliResult};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lamina_model::gguf::{write_with_replacements, GgufFile};
use lamina_model::{Llama, LoadOptions};
use lamina_tensor::quant::GgmlType;
use lamina_tensor::Device;
use std::path::PathBuf;

/// Formats the merged matrices can be written in.
const ENCODABLE: [GgmlType; 7] =
    [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1];

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The base GGUF the adapter was trained on (default: SmolLM2-135M-Instruct).
    #[arg(long, short = 'm', value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// The adapter directory (PEFT layout: LoRA or IA3).
    #[arg(long = "adapter", visible_alias = "lora", value_name = "DIR")]
    pub lora: PathBuf,
    /// The merged GGUF to write (a temporary file, then renamed; a symbolic link is followed
    /// and the file it points to replaced; anything else that is not a regular file is refused).
    pub output: PathBuf,
    /// Format of the merged matrices: `same` (the base's, re-quantized), f16, f32, q8_0,
    /// q4_0, q4_1, q5_0, q5_1.
    #[arg(long = "type", short = 't', default_value = "same")]
    pub ty: String,
}

pub fn run(args: MergeArgs) -> CliResult {
    let path = model_path(&args.model)?;
    crate::llm::check_output(&args.output, &[&path, &args.lora])?;
    let chosen = match args.ty.to_lowercase().as_str() {
        "same" => None,
        name => Some(GgmlType::parse_among(name, &ENCODABLE).map_err(|e| format!("--type: {e}, or same"))?),
    };
    let file = GgufFile::open(&path)?;
    let mut model = Llama::from_gguf_with(&file, LoadOptions { device: Device::Cpu, keep_quantized: true })?;
    let kind = model.load_adapter(&args.lora, false).map_err(|e| format!("--adapter {}: {e}", args.lora.display()))?;
    let merged = model.merged_weights()?;
    let bar = ProgressBar::new(file.tensors.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} tensors  eta {eta}")?);
    write_with_replacements(
        &file,
        &args.output,
        &merged,
        |info| {
            let ty = chosen.unwrap_or(info.ty);
            // A type the encoder cannot write (a K-quant base) or whose blocks do not fit
            // the row falls back to F16, which always can.
            if ty.row_bytes(info.ne[0]).is_some() && ENCODABLE.contains(&ty) {
                ty
            } else {
                GgmlType::F16
            }
        },
        |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    println!(
        "merged {} adapted tensors ({}) from {} into {} -> {}",
        merged.len(),
        kind.describe(),
        args.lora.display(),
        path.display(),
        args.output.display()
    );
    Ok(())
}
