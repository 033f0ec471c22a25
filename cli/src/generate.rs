//! `lamina generate`: continue a prompt (or answer it as a chat turn) and stream the text.

use crate::llm::{load, peak_memory_mib, CliResult, ModelArgs, SamplingArgs, SpecialArgs};
use clap::Args;
use lamina_model::chat::Message;
use lamina_model::chat_encode::encode_chat;
use lamina_model::generation::{generate, GenerationStats, StopReason};
use lamina_model::sampling::Sampler;
use lamina_model::stop::StopText;
use std::io::{Read, Write};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The prompt; `-` or nothing reads it from stdin.
    pub prompt: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub special: SpecialArgs,
    /// Tokens to generate at most.
    #[arg(long, short = 'n', default_value_t = 256)]
    pub max_tokens: usize,
    /// Treat the prompt as a user message and apply the model's chat template.
    #[arg(long)]
    pub chat: bool,
    /// System prompt (with --chat).
    #[arg(long)]
    pub system: Option<String>,
    /// Stop when the output contains this text (repeatable); the stop text is not printed.
    #[arg(long)]
    pub stop: Vec<String>,
    /// Keep going past end-of-generation tokens.
    #[arg(long)]
    pub ignore_eos: bool,
    /// Print timing and memory figures to stderr at the end.
    #[arg(long)]
    pub stats: bool,
}

pub fn run(args: GenerateArgs) -> CliResult {
    let prompt = match args.prompt.as_deref() {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s)?;
            s
        }
        Some(p) => p.to_string(),
    };
    if prompt.is_empty() {
        return Err("the prompt is empty: pass one as an argument or on stdin".into());
    }
    let mut sampler = Sampler::new(args.sampling.config())?;
    let m = load(&args.model)?;
    let ids = if args.chat {
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(Message::new("system", s));
        }
        messages.push(Message::new("user", &prompt));
        // The rendered template already holds every special token it needs (BOS included).
        encode_chat(&m.template, &m.tokenizer, &messages, true, args.special.content())?
    } else {
        // A raw prompt gets BOS if the model's metadata asks for it.
        m.tokenizer.encode(&prompt, true, !args.special.no_special)?
    };
    if ids.is_empty() {
        return Err("the prompt tokenizes to nothing".into());
    }
    let mut cache = m.model.new_cache(args.model.ctx)?;
    if ids.len() >= cache.capacity() {
        return Err(format!(
            "the prompt has {} tokens; the context holds {} (raise --ctx)",
            ids.len(),
            cache.capacity()
        )
        .into());
    }
    let mut printer = StopPrinter::new(args.stop.clone());
    let mut stream = m.tokenizer.stream(true);
    let mut history = Vec::new();
    let (_, reason, stats) =
        generate(m.model.as_ref(), &mut cache, &ids, args.max_tokens, &mut sampler, &mut history, |id| {
            if !args.ignore_eos && m.tokenizer.is_end_of_generation(id) {
                return Ok(false);
            }
            if let Some(text) = stream.push(id)? {
                return Ok(printer.push(&text));
            }
            Ok(true)
        })?;
    if reason != StopReason::Stopped {
        if let Some(rest) = stream.finish() {
            printer.push(&rest);
        }
    }
    printer.finish();
    println!();
    if reason == StopReason::ContextFull {
        eprintln!("(stopped: the context of {} tokens is full)", cache.capacity());
    }
    if args.stats {
        print_stats(&stats, m.load_secs);
    }
    Ok(())
}

pub fn print_stats(s: &GenerationStats, load_secs: f64) {
    eprintln!("load        {:8.2} s", load_secs);
    eprintln!(
        "prompt      {:8} tokens  {:8.1} tokens/s  ({:.3} s)",
        s.prompt_tokens,
        s.prompt_tokens_per_s(),
        s.prompt_time.as_secs_f64()
    );
    eprintln!(
        "generation  {:8} tokens  {:8.1} tokens/s  ({:.3} s)",
        s.generated_tokens,
        s.decode_tokens_per_s(),
        s.decode_time.as_secs_f64()
    );
    eprintln!("first token {:8.3} s after the prompt was submitted", s.time_to_first_token.as_secs_f64());
    if let Some(mib) = peak_memory_mib() {
        eprintln!("peak memory {mib:8.0} MiB (resident)");
    }
}

/// Prints streamed text, holding back any tail that could be the start of a stop string.
pub struct StopPrinter(StopText);

impl StopPrinter {
    pub fn new(stops: Vec<String>) -> StopPrinter {
        StopPrinter(StopText::new(stops))
    }

    /// Add text; returns false once a stop string has appeared (the text before it is printed).
    pub fn push(&mut self, text: &str) -> bool {
        let (shown, stopped) = self.0.push(text);
        print!("{shown}");
        let _ = std::io::stdout().flush();
        !stopped
    }

    pub fn finish(&mut self) {
        print!("{}", self.0.finish());
        let _ = std::io::stdout().flush();
    }
}
