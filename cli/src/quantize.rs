//! `lamina quantize IN OUT --type q8_0`: rewrite a GGUF model with its weight matrices in
//! a ggml block format (norms and vectors stay F32), atomically, with a progress bar and
//! a size report.

use crate::llm::CliResult;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lamina_model::gguf::GgufFile;
use lamina_model::quantize::{quantize_gguf, TARGETS};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// Input GGUF (F32/F16/BF16 weights; quantized ones with --allow-requantize).
    pub input: PathBuf,
    /// Output GGUF (written to a temporary file, then renamed).
    pub output: PathBuf,
    /// Target format: q8_0, q4_0, q4_1, q5_0, q5_1 or f16.
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
    let target = TARGETS.iter().copied().find(|t| t.name().eq_ignore_ascii_case(&args.ty)).ok_or_else(|| {
        let names: Vec<String> = TARGETS.iter().map(|t| t.name().to_lowercase()).collect();
        format!("unknown --type `{}` (choose one of {})", args.ty, names.join(", "))
    })?;
    if args.input == args.output {
        return Err("the output must be a different file from the input".into());
    }
    let input = GgufFile::open(&args.input)?;
    let bar = ProgressBar::new(input.tensors.len() as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} tensors  eta {eta}")?);
    let start = std::time::Instant::now();
    let r =
        quantize_gguf(&input, &args.output, target, args.allow_requantize, |done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    if args.json {
        let v = serde_json::json!({
            "input": args.input.display().to_string(), "output": args.output.display().to_string(),
            "type": target.name(), "params": r.params, "bytes_in": r.bytes_in, "bytes_out": r.bytes_out,
            "bits_per_weight_in": r.bits_per_weight(r.bytes_in), "bits_per_weight_out": r.bits_per_weight(r.bytes_out),
            "quantized_tensors": r.quantized_tensors, "f32_tensors": r.kept_tensors, "seconds": secs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} -> {} ({}): {} tensors quantized, {} kept F32; {:.2} MiB ({:.2} bits/weight) -> {:.2} MiB ({:.2} bits/weight) in {secs:.1} s",
            args.input.display(),
            args.output.display(),
            target,
            r.quantized_tensors,
            r.kept_tensors,
            mib(r.bytes_in),
            r.bits_per_weight(r.bytes_in),
            mib(r.bytes_out),
            r.bits_per_weight(r.bytes_out),
        );
        println!("measure the cost with: lamina perplexity --model {}", args.output.display());
    }
    Ok(())
}
