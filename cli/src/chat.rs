//! `lamina chat`: a multi-turn conversation in the terminal. Each turn re-renders the
//! whole conversation with the model's chat template and feeds only the tokens the KV
//! cache does not already hold.

use crate::generate::{print_stats, StopPrinter};
use crate::llm::{load, CliResult, ModelArgs, SamplingArgs, SpecialArgs};
use clap::Args;
use lamina_model::chat::Message;
use lamina_model::chat_encode::encode_chat;
use lamina_model::generation::{generate, StopReason};
use lamina_model::sampling::Sampler;
use std::io::{BufRead, Write};

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub special: SpecialArgs,
    /// System prompt for the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// Most tokens per answer.
    #[arg(long, short = 'n', default_value_t = 512)]
    pub max_tokens: usize,
    /// Print timing figures after each answer.
    #[arg(long)]
    pub stats: bool,
}

pub fn run(args: ChatArgs) -> CliResult {
    let mut sampler = Sampler::new(args.sampling.config())?;
    let m = load(&args.model)?;
    let mut cache = m.model.new_cache(args.model.ctx)?;
    let system: Vec<Message> = args.system.iter().map(|s| Message::new("system", s)).collect();
    let mut messages = system.clone();
    let mut cached: Vec<u32> = Vec::new(); // the tokens the cache holds, in order
    eprintln!(
        "{} loaded in {:.1} s. Type a message; /reset starts over, /exit or Ctrl-D quits.",
        m.path.display(),
        m.load_secs
    );
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                messages = system.clone();
                cache.clear();
                cached.clear();
                eprintln!("(conversation cleared)");
                continue;
            }
            _ => {}
        }
        messages.push(Message::new("user", line));
        let ids = match encode_chat(&m.template, &m.tokenizer, &messages, true, args.special.content()) {
            Ok(ids) => ids,
            Err(e) => {
                // This message cannot be taken (a template error, forged turns under
                // --no-special): say so and keep the conversation.
                messages.pop();
                eprintln!("({e})");
                continue;
            }
        };
        // Reuse the cached prefix the new rendering shares with what was evaluated.
        let shared = cached.iter().zip(&ids).take_while(|(a, b)| a == b).count().min(ids.len() - 1);
        cache.truncate(shared);
        cached.truncate(shared);
        if ids.len() + 1 > cache.capacity() {
            messages.pop();
            eprintln!(
                "(the conversation no longer fits the context of {} tokens: /reset to start over)",
                cache.capacity()
            );
            continue;
        }
        let mut stream = m.tokenizer.stream(true);
        let mut printer = StopPrinter::new(Vec::new());
        let mut answer_ids = Vec::new();
        let (new, reason, stats) = generate(
            m.model.as_ref(),
            &mut cache,
            &ids[shared..],
            args.max_tokens,
            &mut sampler,
            &mut cached.clone(),
            |id| {
                if m.tokenizer.is_end_of_generation(id) {
                    return Ok(false);
                }
                answer_ids.push(id);
                if let Some(t) = stream.push(id)? {
                    printer.push(&t);
                }
                Ok(true)
            },
        )?;
        if let Some(rest) = stream.finish() {
            printer.push(&rest);
        }
        printer.finish();
        println!();
        cached.extend_from_slice(&ids[shared..]);
        // The end-of-generation token the model produced was not evaluated: drop it.
        let evaluated = if reason == StopReason::Stopped { &new[..new.len() - 1] } else { &new[..] };
        cached.extend_from_slice(&evaluated[..evaluated.len().min(cache.len() - cached.len())]);
        cache.truncate(cached.len());
        messages.push(Message::new("assistant", &m.tokenizer.decode(&answer_ids, true)?));
        if reason == StopReason::ContextFull {
            eprintln!("(the context of {} tokens is full: /reset to start over)", cache.capacity());
        }
        if args.stats {
            print_stats(&stats, m.load_secs);
        }
    }
    Ok(())
}
