//! What `lamina finetune` and `lamina distill` share: the training options (data,
//! validation, steps, schedule, optimizer, clipping, checkpoints, resume), the data as
//! batches, the loop's configuration, the settings a checkpoint records about the data,
//! and the summary printed at the end. Under `mpirun` every rank parses the same options
//! and reads the same data; only rank 0 (the lead) checks the run directory and prints.

use crate::llm::{chat_template, peak_memory_mib, CliResult};
use clap::Args;
use lamina_model::gguf::GgufFile;
use lamina_model::BpeTokenizer;
use lamina_tensor::Device;
use lamina_train::finetune::{
    file_fingerprint, run_dir, FineTuneConfig, FineTuneReport, OptimizerKind, RunOptions, RunSettings, SftBatches,
    TrainBatch,
};
use lamina_train::sft::{self, BatcherConfig, DataReport, EncodeOptions, Encoder, PromptFormat, Validation};
use lamina_train::{AdamWConfig, Decay, LrSchedule};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Training data, JSONL: {"text"}, {"prompt","completion"} or {"messages":[...]} per line.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation data (JSONL); default: carve --val-fraction of --data.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Fraction of --data held out for validation when no --val is given (0: none).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub val_fraction: f64,
    /// cpu, gpu or gpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Optimizer steps (default: --epochs worth).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Epochs over the training data, when --steps is not given.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub epochs: f64,
    /// Sequences per micro-batch.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    #[arg(long, default_value_t = 1)]
    pub accum: usize,
    /// Examples longer than this many tokens are truncated (and counted).
    #[arg(long, default_value_t = 256)]
    pub max_len: usize,
    /// Peak learning rate (default, finetune: 2e-4 for lora, qlora and full; 3e-3 for ia3;
    /// 3e-2 for prompt; 1e-3 for p-tuning and bottleneck; 1e-2 for prefix. distill: 2e-4).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// Final learning rate (default: lr / 10).
    #[arg(long, allow_negative_numbers = true)]
    pub min_lr: Option<f32>,
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// cosine, linear or constant after the warmup.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// adamw or sgd.
    #[arg(long, default_value = "adamw")]
    pub optimizer: String,
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub weight_decay: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f32,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub clip: f32,
    /// Validate every N steps (0: at the end only).
    #[arg(long, default_value_t = 50)]
    pub eval_every: usize,
    /// Stop after N validations without improvement.
    #[arg(long)]
    pub patience: Option<usize>,
    /// Checkpoint every N steps (0: at the end only).
    #[arg(long, default_value_t = 100)]
    pub save_every: usize,
    /// Checkpoints to keep.
    #[arg(long, default_value_t = 2)]
    pub keep: usize,
    /// Continue from the newest checkpoint in --out (same data and settings: each checkpoint
    /// records them, with fingerprints of the model and data files, and a resume with
    /// other settings is refused).
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
    /// Continue from this checkpoint instead of the newest (a directory, or a name in --out
    /// such as checkpoint-200); newer checkpoints are set aside as abandoned-checkpoint-N.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with = "overwrite")]
    pub resume_from: Option<PathBuf>,
    /// Resume even when the settings differ from the checkpoint's (each difference is
    /// printed as a warning).
    #[arg(long)]
    pub allow_changed_settings: bool,
    /// Start afresh in an --out that holds another run, deleting that run's checkpoints,
    /// best/, final/ and metrics.jsonl (without it, such a directory is refused).
    #[arg(long)]
    pub overwrite: bool,
    /// Seed for adapter initialisation, data order and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fail on the first bad data line instead of skipping it (with a count).
    #[arg(long)]
    pub strict: bool,
    /// Prompt/completion examples: through the chat template, or concatenated raw.
    #[arg(long, default_value = "template")]
    pub prompt_format: String,
}

impl TrainArgs {
    /// Refuse impossible numbers, and (`lead`: rank 0 does) a fresh run into an `out`
    /// holding another run, before anything is loaded.
    pub fn check(&self, out: &Path, lead: bool) -> CliResult {
        if !(0.0..1.0).contains(&self.val_fraction) {
            return Err(format!("--val-fraction {}: use a fraction in [0, 1)", self.val_fraction).into());
        }
        if !(self.epochs.is_finite() && self.epochs > 0.0) {
            return Err(format!("--epochs {}: use a positive number", self.epochs).into());
        }
        if lead && !self.resume && self.resume_from.is_none() {
            run_dir::check_fresh(out, self.overwrite)?;
        }
        Ok(())
    }

    /// --steps, or --epochs worth of optimizer steps.
    pub fn steps(&self, data: &Data) -> usize {
        self.steps.unwrap_or_else(|| {
            ((self.epochs * data.train.batches_per_epoch() as f64) / self.accum.max(1) as f64).ceil().max(1.0) as usize
        })
    }

    /// The settings a checkpoint records about the model and data (the caller adds its own).
    pub fn settings(&self, model: &Path) -> CliResult<RunSettings> {
        let mut s = RunSettings::default();
        s.set("model_fingerprint", fingerprint(model)?)
            .set("data_fingerprint", fingerprint(&self.data)?)
            .set("batch", self.batch)
            .set("max_len", self.max_len)
            .set("prompt_format", self.prompt_format.clone());
        match &self.val {
            Some(v) => s.set("val_fingerprint", fingerprint(v)?),
            None => s.set("val_fraction", self.val_fraction),
        };
        Ok(s)
    }
}

pub fn fingerprint(p: &Path) -> CliResult<String> {
    Ok(file_fingerprint(p).map_err(|e| format!("{}: {e}", p.display()))?)
}

/// The training batches and the validation set, with what reading them found.
pub struct Data {
    pub train: SftBatches,
    pub val: Vec<TrainBatch>,
    pub n_train: usize,
    pub n_val: usize,
}

/// `report`: print what reading the data found (rank 0 does; the others read the same).
pub fn load_data(args: &TrainArgs, tokenizer: &BpeTokenizer, file: &GgufFile, report: bool) -> CliResult<Data> {
    let source = file.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(String::from);
    let template = chat_template(tokenizer, source.as_deref())?;
    let prompt_format = match args.prompt_format.as_str() {
        "template" => PromptFormat::Template,
        "raw" => PromptFormat::Raw,
        other => return Err(format!("--prompt-format `{other}`: use template or raw").into()),
    };
    let encoder = Encoder::new(tokenizer, Some(&template), EncodeOptions { max_len: args.max_len, prompt_format })?;
    let validation = match (&args.val, args.val_fraction) {
        (Some(p), _) => Validation::File(p.clone()),
        (None, f) if f > 0.0 => Validation::Fraction { fraction: f, seed: args.seed },
        _ => Validation::Off,
    };
    let data = sft::load_split(&args.data, &validation, &encoder, args.strict)?;
    if report {
        report_data(&args.data, &data.train_report);
        if let (Some(r), Some(p)) = (&data.validation_report, &args.val) {
            report_data(p, r);
        }
    }
    let pad = sft::pad_id(tokenizer)?;
    let val: Vec<TrainBatch> = sft::eval_batches(&data.validation, args.batch, pad)?
        .into_iter()
        .map(|b| TrainBatch { batch: b.batch, seq: b.seq, tokens: b.tokens, labels: b.labels })
        .collect();
    let (n_train, n_val) = (data.train.len(), data.validation.len());
    let train = SftBatches::new(
        data.train,
        BatcherConfig { batch_size: args.batch, seed: args.seed, bucket_batches: 8, pad_id: pad },
    )?;
    Ok(Data { train, val, n_train, n_val })
}

/// How the ranks split each micro-batch of `batch` sequences (nothing for one process).
pub fn ranks_note(ranks: usize, batch: usize) -> String {
    match ranks {
        1 => String::new(),
        n if batch < n => format!(
            ", split between {n} processes: {} of them have no sequence of each micro-batch (raise --batch)",
            n - batch
        ),
        n => format!(", split between {n} processes ({} or {} sequences each)", batch / n, batch.div_ceil(n)),
    }
}

/// A data file's counts, and the first lines it skipped with their reasons.
fn report_data(path: &Path, r: &DataReport) {
    eprintln!("data {}: {}", path.display(), r.summary());
    for line in r.problem_lines(5) {
        eprintln!("  skipped {line}");
    }
}

/// The loop's settings; `default_lr` when --lr is not given, checkpoints and results in `out`.
pub fn fine_tune_config(
    args: &TrainArgs,
    out: &Path,
    steps: usize,
    settings: RunSettings,
    default_lr: f32,
) -> CliResult<FineTuneConfig> {
    if !(args.clip.is_finite() && args.clip >= 0.0) {
        return Err(format!("--clip {}: use a positive norm, or 0 for no clipping", args.clip).into());
    }
    let decay = Decay::parse(&args.schedule).ok_or("--schedule: use cosine, linear or constant")?;
    let optimizer = match args.optimizer.as_str() {
        // Hugging Face Trainer's AdamW defaults (betas 0.9/0.999, eps 1e-8).
        "adamw" => {
            OptimizerKind::AdamW(AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: args.weight_decay })
        }
        "sgd" => OptimizerKind::Sgd { momentum: args.momentum, weight_decay: args.weight_decay },
        other => return Err(format!("--optimizer `{other}`: use adamw or sgd").into()),
    };
    let lr = args.lr.unwrap_or(default_lr);
    Ok(FineTuneConfig {
        steps,
        schedule: LrSchedule {
            decay,
            max_lr: lr,
            min_lr: args.min_lr.unwrap_or(lr / 10.0),
            warmup: args.warmup,
            total: steps,
        },
        optimizer,
        accum: args.accum,
        clip: (args.clip > 0.0).then_some(args.clip),
        eval_every: args.eval_every,
        patience: args.patience,
        save_every: args.save_every,
        keep_checkpoints: args.keep,
        seed: args.seed,
        out_dir: out.to_path_buf(),
        resume: args.resume,
        progress_bar: true,
        run: RunOptions {
            resume_from: args.resume_from.clone(),
            overwrite: args.overwrite,
            settings,
            allow_changed_settings: args.allow_changed_settings,
        },
    })
}

/// The run's summary; `what` names the result in `out`/final ("adapter (PEFT layout)", ...).
pub fn print_report(out: &Path, what: &str, report: &FineTuneReport) {
    let first = report.losses.first().copied().unwrap_or(f32::NAN);
    let last = report.losses.last().copied().unwrap_or(f32::NAN);
    println!(
        "trained {} steps{}: loss {first:.4} -> {last:.4}; {:.0} tokens/s over {:.1} s; peak memory {} ({:.0} MiB of heap live at most)",
        report.steps,
        report.resumed_from.map(|s| format!(" (resumed at {s})")).unwrap_or_default(),
        report.tokens_per_s,
        report.seconds,
        peak_memory_mib().map(|m| format!("{m:.0} MiB RSS")).unwrap_or_else(|| "unknown".into()),
        crate::heap::peak_heap_mib(),
    );
    if let Some((step, v)) = report.best_val {
        println!("best validation loss {v:.4} (perplexity {:.3}) at step {step}", (v as f64).exp());
    }
    if report.stopped_early {
        println!("stopped early: validation loss stopped improving");
    }
    println!("{what}: {}/final, best: {}/best", out.display(), out.display());
    println!("metrics: {}", report.metrics_path.display());
}
