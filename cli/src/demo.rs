//! `lamina train-demo`: train a small character-level GPT on the corpus bundled in the
//! binary, compare its loss with the corpus's unigram entropy, then sample text.
//! `--arch ngram|lstm|encoder` trains another model of the lineage instead and
//! `--compare` all four (`demo_lineage.rs`).

use clap::Args;
use lamina_model::CharTokenizer;
use lamina_tensor::Device;
use lamina_train::{data::SHIPPED_CORPUS, train_char_gpt, Progress, TrainConfig};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TrainDemoArgs {
    /// Which model: ngram (interpolated Kneser-Ney counts, CPU), lstm, encoder (BERT-style
    /// masked LM) or gpt.
    #[arg(long, default_value = "gpt", value_parser = ["ngram", "lstm", "encoder", "gpt"])]
    pub arch: String,
    /// Train all four for the same time (--budget-secs each) and print and plot one table.
    #[arg(long, conflicts_with = "arch")]
    pub compare: bool,
    /// Under --compare: training time for each neural model, in seconds (see --clock).
    #[arg(long, default_value_t = 90.0, value_name = "SECONDS")]
    pub budget_secs: f64,
    /// Under --compare: what training time counts: cpu (the process's CPU time, so other
    /// work on the machine does not shorten the training; the default on the CPU) or wall
    /// (the default on a GPU, whose work the CPU clock does not see).
    #[arg(long, value_parser = ["cpu", "wall"])]
    pub clock: Option<String>,
    /// The n-gram model's order N.
    #[arg(long, default_value_t = 5)]
    pub order: usize,
    /// Optimisation steps (each a batch of 32 windows of 32 characters).
    #[arg(long, default_value_t = 1000)]
    pub steps: usize,
    /// Seed for the initial weights, the batches and the sample.
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// Text the sample starts from (only characters that occur in the corpus).
    #[arg(long, default_value = "When ")]
    pub prompt: String,
    /// Characters to generate after the prompt.
    #[arg(long, default_value_t = 400)]
    pub sample_len: usize,
    /// Sampling temperature (0: always the most likely character).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f32,
    /// Sample only from the k most likely characters.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub top_k: Option<u32>,
    /// Write the training-loss curve to this SVG file.
    #[arg(long, value_name = "PATH")]
    pub save_plot: Option<PathBuf>,
    /// No progress bar or progress lines.
    #[arg(long)]
    pub quiet: bool,
    /// Where to train: cpu, gpu (the first adapter `lamina devices` lists) or gpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
}

pub fn run(args: TrainDemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    // Check everything that can be wrong before spending minutes training.
    if args.steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    if !(args.temperature.is_finite() && args.temperature >= 0.0) {
        return Err(format!("--temperature must be a finite number >= 0, got {}", args.temperature).into());
    }
    let tokenizer = CharTokenizer::from_corpus(SHIPPED_CORPUS)?;
    if args.prompt.is_empty() {
        return Err("--prompt must hold at least one character".into());
    }
    let prompt = tokenizer.encode(&args.prompt).map_err(|e| format!("--prompt: {e}"))?;
    if let Some(path) = &args.save_plot {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(d) = dir.filter(|d| !d.is_dir()) {
            return Err(format!("--save-plot: directory {} does not exist", d.display()).into());
        }
    }
    if args.compare || args.arch != "gpt" {
        return crate::demo_lineage::run(&args, &tokenizer);
    }

    let cfg = TrainConfig {
        steps: args.steps,
        seed: args.seed,
        progress: if args.quiet { Progress::Quiet } else { Progress::Auto },
        device: args.device,
        ..TrainConfig::default()
    };
    let m = &cfg.model;
    println!(
        "corpus: {} characters of verse (bundled), {} distinct",
        SHIPPED_CORPUS.chars().count(),
        tokenizer.vocab_size()
    );
    println!(
        "model:  GPT, {} layers, {} heads, width {}, context {}; batch {}, {} steps, AdamW lr {:.0e} (cosine), {} threads ({})",
        m.n_layer,
        m.n_head,
        m.n_embd,
        m.ctx,
        cfg.batch,
        cfg.steps,
        cfg.max_lr,
        lamina_tensor::threads(),
        lamina_tensor::cpu::isa::active().name()
    );

    let report = train_char_gpt(SHIPPED_CORPUS, &cfg)?;
    println!(
        "trained {} parameters for {} steps in {:.1} s ({:.0} tokens/s)",
        report.num_params,
        cfg.steps,
        report.train_time.as_secs_f64(),
        report.tokens_per_sec
    );
    let (f, b, o) = (report.phases.forward, report.phases.backward, report.phases.optimizer);
    let total = (f + b + o).as_secs_f64().max(1e-9);
    println!(
        "        time split: forward {:.0}%, backward {:.0}%, optimizer {:.0}%",
        100.0 * f.as_secs_f64() / total,
        100.0 * b.as_secs_f64() / total,
        100.0 * o.as_secs_f64() / total
    );
    println!(
        "loss:   train {:.3}, validation {:.3} nats/char; unigram entropy of the training text {:.3} (what ignoring context gives)",
        report.train_loss, report.val_loss, report.unigram_entropy
    );

    let ids =
        report.model.generate(&prompt, args.sample_len, args.temperature, args.top_k.map(|k| k as usize), args.seed)?;
    let text = report.tokenizer.decode(&ids)?;
    println!("sample (temperature {}):\n---\n{text}\n---", args.temperature);

    if let Some(path) = &args.save_plot {
        let svg = crate::plot::loss_curve_svg(&report.losses, report.unigram_entropy as f32, report.val_loss);
        crate::plot::save(path, &svg).map_err(|e| format!("--save-plot {e}"))?;
        println!("loss curve written to {}", path.display());
    }
    Ok(())
}
