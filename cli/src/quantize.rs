//! `lamina quantize IN OUT --type q4_k_m`: rewrite a GGUF model, or convert a Hugging Face
//! LLaMA directory, with its weight matrices in ggml block formats (norms and vectors
//! stay F32), atomically, with a progress bar and a size report.

use crate::llm::CliResult;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lamina_model::convert::HfLlamaSource;
use lamina_model::gguf::GgufFile;
use lamina_model::quantize::{quantize_model, Source, Target};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// Input: a GGUF file (F32/F16/BF16 weights; quantized ones with --allow-requantize), or
    /// a Hugging Face LLaMA directory (config.json, safetensors, tokenizer.json).
    pub input: PathBuf,
    /// Output GGUF (written to a temporary file, then renamed; a symbolic link is followed
    /// and the file it points to replaced; anything else that is not a regular file is refused).
    pub output: PathBuf,
    /// Target: q8_0, q6_k, q5_k_m, q5_k_s, q5_k, q5_1, q5_0, q4_k_m, q4_k_s, q4_k, q4_1,
    /// q4_0, f16 or f32. The *_k_m / *_k_s / q6_k mixes are llama.cpp's; q4_k and q5_k are
    /// llama.cpp's --pure (every matrix the one format).
    #[arg(long = "type", short = 't')]
    pub ty: String,
    /// Re-round tensors that are already quantized in another format.
    #[arg(long)]
    pub allow_requantize: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: QuantizeArgs) -> CliResult {
    let target = Target::parse(&args.ty)?;
    crate::llm::check_output(&args.output, &[&args.input])?;
    let input: Box<dyn Source> = if args.input.is_dir() {
        Box::new(HfLlamaSource::open(&args.input)?)
    } else {
        Box::new(GgufFile::open(&args.input)?)
    };
    let bar = ProgressBar::new(input.tensors().len() as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} tensors  eta {eta}")?);
    let start = std::time::Instant::now();
    let r = quantize_model(input.as_ref(), &args.output, &target, args.allow_requantize, |done, _| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let mix: Vec<String> = r.types.iter().map(|(t, n)| format!("{n} {t}")).collect();
    if args.json {
        let v = serde_json::json!({
            "input": args.input.display().to_string(), "output": args.output.display().to_string(),
            "type": target.name, "file_type": target.file_type, "params": r.params,
            "bytes_in": r.bytes_in, "bytes_out": r.bytes_out,
            "bits_per_weight_in": r.bits_per_weight(r.bytes_in), "bits_per_weight_out": r.bits_per_weight(r.bytes_out),
            "quantized_tensors": r.quantized_tensors, "f32_tensors": r.kept_tensors, "tensor_types": r.types,
            "seconds": secs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} -> {} ({}): {} tensors ({}); {:.2} MiB ({:.2} bits/weight) -> {:.2} MiB ({:.2} bits/weight) in {secs:.1} s",
            args.input.display(),
            args.output.display(),
            target,
            r.quantized_tensors + r.kept_tensors,
            mix.join(", "),
            mib(r.bytes_in),
            r.bits_per_weight(r.bytes_in),
            mib(r.bytes_out),
            r.bits_per_weight(r.bytes_out),
        );
        println!("measure the cost with: lamina perplexity --model {}", args.output.display());
    }
    Ok(())
}
