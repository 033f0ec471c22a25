//! `lamina finetune --data train.jsonl`: LoRA, QLoRA, IA³, prompt tuning, P-tuning, prefix tuning or full
//! fine-tuning of a LLaMA-family GGUF model on JSONL data (text, prompt/completion or chat
//! messages), with validation, checkpoints, `--resume`, a JSONL metrics log and the
//! adapter written in PEFT's layout. Under `mpirun -np N` (a build with the `mpi`
//! feature) the N processes train one model data-parallel, rank 0 printing and writing.

use crate::llm::{model_path, CliResult};
use crate::train_args::{fine_tune_config, load_data, print_report, ranks_note, TrainArgs};
use clap::{Args, ValueEnum};
use lamina_model::bottleneck::{BottleneckAct, BottleneckConfig, Placement};
use lamina_model::gguf::GgufFile;
use lamina_model::ia3::Ia3Config;
use lamina_model::lora::{LoraConfig, Target};
use lamina_model::prefix::PrefixTuningConfig;
use lamina_model::prompt::{PTuningConfig, PromptInit, PromptTuningConfig};
use lamina_model::{BpeTokenizer, Llama, LoadOptions};
use lamina_train::dist::Collective;
use lamina_train::finetune::{
    finetune_in, settings::f32_value, LlamaBottleneck, LlamaFull, LlamaIa3, LlamaLora, LlamaPTuning, LlamaPrefix,
    LlamaPrompt, RunSettings, Trainee,
};
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
    /// The base model (GGUF, LLaMA family). Default: SmolLM2-135M-Instruct.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub model: Option<PathBuf>,
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
    #[command(flatten)]
    pub train: TrainArgs,
}

pub fn run(args: FinetuneArgs) -> CliResult {
    crate::ranks::in_group(|group| run_in(group, args))
}

/// The run as one rank of `group` (alone: rank 0 of 1); only rank 0 prints.
fn run_in(group: &dyn Collective, args: FinetuneArgs) -> CliResult {
    let lead = group.rank() == 0;
    args.train.check(&args.out, lead)?;
    if let Some(kernel) = &args.swap {
        crate::kernel::swap_in(kernel, args.train.device, args.method.keep_quantized(args.quantized_base))?;
    }
    let path = model_path(&args.model)?;
    let file = GgufFile::open(&path)?;
    // A decoder family, checked before the data is read.
    lamina_model::arch::decoder_for_gguf(&file)?;
    let tokenizer = BpeTokenizer::from_gguf(&file)?;
    let data = load_data(&args.train, &tokenizer, &file, lead)?;
    let steps = args.train.steps(&data);
    let cfg = fine_tune_config(&args.train, &args.out, steps, settings(&args, &path)?, args.method.default_lr())?;

    let keep_quantized = args.method.keep_quantized(args.quantized_base);
    let mut model = Llama::from_gguf_with(&file, LoadOptions { device: args.train.device, keep_quantized })?;
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
            model.attach_prompt(&prompt_cfg, &ids, args.train.seed)?;
            None
        }
        Method::Prefix => {
            model.attach_prefix(&prefix_cfg, args.train.seed)?;
            None
        }
        Method::Bottleneck => {
            model.attach_bottleneck(&bottleneck_cfg, args.train.seed)?;
            None
        }
        Method::PTuning => {
            model.attach_p_tuning(&p_tuning_cfg, args.train.seed)?;
            None
        }
        Method::Lora | Method::Qlora => {
            model.attach_lora(&lora_cfg, args.train.seed)?;
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
            args.method, path.display(), args.train.device, trainable, data.n_train, data.n_val, args.train.accum, args.train.batch,
            ranks_note(group.size(), args.train.batch),
        );
    }
    let mut batches = data.train;
    let report = finetune_in(group, trainee, &mut batches, &data.val, &cfg)?;
    if lead {
        let what = if args.method == Method::Full { "model (model.gguf)" } else { "adapter (PEFT layout)" };
        print_report(&args.out, what, &report);
    }
    Ok(())
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
    let mut s = args.train.settings(model)?;
    s.set("method", format!("{:?}", args.method).to_lowercase());
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
