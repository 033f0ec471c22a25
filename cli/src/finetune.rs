//! `lamina finetune --data train.jsonl`: LoRA, QLoRA, IA³, prompt tuning, P-tuning, prefix tuning or full
//! fine-tuning of a LLaMA-family GGUF model on JSONL data (text, prompt/completion or chat
//! messages), with validation, checkpoints, `--resume`, a JSONL metrics log and the
//! adapter written in PEFT's layout.

use crate::llm::{chat_template, model_path, peak_memory_mib, CliResult};
use clap::{Args, ValueEnum};
use lamina_model::gguf::GgufFile;
use lamina_model::ia3::Ia3Config;
use lamina_model::lora::{LoraConfig, Target};
use lamina_model::prefix::PrefixTuningConfig;
use lamina_model::prompt::{PTuningConfig, PromptInit, PromptTuningConfig};
use lamina_model::{BpeTokenizer, Llama, LoadOptions};
use lamina_tensor::Device;
use lamina_train::finetune::{
    finetune, FineTuneConfig, LlamaFull, LlamaIa3, LlamaLora, LlamaPTuning, LlamaPrefix, LlamaPrompt, OptimizerKind,
    SftBatches, TrainBatch, Trainee,
};
use lamina_train::sft::{self, BatcherConfig, EncodeOptions, Encoder, PromptFormat, Validation};
use lamina_train::{AdamWConfig, Decay, LrSchedule};
use std::path::PathBuf;

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
            Method::PTuning => 1e-3,
        }
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
    #[arg(long, default_value_t = 0.05)]
    pub val_fraction: f64,
    /// The base model (GGUF, LLaMA family). Default: SmolLM2-135M-Instruct.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// cpu, gpu or gpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Run directory: metrics.jsonl, checkpoint-N/, best/ and final/ (the adapter or model).
    #[arg(long, short = 'o', default_value = "runs/finetune")]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Method::Lora)]
    pub method: Method,
    /// LoRA rank.
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// LoRA alpha (the update is scaled by alpha / rank).
    #[arg(long, default_value_t = 16.0)]
    pub alpha: f32,
    /// Scale by alpha / sqrt(rank) instead (rsLoRA).
    #[arg(long)]
    pub rslora: bool,
    #[arg(long, default_value_t = 0.05)]
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
    #[arg(long, default_value_t = 1.0)]
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
    /// for prompt; 1e-3 for p-tuning; 1e-2 for prefix).
    #[arg(long)]
    pub lr: Option<f32>,
    /// Final learning rate (default: lr / 10).
    #[arg(long)]
    pub min_lr: Option<f32>,
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// cosine, linear or constant after the warmup.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// adamw or sgd.
    #[arg(long, default_value = "adamw")]
    pub optimizer: String,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Clip gradients to this global norm (0: no clipping).
    #[arg(long, default_value_t = 1.0)]
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
    /// Continue from the newest checkpoint in --out (same data and settings).
    #[arg(long)]
    pub resume: bool,
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
    let path = model_path(&args.model)?;
    let file = GgufFile::open(&path)?;
    // A decoder family, checked before the data is read.
    lamina_model::arch::decoder_for_gguf(&file)?;
    let tokenizer = BpeTokenizer::from_gguf(&file)?;
    let source = file.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(String::from);
    let template = chat_template(&tokenizer, source.as_deref())?;
    let prompt_format = match args.prompt_format.as_str() {
        "template" => PromptFormat::Template,
        "raw" => PromptFormat::Raw,
        other => return Err(format!("--prompt-format `{other}`: use template or raw").into()),
    };
    let encoder = Encoder::new(&tokenizer, Some(&template), EncodeOptions { max_len: args.max_len, prompt_format })?;
    let validation = match (&args.val, args.val_fraction) {
        (Some(p), _) => Validation::File(p.clone()),
        (None, f) if f > 0.0 => Validation::Fraction { fraction: f, seed: args.seed },
        _ => Validation::Off,
    };
    let data = sft::load_split(&args.data, &validation, &encoder, args.strict)?;
    eprintln!("data {}: {}", args.data.display(), data.train_report.summary());
    if let Some(r) = &data.validation_report {
        eprintln!("validation: {}", r.summary());
    }
    let pad = sft::pad_id(&tokenizer)?;
    let val: Vec<TrainBatch> = sft::eval_batches(&data.validation, args.batch, pad)?
        .into_iter()
        .map(|b| TrainBatch { batch: b.batch, seq: b.seq, tokens: b.tokens, labels: b.labels })
        .collect();
    let n_train = data.train.len();
    let mut batches = SftBatches::new(
        data.train,
        BatcherConfig { batch_size: args.batch, seed: args.seed, bucket_batches: 8, pad_id: pad },
    )?;
    let steps = args.steps.unwrap_or_else(|| {
        ((args.epochs * batches.batches_per_epoch() as f64) / args.accum.max(1) as f64).ceil().max(1.0) as usize
    });

    let keep_quantized = args.method == Method::Qlora
        || (args.quantized_base
            && matches!(args.method, Method::Ia3 | Method::Prompt | Method::PTuning | Method::Prefix));
    let mut model = Llama::from_gguf_with(&file, LoadOptions { device: args.device, keep_quantized })?;
    let targets = |default: &str| LoraConfig::parse_targets(args.targets.as_deref().unwrap_or(default));
    let lora_cfg = LoraConfig {
        rank: args.rank,
        alpha: args.alpha,
        dropout: args.lora_dropout,
        rslora: args.rslora,
        targets: targets("all")?,
    };
    let prompt_cfg = PromptTuningConfig {
        num_virtual_tokens: args.virtual_tokens,
        init: args.prompt_init_text.clone().map_or(PromptInit::Random, PromptInit::Text),
    };
    let prefix_cfg = PrefixTuningConfig {
        num_virtual_tokens: args.virtual_tokens,
        projection: args.prefix_projection.then(|| args.encoder_hidden.unwrap_or(model.prefix_shape().kv_dim())),
    };
    let p_tuning_cfg = PTuningConfig {
        num_virtual_tokens: args.virtual_tokens,
        hidden: args.encoder_hidden.unwrap_or(model.config.dim),
    };
    let full_params = match args.method {
        Method::Full => Some(model.make_trainable()?),
        Method::Ia3 => {
            let cfg = model.attach_ia3(&Ia3Config::for_targets(targets("k,v,down")?))?;
            eprintln!("IA3 on {} (input-scaled: {})", names(&cfg.targets), names(&cfg.feedforward));
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
        (None, Method::PTuning) => Box::new(LlamaPTuning { model: &model, config: p_tuning_cfg, base_name }),
        (None, Method::Prefix) => Box::new(LlamaPrefix { model: &model, config: prefix_cfg, base_name }),
        (None, _) => Box::new(LlamaLora { model: &model, config: lora_cfg, base_name }),
    };
    let trainee = trainee.as_ref();
    let trainable: usize = trainee.parameters().iter().map(|(_, t)| t.numel()).sum();
    eprintln!(
        "{:?} on {} ({}): {} trainable parameters; {n_train} training / {} validation examples; {steps} steps of {} x {} sequences",
        args.method,
        path.display(),
        args.device,
        trainable,
        data.validation.len(),
        args.accum,
        args.batch,
    );
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
    let cfg = FineTuneConfig {
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
    };
    let report = finetune(trainee, &mut batches, &val, &cfg)?;
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
    Ok(())
}

fn names(targets: &[Target]) -> String {
    targets.iter().map(|t| t.hf_module()).collect::<Vec<_>>().join(", ")
}
