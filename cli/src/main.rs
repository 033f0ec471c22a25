//! `lamina`: the command-line tool. `train-demo` trains a small GPT on the bundled corpus
//! and samples from it; `bench` times kernels; `devices` lists what can run them.

mod bench;
mod demo;
mod plot;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "lamina", version, about = "Lamina: a from-scratch tensor engine with autograd")]
struct Cli {
    /// CPU threads for the kernels (0: all cores). Default: $LAMINA_THREADS, else all cores.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a small GPT on the bundled text (no download), then sample from it.
    TrainDemo(demo::TrainDemoArgs),
    /// Benchmark the kernels.
    Bench(bench::BenchArgs),
    /// List the devices Lamina can compute on.
    Devices,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        lamina_tensor::set_threads(n);
    }
    let result = match cli.command {
        Command::TrainDemo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Devices => devices(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn devices() -> Result<(), Box<dyn std::error::Error>> {
    use lamina_tensor::cpu::isa;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "cpu   isa {} (detected {}), {} threads on {} cores",
        isa::active().name(),
        isa::detected().name(),
        lamina_tensor::threads(),
        cores
    );
    println!("gpu   none: the GPU backend is not part of this build yet");
    Ok(())
}
