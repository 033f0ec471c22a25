//! `lamina finetune --data train.jsonl`: LoRA, QLoRA, IA³, prompt tuning, P-tuning, prefix tuning or full
//! fine-tuning of a LLaMA-family GGUF model on JSONL data (text, prompt/completion or chat
//! messages), with validation, checkpoints, `--resume`, a JSONL metrics log and the
//! adapter written in PEFT's layout. Under `mpirun -np N` (a build with the `mpi`
//! feature) the N processes train one model data-parallel, rank 0 printing and writing.

use crate::llm::{chat_template, model_path, peak_memory_mib, CliResult};
use clap::{Args, ValueEnum};
use lamina_model::bottleneck::{BottleneckAct, BottleneckConfig, Placement};
use lamina_model::gguf::GgufFile;
use lamina_model::ia3::Ia3Config;
use lamina_model::lora::{LoraConfig, Target};
use lamina_model::prefix::PrefixTuningConfig;
use lamina_model::prompt::{PTuningConfig, PromptInit, PromptTuningConfig};
use lamina_model::{BpeTokenizer, Llama, LoadOptions};
use lamina_tensor::Device;
use lamina_train::dist::Collective;
use lamina_train::finetune::{
    file_fingerprint, finetune_in, run_dir, settings::f32_value, FineTuneConfig, FineTuneReport, LlamaBottleneck,
    LlamaFull, LlamaIa3, LlamaLora, LlamaPTuning, LlamaPrefix, LlamaPrompt, OptimizerKind, RunOptions, RunSettings,
    SftBatches, TrainBatch, Trainee,
};
use lamina_train::sft::{self, BatcherConfig, DataReport, EncodeOptions, Encoder, PromptFormat, Validation};
use lamina_train::{AdamWConfig, Decay, LrSchedule};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Adapters over the base dequantized to f32.
    Lora,
    /// Adapters over the base kept in its quantized blocks (less memory; activations
    /// rounded to 8 bits in the frozen products, as inference does).
    Qlora,
    /// Every weight, f32 (small models).
    Full,
    /// (IA)³: learned vectors scaling keys, values and the MLP's activations (PEFT's
    /// IA3; --targets default k,v,down, down scaling its input).
    Ia3,
    /// Prompt tuning: --virtual-tokens trainable embeddings put before every sequence
    /// (PEFT's PROMPT_TUNING).
    Prompt,
    /// P-tuning: --virtual-tokens embeddings made by a trainable MLP prompt encoder
    /// (--encoder-hidden wide) while training (PEFT's P_TUNING; the adapter saved is the
    /// encoder's output, a soft prompt).
    PTuning,
    /// Bottleneck adapters (Houlsby: after the attention and the MLP; Pfeiffer: after
    /// the MLP): --bottleneck-size wide residual MLPs, Lamina's own file layout.
    Bottleneck,
    /// Prefix tuning (P-tuning v2): --virtual-tokens trainable keys and values before
    /// every sequence's in each layer, through an MLP while training with
    /// --prefix-projection (PEFT's PREFIX_TUNING).
    Prefix,
}

impl Method {
    /// The peak learning rate when --lr is not given: PEFT's usual choices (vectors and
    /// soft prompts need a larger step than low-rank updates).
    fn default_lr(self) -> f32 {
        match self {
            Method::Lora | Method::Qlora | Method::Full => 2e-4,
            Method::Ia3 => 3e-3,
            Method::Prompt => 3e-2,
            Method::Prefix => 1e-2,
            Method::Bottleneck => 1e-3,
            Method::PTuning => 1e-3,
        }
    }

    /// Whether the frozen base stays in its quantized blocks.
    fn keep_quantized(self, quantized_base: bool) -> bool {
        self == Method::Qlora
            || (quantized_base
                && matches!(self, Method::Ia3 | Method::Prompt | Method::PTuning | Method::Prefix | Method::Bottleneck))
    }
}

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// Training data, JSONL: {"text"}, {"prompt","completion"} or {"messages":[...]} per line.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation data (JSONL); default: carve --val-fraction of --data.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Fraction of --data held out for validation when no --val is given (0: none).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub val_fraction: f64,
    /// The base model (GGUF, LLaMA family). Default: SmolLM2-135M-Instruct.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// cpu, gpu or gpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// A WGSL matmul kernel to train with in place of the engine's on the GPU, as with
    /// `perplexity --swap` (`lamina kernel check` it first).
    #[arg(long, value_name = "FILE.wgsl")]
    pub swap: Option<PathBuf>,
    /// Run directory: metrics.jsonl, checkpoint-N/, best/ and final/ (the adapter or model).
    #[arg(long, short = 'o', default_value = "runs/finetune")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Method::Lora)]
    pub method: Method,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha (the update is scaled by alpha / rank).
    #[arg(long, default_value_t = 16.0, allow_negative_numbers = true)]
    pub alpha: f32,
    /// Scale by alpha / sqrt(rank) instead (rsLoRA).
    #[arg(long)]
    pub rslora: bool,
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub lora_dropout: f32,
    /// Projections to adapt: q,k,v,o,gate,up,down (PEFT names work too) or all. Default:
    /// all for LoRA, k,v,down for IA3.
    #[arg(long)]
    pub targets: Option<String>,
    /// Keep the frozen base in its quantized blocks under ia3, prompt, p-tuning or prefix
    /// (as qlora does for LoRA).
    #[arg(long)]
    pub quantized_base: bool,
    /// Prompt tuning, P-tuning or prefix tuning: how many virtual tokens (prefix positions).
    #[arg(long, default_value_t = 20)]
    pub virtual_tokens: usize,
    /// Bottleneck adapters: the bottleneck width.
    #[arg(long, default_value_t = 16)]
    pub bottleneck_size: usize,
    /// Bottleneck adapters: houlsby (after the attention and the MLP) or pfeiffer (after
    /// the MLP only).
    #[arg(long, default_value = "houlsby")]
    pub placement: String,
    /// Bottleneck adapters: the nonlinearity, relu, silu or gelu.
    #[arg(long, default_value = "relu")]
    pub bottleneck_act: String,
    /// Prefix tuning: make the prefixes with an MLP while training (PEFT's
    /// prefix_projection; the adapter saved is its output).
    #[arg(long)]
    pub prefix_projection: bool,
    /// The hidden width of P-tuning's encoder or of the prefix MLP (default, as PEFT: the
    /// embedding width, or one layer's key/value width).
    #[arg(long, value_name = "N")]
    pub encoder_hidden: Option<usize>,
    /// Prompt tuning: start the virtual tokens from this text's token embeddings (cut or
    /// repeated to --virtual-tokens, as PEFT's TEXT init) instead of N(0, 1) (RANDOM).
    #[arg(long, value_name = "TEXT")]
    pub prompt_init_text: Option<String>,
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
    /// Peak learning rate (default: 2e-4 for lora, qlora and full; 3e-3 for ia3; 3e-2
    /// for prompt; 1e-3 for p-tuning and bottleneck; 1e-2 for prefix).
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

pub fn run(args: FinetuneArgs) -> CliResult {
    crate::ranks::in_group(|group| run_in(group, args))
}

/// The run as one rank of `group` (alone: rank 0 of 1); only rank 0 prints.
fn run_in(group: &dyn Collective, args: FinetuneArgs) -> CliResult {
    let lead = group.rank() == 0;
    if !(0.0..1.0).contains(&args.val_fraction) {
        return Err(format!("--val-fraction {}: use a fraction in [0, 1)", args.val_fraction).into());
    }
    if !(args.epochs.is_finite() && args.epochs > 0.0) {
        return Err(format!("--epochs {}: use a positive number", args.epochs).into());
    }
    if lead && !args.resume && args.resume_from.is_none() {
        // Before anything is loaded: a run directory holding another run fails at once.
        run_dir::check_fresh(&args.out, args.overwrite)?;
    }
    if let Some(kernel) = &args.swap {
        crate::kernel::swap_in(kernel, args.device, args.method.keep_quantized(args.quantized_base))?;
    }
    let path = model_path(&args.model)?;
    let file = GgufFile::open(&path)?;
    // A decoder family, checked before the data is read.
    lamina_model::arch::decoder_for_gguf(&file)?;
    let tokenizer = BpeTokenizer::from_gguf(&file)?;
    let data = load_data(&args, &tokenizer, &file, lead)?;
    let steps = args.steps.unwrap_or_else(|| {
        ((args.epochs * data.train.batches_per_epoch() as f64) / args.accum.max(1) as f64).ceil().max(1.0) as usize
    });
    let cfg = fine_tune_config(&args, steps, settings(&args, &path)?)?;

    let keep_quantized = args.method.keep_quantized(args.quantized_base);
    let mut model = Llama::from_gguf_with(&file, LoadOptions { device: args.device, keep_quantized })?;
    let lora_cfg = lora_config(&args)?;
    let prompt_cfg = prompt_config(&args);
    let prefix_cfg = prefix_config(&args, &model);
    let p_tuning_cfg = p_tuning_config(&args, &model);
    let bottleneck_cfg = bottleneck_config(&args)?;
    let full_params = match args.method {
        Method::Full => Some(model.make_trainable()?),
        Method::Ia3 => {
            let cfg = model.attach_ia3(&ia3_config(&args)?)?;
            if lead {
                eprintln!("IA3 on {} (input-scaled: {})", names(&cfg.targets), names(&cfg.feedforward));
            }
            None
        }
        Method::Prompt => {
            let ids = match &prompt_cfg.init {
                PromptInit::Text(text) => tokenizer.encode(text, false, false)?,
                PromptInit::Random => Vec::new(),
            };
            model.attach_prompt(&prompt_cfg, &ids, args.seed)?;
            None
        }
        Method::Prefix => {
            model.attach_prefix(&prefix_cfg, args.seed)?;
            None
        }
        Method::Bottleneck => {
            model.attach_bottleneck(&bottleneck_cfg, args.seed)?;
            None
        }
        Method::PTuning => {
            model.attach_p_tuning(&p_tuning_cfg, args.seed)?;
            None
        }
        Method::Lora | Method::Qlora => {
            model.attach_lora(&lora_cfg, args.seed)?;
            None
        }
    };
    let base_name = file
        .get("general.name")
        .and_then(|v| v.as_str())
        .map(String::from)
        .unwrap_or_else(|| path.display().to_string());
    let trainee: Box<dyn Trainee + '_> = match (full_params, args.method) {
        (Some(params), _) => Box::new(LlamaFull { model: &model, params, source: &file }),
        (None, Method::Ia3) => Box::new(LlamaIa3 { model: &model, base_name }),
        (None, Method::Prompt) => Box::new(LlamaPrompt { model: &model, config: prompt_cfg, base_name }),
        (None, Method::Bottleneck) => Box::new(LlamaBottleneck { model: &model, config: bottleneck_cfg, base_name }),
        (None, Method::PTuning) => Box::new(LlamaPTuning { model: &model, config: p_tuning_cfg, base_name }),
        (None, Method::Prefix) => Box::new(LlamaPrefix { model: &model, config: prefix_cfg, base_name }),
        (None, _) => Box::new(LlamaLora { model: &model, config: lora_cfg, base_name }),
    };
    let trainee = trainee.as_ref();
    let trainable: usize = trainee.parameters().iter().map(|(_, t)| t.numel()).sum();
    if lead {
        eprintln!(
            "{:?} on {} ({}): {} trainable parameters; {} training / {} validation examples; {steps} steps of {} x {} sequences{}",
            args.method, path.display(), args.device, trainable, data.n_train, data.n_val, args.accum, args.batch,
            ranks_note(group.size(), args.batch),
        );
    }
    let mut batches = data.train;
    let report = finetune_in(group, trainee, &mut batches, &data.val, &cfg)?;
    if lead {
        print_report(&args, &report);
    }
    Ok(())
}

/// How the ranks split each micro-batch of `batch` sequences (nothing for one process).
fn ranks_note(ranks: usize, batch: usize) -> String {
    match ranks {
        1 => String::new(),
        n if batch < n => format!(
            ", split between {n} processes: {} of them have no sequence of each micro-batch (raise --batch)",
            n - batch
        ),
        n => format!(", split between {n} processes ({} or {} sequences each)", batch / n, batch.div_ceil(n)),
    }
}

/// The training batches and the validation set, with what reading them found.
struct Data {
    train: SftBatches,
    val: Vec<TrainBatch>,
    n_train: usize,
    n_val: usize,
}

/// `report`: print what reading the data found (rank 0 does; the others read the same).
fn load_data(args: &FinetuneArgs, tokenizer: &BpeTokenizer, file: &GgufFile, report: bool) -> CliResult<Data> {
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

/// A data file's counts, and the first lines it skipped with their reasons.
fn report_data(path: &Path, r: &DataReport) {
    eprintln!("data {}: {}", path.display(), r.summary());
    for line in r.problem_lines(5) {
        eprintln!("  skipped {line}");
    }
}

/// --targets, or the method's default (`default`) when it is not given.
fn targets(args: &FinetuneArgs, default: &str) -> CliResult<Vec<Target>> {
    Ok(LoraConfig::parse_targets(args.targets.as_deref().unwrap_or(default))?)
}

fn lora_config(args: &FinetuneArgs) -> CliResult<LoraConfig> {
    Ok(LoraConfig {
        rank: args.rank,
        alpha: args.alpha,
        dropout: args.lora_dropout,
        rslora: args.rslora,
        targets: targets(args, "all")?,
    })
}

fn ia3_config(args: &FinetuneArgs) -> CliResult<Ia3Config> {
    Ok(Ia3Config::for_targets(targets(args, "k,v,down")?))
}

fn prompt_config(args: &FinetuneArgs) -> PromptTuningConfig {
    PromptTuningConfig {
        num_virtual_tokens: args.virtual_tokens,
        init: args.prompt_init_text.clone().map_or(PromptInit::Random, PromptInit::Text),
    }
}

/// The prefix MLP's width defaults to one layer's key/value width, as PEFT's.
fn prefix_config(args: &FinetuneArgs, model: &Llama) -> PrefixTuningConfig {
    PrefixTuningConfig {
        num_virtual_tokens: args.virtual_tokens,
        projection: args.prefix_projection.then(|| args.encoder_hidden.unwrap_or(model.prefix_shape().kv_dim())),
    }
}

/// The prompt encoder's width defaults to the model's, as PEFT's `encoder_hidden_size`.
fn p_tuning_config(args: &FinetuneArgs, model: &Llama) -> PTuningConfig {
    PTuningConfig { num_virtual_tokens: args.virtual_tokens, hidden: args.encoder_hidden.unwrap_or(model.config.dim) }
}

fn bottleneck_config(args: &FinetuneArgs) -> CliResult<BottleneckConfig> {
    Ok(BottleneckConfig {
        size: args.bottleneck_size,
        placement: Placement::parse(&args.placement).ok_or("--placement: use houlsby or pfeiffer")?,
        activation: BottleneckAct::parse(&args.bottleneck_act).ok_or("--bottleneck-act: use relu, silu or gelu")?,
    })
}

fn names(targets: &[Target]) -> String {
    targets.iter().map(|t| t.hf_module()).collect::<Vec<_>>().join(", ")
}

/// What decides the steps of this run besides the loop's own settings: stored in every
/// checkpoint and compared on resume.
fn settings(args: &FinetuneArgs, model: &Path) -> CliResult<RunSettings> {
    let fingerprint = |p: &Path| file_fingerprint(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut s = RunSettings::default();
    s.set("model_fingerprint", fingerprint(model)?)
        .set("data_fingerprint", fingerprint(&args.data)?)
        .set("method", format!("{:?}", args.method).to_lowercase())
        .set("batch", args.batch)
        .set("max_len", args.max_len)
        .set("prompt_format", args.prompt_format.clone());
    match &args.val {
        Some(v) => s.set("val_fingerprint", fingerprint(v)?),
        None => s.set("val_fraction", args.val_fraction),
    };
    let list = |t: &[Target]| t.iter().map(|t| t.hf_module()).collect::<Vec<_>>().join(",");
    match args.method {
        Method::Lora | Method::Qlora => {
            let c = lora_config(args)?;
            s.set("rank", c.rank).set("alpha", f32_value(c.alpha)).set("rslora", c.rslora);
            s.set("lora_dropout", f32_value(c.dropout));
            s.set("targets", list(&c.targets));
        }
        Method::Ia3 => {
            let c = ia3_config(args)?;
            s.set("targets", list(&c.targets)).set("feedforward", list(&c.feedforward));
        }
        Method::Prompt => {
            let c = prompt_config(args);
            let init = match c.init {
                PromptInit::Text(t) => json!({ "text": t }),
                PromptInit::Random => json!("random"),
            };
            s.set("virtual_tokens", c.num_virtual_tokens).set("prompt_init", init);
        }
        Method::PTuning => {
            s.set("virtual_tokens", args.virtual_tokens).set("encoder_hidden", args.encoder_hidden);
        }
        Method::Prefix => {
            s.set("virtual_tokens", args.virtual_tokens).set("prefix_projection", args.prefix_projection);
            s.set("encoder_hidden", args.encoder_hidden);
        }
        Method::Bottleneck => {
            let c = bottleneck_config(args)?;
            s.set("bottleneck_size", c.size).set("placement", c.placement.name());
            s.set("bottleneck_act", c.activation.name());
        }
        Method::Full => {}
    }
    s.set("quantized_base", args.method.keep_quantized(args.quantized_base));
    Ok(s)
}

fn fine_tune_config(args: &FinetuneArgs, steps: usize, settings: RunSettings) -> CliResult<FineTuneConfig> {
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
    let lr = args.lr.unwrap_or(args.method.default_lr());
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
        out_dir: args.out.clone(),
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

fn print_report(args: &FinetuneArgs, report: &FineTuneReport) {
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
    let what = if args.method == Method::Full { "model (model.gguf)" } else { "adapter (PEFT layout)" };
    println!("{what}: {}/final, best: {}/best", args.out.display(), args.out.display());
    println!("metrics: {}", report.metrics_path.display());
}
