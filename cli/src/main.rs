//! `lamina`: the command-line tool. `train-demo` trains a small GPT on the bundled corpus
//! and samples from it; `bench` times kernels; `devices` lists the CPU and GPU adapters;
//! `info` describes a model file (GGUF, safetensors, Hugging Face directory); `generate`,
//! `chat`, `perplexity` and `bench-model` run pretrained LLMs; `eval` scores one on task
//! files (or a JSONL test set by exact match) and compares reports; `finetune` and `merge` adapt one (LoRA, QLoRA, full);
//! `distill` trains a smaller student on its distributions;
//! `quantize`, `prune` and `sweep` make and measure smaller models; `plot` draws a
//! fine-tuning log; `tokenize` prints a text's tokens; `serve` puts a model behind an
//! OpenAI-compatible HTTP API; `kernel` checks and times a researcher's own WGSL kernel.

mod bench;
mod bench_model;
mod chat;
mod default_model;
mod demo;
mod demo_lineage;
mod distill;
mod eval;
mod eval_compare;
mod eval_exact;
mod eval_report;
mod eval_tasks;
mod finetune;
mod generate;
mod heap;
mod info;
mod kernel;
mod kl_report;
mod llm;
mod merge;
mod perplexity;
mod plot;
mod plot_log;
mod prune;
mod quantize;
mod ranks;
mod serve;
mod signals;
mod sweep;
mod tokenize;
mod train_args;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "lamina", version, about = "Lamina: a from-scratch tensor engine with autograd")]
struct Cli {
    /// CPU threads for the kernels (0: all cores; at most 8 per core). Default:
    /// $LAMINA_THREADS, else all cores.
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
    /// Continue a prompt with a language model (GGUF), streaming the text.
    Generate(generate::GenerateArgs),
    /// Talk with a chat model in the terminal.
    Chat(chat::ChatArgs),
    /// Perplexity of a model on a text, measured as llama-perplexity does.
    Perplexity(perplexity::PerplexityArgs),
    /// Prompt-processing and generation speed of a model, as llama-bench measures them.
    BenchModel(bench_model::BenchModelArgs),
    /// Evaluate a model on tasks (language, task performance, safety, efficiency) into one report; `eval compare` puts reports side by side.
    Eval(eval::EvalArgs),
    /// Quantize a GGUF model or a Hugging Face LLaMA directory to GGUF (q8_0, q6_k, q5_k_m, q4_k_m, q4_0, f16, ...).
    Quantize(quantize::QuantizeArgs),
    /// Zero the smallest weights of a GGUF model's linear layers (unstructured or N:M such as 2:4).
    Prune(prune::PruneArgs),
    /// Quantize and prune a model at several settings; perplexity and KL divergence of each, as JSON and SVG plots.
    Sweep(sweep::SweepArgs),
    /// Plot a fine-tuning log (JSON lines: step, loss, val_loss, lr) as an SVG.
    Plot(plot_log::PlotArgs),
    /// Fine-tune a LLaMA-family model on JSONL data: LoRA, QLoRA or every weight.
    Finetune(finetune::FinetuneArgs),
    /// Distill a teacher into a smaller student of the same tokenizer (KL at a temperature on cached top-k teacher outputs).
    Distill(distill::DistillArgs),
    /// Fold a LoRA adapter into its base model and write a GGUF.
    Merge(merge::MergeArgs),
    /// Serve a model over HTTP: OpenAI-compatible API, continuous batching, a chat page at /.
    Serve(serve::ServeArgs),
    /// Show a model file's architecture, hyperparameters, tokenizer, chat template and tensors.
    Info(info::InfoArgs),
    /// Print a text's token ids and pieces, as llama-tokenize does (a vocabulary-only GGUF will do).
    Tokenize(tokenize::TokenizeArgs),
    /// Bring your own WGSL kernel: check it against the op's contract and reference, time it.
    Kernel(kernel::KernelArgs),
}

#[global_allocator]
static HEAP: heap::CountingAlloc = heap::CountingAlloc;

fn main() -> ExitCode {
    lamina_train::retain_freed_memory();
    let cli = Cli::parse();
    // The server drains its requests on SIGINT/SIGTERM itself (and writes no files).
    if !matches!(cli.command, Command::Serve(_)) {
        signals::install();
    }
    let result = set_threads(cli.threads).and_then(|()| run(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The thread pool, from --threads, else $LAMINA_THREADS, else all cores (shared out
/// between the processes an MPI launcher started on this machine): made before any work,
/// so a count that cannot be right, or threads that cannot be created, is a clear error
/// here rather than a panic in a kernel.
fn set_threads(arg: Option<usize>) -> Result<(), Box<dyn std::error::Error>> {
    let (n, from) = match (arg, lamina_tensor::cpu::parallel::env_threads()) {
        (Some(n), _) => (n, format!("--threads {n}")),
        (None, Some(env)) => {
            let n = env?;
            (n, format!("LAMINA_THREADS={n}"))
        }
        (None, None) => match lamina_train::dist::launched_local_size() {
            Some(local) if local > 1 => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                ((cores / local).max(1), format!("{cores} cores shared by {local} processes"))
            }
            _ => (0, "the default thread count".to_string()),
        },
    };
    lamina_tensor::set_threads(n).map_err(|e| match e {
        lamina_tensor::Error::Threads(msg) => format!("{from}: {msg}"),
        e => format!("{from}: {e}"),
    })?;
    Ok(())
}

fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::TrainDemo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Devices => devices(),
        Command::Generate(args) => generate::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Perplexity(args) => perplexity::run(args),
        Command::BenchModel(args) => bench_model::run(args),
        Command::Info(args) => info::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Prune(args) => prune::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Plot(args) => plot_log::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Finetune(args) => finetune::run(args),
        Command::Distill(args) => distill::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Kernel(args) => kernel::run(args),
    }
}

fn devices() -> Result<(), Box<dyn std::error::Error>> {
    use lamina_tensor::cpu::isa;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let levels: Vec<&str> = isa::available().iter().map(|i| i.key()).collect();
    let mut extras = Vec::new();
    if isa::has_avx512_vnni() {
        extras.push("avx512-vnni (quantized dot products)");
    }
    if isa::has_neon_dotprod() {
        extras.push("dotprod (quantized dot products)");
    }
    println!(
        "cpu   isa {} (detected {}; this CPU runs {}; LAMINA_ISA picks one), {} thread(s) on {} core(s)",
        isa::active().name(),
        isa::detected().name(),
        levels.join(", "),
        lamina_tensor::threads(),
        cores
    );
    if !extras.is_empty() {
        println!("      also: {}", extras.join(", "));
    }
    let gpus = lamina_tensor::gpu::adapters();
    if gpus.is_empty() {
        println!("gpu   none found (no Vulkan, Metal or DX12 adapter)");
    }
    // Name, backend, type, driver, and the limits and features the kernels care about.
    for a in gpus {
        println!("{a}");
        // Which kernels this adapter gets (subgroup or workgroup-memory reductions, f16 math).
        match lamina_tensor::gpu::GpuDevice::get(a.ordinal) {
            Ok(dev) => println!("      kernels: {}", dev.kernel_paths()),
            Err(e) => println!("      cannot open: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_global_threads_anywhere() {
        let cli = Cli::try_parse_from(["lamina", "train-demo", "--threads", "2", "--steps", "5"]).unwrap();
        assert_eq!(cli.threads, Some(2));
        assert!(matches!(cli.command, Command::TrainDemo(_)));
        assert!(Cli::try_parse_from(["lamina", "--threads", "1", "devices"]).is_ok());
    }

    #[test]
    fn rejects_bad_values_at_parse_time() {
        assert!(Cli::try_parse_from(["lamina", "train-demo", "--top-k", "0"]).is_err());
        assert!(Cli::try_parse_from(["lamina", "train-demo", "--steps", "-3"]).is_err());
        assert!(Cli::try_parse_from(["lamina", "train-demo", "--arch", "rnn"]).is_err());
        assert!(Cli::try_parse_from(["lamina", "train-demo", "--compare", "--arch", "lstm"]).is_err());
        assert!(Cli::try_parse_from(["lamina", "--threads", "x", "devices"]).is_err());
    }

    /// Bad input is reported before any training starts (these return at once).
    #[test]
    fn train_demo_refuses_bad_input_up_front() {
        let run = |extra: &[&str]| -> String {
            let mut argv = vec!["lamina", "train-demo", "--quiet"];
            argv.extend_from_slice(extra);
            match Cli::try_parse_from(argv).unwrap().command {
                Command::TrainDemo(a) => demo::run(a).unwrap_err().to_string(),
                _ => unreachable!(),
            }
        };
        assert!(run(&["--steps", "0"]).contains("--steps"));
        let e = run(&["--prompt", "caf\u{e9}"]);
        assert!(e.contains("--prompt") && e.contains("not in the vocabulary"), "{e}");
        assert!(run(&["--prompt", ""]).contains("--prompt"));
        assert!(run(&["--temperature=-1"]).contains("--temperature"));
        assert!(run(&["--save-plot", "/no/such/dir/loss.svg"]).contains("does not exist"));
        assert!(run(&["--compare", "--budget-secs", "0"]).contains("--budget-secs"));
        assert!(run(&["--compare", "--budget-secs", "NaN"]).contains("--budget-secs"));
        assert!(run(&["--compare", "--clock", "cpu", "--device", "gpu"]).contains("--clock wall"));
        assert!(run(&["--arch", "ngram", "--order", "0"]).contains("--order"));
    }
}
