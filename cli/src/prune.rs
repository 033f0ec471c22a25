//! `lamina prune IN OUT --sparsity 0.5 [--pattern unstructured|2:4] [--scope row|tensor|global]
//! [--type f16|f32|same]`: magnitude pruning of a GGUF model's linear layers, written
//! atomically, with the sparsity achieved per kind of matrix measured on the output.

use crate::llm::CliResult;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lamina_model::gguf::GgufFile;
use lamina_model::prune::{prune_gguf, OutType, Pattern, PruneConfig, PruneReport, Scope};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Input GGUF.
    pub input: PathBuf,
    /// Output GGUF (written to a temporary file, then renamed; a symbolic link is followed
    /// and the file it points to replaced; anything else that is not a regular file is refused).
    pub output: PathBuf,
    /// Fraction of the weights to zero, from 0 to 1 (N:M patterns fix it at 1 - N/M).
    #[arg(long, allow_negative_numbers = true)]
    pub sparsity: Option<f64>,
    /// unstructured, or N:M (keep the N largest of every M consecutive weights of a row, e.g. 2:4).
    #[arg(long, default_value = "unstructured")]
    pub pattern: String,
    /// Where unstructured pruning picks the smallest weights: each row, each matrix, or all matrices together.
    #[arg(long, value_parser = ["row", "tensor", "global"])]
    pub scope: Option<String>,
    /// Type of the pruned matrices: f16, f32, or same (requantize to the input's type; Q4_1/Q5_1 lose most zeros).
    #[arg(long = "type", short = 't', default_value = "f16", value_parser = ["f16", "f32", "same"])]
    pub ty: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The checked configuration of a prune run (shared with `sweep`).
pub fn config(sparsity: Option<f64>, pattern: &str, scope: Option<&str>, ty: &str) -> CliResult<PruneConfig> {
    let scope = scope.map(|s| match s {
        "tensor" => Scope::Tensor,
        "global" => Scope::Global,
        _ => Scope::Row,
    });
    let out = match ty {
        "f32" => OutType::F32,
        "same" => OutType::Same,
        _ => OutType::F16,
    };
    Ok(PruneConfig::new(sparsity, pattern.parse::<Pattern>()?, scope, out)?)
}

pub fn run(args: PruneArgs) -> CliResult {
    let cfg = config(args.sparsity, &args.pattern, args.scope.as_deref(), &args.ty)?;
    crate::llm::check_output(&args.output, &[&args.input])?;
    let input = GgufFile::open(&args.input)?;
    let bar = ProgressBar::new(1);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} tensors  eta {eta}")?);
    let start = std::time::Instant::now();
    let r = prune_gguf(&input, &args.output, &cfg, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report_json(&r, &args.input, &args.output, secs))?);
    } else {
        print_report(&r, &args.input, &args.output, secs);
    }
    Ok(())
}

pub fn report_json(r: &PruneReport, input: &Path, output: &Path, secs: f64) -> serde_json::Value {
    let kinds: Vec<serde_json::Value> = r
        .kinds
        .iter()
        .map(|k| {
            serde_json::json!({
                "kind": k.kind, "tensors": k.tensors, "params": k.params,
                "zeros_in": k.zeros_in, "zeros_out": k.zeros_out, "sparsity": k.sparsity(),
            })
        })
        .collect();
    let conversions: Vec<String> = r.conversions.iter().map(|(a, b)| format!("{a} -> {b}")).collect();
    serde_json::json!({
        "input": input.display().to_string(), "output": output.display().to_string(),
        "pattern": r.config.pattern.to_string(), "scope": format!("{:?}", r.config.scope).to_lowercase(),
        "sparsity_requested": r.config.sparsity, "zeros_requested": r.zeros_requested,
        "pruned_params": r.pruned_params(), "zeros": r.zeros_out(), "sparsity": r.sparsity(),
        "kinds": kinds, "conversions": conversions, "params": r.params,
        "bytes_in": r.bytes_in, "bytes_out": r.bytes_out,
        "bits_per_weight_in": r.bits_per_weight(r.bytes_in), "bits_per_weight_out": r.bits_per_weight(r.bytes_out),
        "seconds": secs,
    })
}

fn print_report(r: &PruneReport, input: &Path, output: &Path, secs: f64) {
    let c = &r.config;
    let how = match c.pattern {
        Pattern::Unstructured => format!("unstructured, per {:?}", c.scope).to_lowercase(),
        p => format!("{p} pattern"),
    };
    let conv: Vec<String> = r.conversions.iter().map(|(a, b)| format!("{a} -> {b}")).collect();
    println!(
        "{} -> {}: magnitude pruning, {how}, sparsity {} ({})",
        input.display(),
        output.display(),
        c.sparsity,
        conv.join(", ")
    );
    println!("{:<12} {:>7} {:>12} {:>12} {:>9}", "kind", "tensors", "weights", "zeros", "sparsity");
    for k in &r.kinds {
        println!("{:<12} {:>7} {:>12} {:>12} {:>8.2}%", k.kind, k.tensors, k.params, k.zeros_out, 100.0 * k.sparsity());
    }
    println!(
        "{:<12} {:>7} {:>12} {:>12} {:>8.2}%   (asked for {} zeros)",
        "all",
        r.kinds.iter().map(|k| k.tensors).sum::<usize>(),
        r.pruned_params(),
        r.zeros_out(),
        100.0 * r.sparsity(),
        r.zeros_requested
    );
    if r.zeros_out() < r.zeros_requested {
        println!(
            "note: {} of the {} zeros did not survive requantization (Q4_1 / Q5_1 blocks decode as d*q + min, \
             so a zero lands on the nearest code); use --type f16 to keep them",
            r.zeros_requested - r.zeros_out(),
            r.zeros_requested
        );
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "size: {:.2} MiB ({:.2} bits/weight) -> {:.2} MiB ({:.2} bits/weight); zeros are stored densely, in {secs:.1} s",
        mib(r.bytes_in),
        r.bits_per_weight(r.bytes_in),
        mib(r.bytes_out),
        r.bits_per_weight(r.bytes_out)
    );
    println!("measure the cost with: lamina perplexity --model {} --kl-base {}", output.display(), input.display());
}
