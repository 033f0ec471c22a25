//! What the LLM commands share: resolving and loading a model (fetching the default one
//! on first use), its tokenizer and chat template, and the sampling options.

pub use crate::default_model::model_path;
use clap::Args;
use lamina_model::chat::{ChatTemplate, CHATML};
use lamina_model::chat_encode::Content;
use lamina_model::gguf::GgufFile;
use lamina_model::hf::HfModel;
use lamina_model::sampling::SamplerConfig;
use lamina_model::{arch, BpeTokenizer, CausalLm, LoadOptions};
use lamina_tensor::Device;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub type CliResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A GGUF file or a Hugging Face directory (config.json + safetensors). Default: SmolLM2-135M-Instruct (Q4_1), downloaded into models/
    /// by scripts/fetch-model.sh on first use.
    #[arg(long, short = 'm', value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Where to run: cpu, gpu (the first adapter `lamina devices` lists) or gpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Context size in tokens (the KV cache is allocated for this many).
    #[arg(long, default_value_t = 2048)]
    pub ctx: usize,
    /// Dequantize quantized GGUF weights to f32 instead of multiplying the blocks as they
    /// are (slower, four to seven times the memory; on the CPU, no 8-bit rounding of
    /// activations).
    #[arg(long)]
    pub dequantize: bool,
    /// An adapter directory in PEFT's layout (adapter_config.json +
    /// adapter_model.safetensors): LoRA or IA3, applied over the model's weights.
    #[arg(long = "adapter", visible_alias = "lora", value_name = "DIR")]
    pub lora: Option<PathBuf>,
    /// A WGSL matmul kernel (written against docs/kernels/matmul.md; `lamina kernel check`
    /// it first) to run in place of the engine's on the GPU device: every float matmul of the
    /// model goes through it (quantized weights stay in the quantized kernel unless
    /// --dequantize). Judge an idea end to end: perplexity unchanged, tokens/s changed.
    #[arg(long, value_name = "FILE.wgsl")]
    pub swap: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct SpecialArgs {
    /// Treat the prompt and messages as plain text: `<|im_start|>` typed in them stays
    /// text instead of becoming the control token, so a message cannot forge a turn. By
    /// default (as llama.cpp) special-token text in the input is parsed; the chat
    /// template's own tokens always are.
    #[arg(long)]
    pub no_special: bool,
}

impl SpecialArgs {
    pub fn content(&self) -> Content {
        if self.no_special {
            Content::PlainText
        } else {
            Content::ParseSpecial
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 picks the most likely token (greedy).
    #[arg(long, default_value_t = 0.8, allow_negative_numbers = true)]
    pub temp: f32,
    /// Always pick the most likely token (same as --temp 0).
    #[arg(long)]
    pub greedy: bool,
    /// Keep only the k most likely tokens (0: all).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Keep the most likely tokens whose probabilities sum to p (1: all).
    #[arg(long, default_value_t = 0.95, allow_negative_numbers = true)]
    pub top_p: f32,
    /// Drop tokens less likely than min-p times the most likely one (0: none).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub min_p: f32,
    /// Penalise tokens seen in the last --repeat-last-n tokens (1: off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = 64)]
    pub repeat_last_n: usize,
    /// Seed for sampling: the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn config(&self) -> SamplerConfig {
        SamplerConfig {
            temperature: if self.greedy { 0.0 } else { self.temp },
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
            repeat_last_n: self.repeat_last_n,
            seed: self.seed,
        }
    }
}

/// A model with its tokenizer and chat template: `Loaded` to generate (an adapter applied),
/// `Loaded<arch::Model>` as the file holds it (any family, encoders included).
pub struct Loaded<M = Box<dyn CausalLm>> {
    pub path: PathBuf,
    pub model: M,
    pub tokenizer: BpeTokenizer,
    pub template: ChatTemplate,
    pub load_secs: f64,
}

/// The model of `args` with `--adapter` applied, for generation (an error for an encoder).
pub fn load(args: &ModelArgs) -> CliResult<Loaded> {
    let start = Instant::now();
    let m = load_any(args)?;
    let model = with_lora(m.model, args)?;
    let (path, tokenizer, template, load_secs) = (m.path, m.tokenizer, m.template, start.elapsed().as_secs_f64());
    Ok(Loaded { path, model, tokenizer, template, load_secs })
}

/// The model of `args` as its file holds it, without the adapter.
pub fn load_any(args: &ModelArgs) -> CliResult<Loaded<arch::Model>> {
    if args.ctx == 0 {
        return Err("--ctx must be at least 1".into());
    }
    if let Some(file) = &args.swap {
        crate::kernel::swap_in(file, args.device, !args.dequantize)?;
    }
    let path = model_path(&args.model)?;
    let start = Instant::now();
    let (model, tokenizer, template_source): (arch::Model, BpeTokenizer, Option<String>) = if path.is_dir() {
        // A Hugging Face directory: config.json, safetensors, tokenizer.json or tokenizer.model.
        let hf = HfModel::open(&path)?;
        let opts = LoadOptions { device: args.device, keep_quantized: !args.dequantize };
        (arch::load_hf(&hf, opts)?, BpeTokenizer::from_hf_dir(&path)?, hf.chat_template.clone())
    } else {
        let file = GgufFile::open(&path)?;
        let opts = LoadOptions { device: args.device, keep_quantized: !args.dequantize };
        let template = file.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(String::from);
        (arch::load_gguf(&file, opts)?, BpeTokenizer::from_gguf(&file)?, template)
    };
    let template = chat_template(&tokenizer, template_source.as_deref())?;
    Ok(Loaded { path, model, tokenizer, template, load_secs: start.elapsed().as_secs_f64() })
}

/// The model's chat template (`source`, or ChatML when it has none) with its BOS/EOS.
pub fn chat_template(tokenizer: &BpeTokenizer, source: Option<&str>) -> CliResult<ChatTemplate> {
    let token = |id: Option<u32>| id.and_then(|i| tokenizer.id_to_token(i)).unwrap_or("").to_string();
    Ok(ChatTemplate::new(source.unwrap_or(CHATML), &token(tokenizer.bos_id()), &token(tokenizer.eos_id()))?)
}

/// `model` with the adapter of `--adapter` loaded onto it (frozen), if one was given.
pub fn with_lora(model: arch::Model, args: &ModelArgs) -> CliResult<Box<dyn CausalLm>> {
    if let Some(dir) = &args.lora {
        let mut model = model.into_decoder("--adapter")?;
        let kind = model.load_adapter(dir, false).map_err(|e| format!("--adapter {}: {e}", dir.display()))?;
        eprintln!("adapter {}: {}", dir.display(), kind.describe());
        return Ok(Box::new(model));
    }
    Ok(model.into_causal_lm()?)
}

/// Check an output path before any work (`lamina_model::atomic::check_output`): not a
/// directory, FIFO or device, in a directory that exists, not one of `inputs` under another
/// name. A symbolic link is followed, and the user is told which file is replaced.
pub fn check_output(output: &Path, inputs: &[&Path]) -> CliResult<PathBuf> {
    let target = lamina_model::atomic::check_output(output, inputs)?;
    if target != output {
        eprintln!("{} is a symbolic link: writing the file it points to, {}", output.display(), target.display());
    }
    Ok(target)
}

/// Peak resident memory of this process (Linux: VmHWM), in MiB.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
