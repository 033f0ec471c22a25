//! `lamina kernel`: bring your own WGSL kernel. `check` validates a file against its op
//! family's binding contract (`docs/kernels/<op>.md`) and puts it through the op's
//! conformance rows and a shrinking property run against the f64 reference; `bench` times
//! it against the built-in kernel on the same adapter.

mod bench;
mod cache;
mod check;
mod tune;

use clap::{Args, Subcommand};
use lamina_tensor::gpu::contract::{capabilities, Family};
use lamina_tensor::gpu::{GpuDevice, UserKernel};
use lamina_tensor::Device;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct KernelArgs {
    #[command(subcommand)]
    command: KernelCommand,
}

#[derive(Subcommand, Debug)]
enum KernelCommand {
    /// Validate a WGSL kernel against its op's binding contract, then run the op's
    /// conformance cases and random property cases against the f64 reference.
    Check(check::CheckArgs),
    /// Time a WGSL kernel against the built-in one on the same adapter (interleaved
    /// rounds; GFLOP/s and the ratio), after comparing their results.
    Bench(bench::BenchArgs),
    /// Search a kernel's override constants on this adapter: each candidate verified
    /// before it is timed; the winner cached per adapter and driver.
    Tune(tune::TuneArgs),
}

/// The kernel file and how to build it: shared by every subcommand.
#[derive(Args, Debug)]
struct KernelSource {
    /// The WGSL file, written against docs/kernels/<op>.md
    file: PathBuf,
    /// The op family it implements (matmul)
    #[arg(long, value_parser = parse_family)]
    op: Family,
    /// Its entry point (default: the file's only @compute function)
    #[arg(long)]
    entry: Option<String>,
    /// A value for one of the kernel's own override constants (repeatable): NAME=VALUE
    #[arg(long = "override", value_name = "NAME=VALUE", value_parser = parse_override)]
    overrides: Vec<(String, f64)>,
    /// The GPU adapter to run on (`lamina devices` lists them)
    #[arg(long, default_value_t = 0)]
    gpu: usize,
}

fn parse_family(s: &str) -> Result<Family, String> {
    let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
    Family::from_name(s).ok_or_else(|| format!("unknown op `{s}` (kernels can replace: {})", names.join(", ")))
}

fn parse_override(s: &str) -> Result<(String, f64), String> {
    let (name, value) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected NAME=VALUE"))?;
    let v: f64 = value.trim().parse().map_err(|_| format!("`{s}`: `{value}` is not a number"))?;
    if !v.is_finite() {
        return Err(format!("`{s}`: the value must be finite"));
    }
    Ok((name.trim().to_string(), v))
}

impl KernelSource {
    fn text(&self) -> Result<String, String> {
        std::fs::read_to_string(&self.file)
            .map_err(|e| format!("cannot read the kernel file {}: {e}", self.file.display()))
    }

    /// The file's name, as messages and timing labels show it.
    fn file_name(&self) -> String {
        self.file.file_name().map_or_else(|| self.file.display().to_string(), |n| n.to_string_lossy().into())
    }

    /// The adapter and the checked kernel (every contract error comes out here, before
    /// anything runs). Without `--override`, the values `kernel tune` cached for this file
    /// on this adapter are used, and said so.
    fn load(&self) -> Result<(Arc<GpuDevice>, Arc<UserKernel>), Box<dyn std::error::Error>> {
        let text = self.text()?;
        let dev = GpuDevice::get(self.gpu)?;
        let mut overrides = self.overrides.clone();
        if overrides.is_empty() {
            if let Some(tuned) = cache::lookup(dev.summary(), self.op, &text) {
                let shown: Vec<String> = tuned.overrides.iter().map(|(n, v)| format!("{n}={v}")).collect();
                eprintln!("using the tuned overrides cached for this kernel on this adapter: {}", shown.join(" "));
                overrides = tuned.overrides;
            }
        }
        let caps = capabilities(dev.features());
        let kernel = UserKernel::load(self.op, &self.file_name(), &text, self.entry.as_deref(), &overrides, caps)?;
        Ok((dev, Arc::new(kernel)))
    }
}

/// `--swap FILE.wgsl` of the LLM commands: a user's matmul kernel in place of the engine's
/// on `device`, checked against the contract first (and with the overrides `kernel tune`
/// cached for it on this adapter, as `kernel check` uses them).
pub fn swap_in(file: &Path, device: Device, quantized: bool) -> Result<(), Box<dyn std::error::Error>> {
    let Device::Gpu(gpu) = device else {
        return Err("--swap replaces the GPU's matmul kernel: add --device gpu (or gpu:N)".into());
    };
    let source = KernelSource { file: file.to_path_buf(), op: Family::Matmul, entry: None, overrides: Vec::new(), gpu };
    let (dev, kernel) = source.load()?;
    dev.set_matmul_kernel(Some(kernel.clone()))?;
    eprintln!("--swap: every matmul on {device} runs {} (tile {:?})", kernel.label(), kernel.tile());
    if quantized {
        eprintln!("  quantized weights keep the engine's quantized matmul; --dequantize sends them through yours too");
    }
    Ok(())
}

pub fn run(args: KernelArgs) -> Result<(), Box<dyn std::error::Error>> {
    match args.command {
        KernelCommand::Check(a) => check::run(a),
        KernelCommand::Bench(a) => bench::run(a),
        KernelCommand::Tune(a) => tune::run(a),
    }
}
