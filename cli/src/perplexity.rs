//! `lamina perplexity`: llama-perplexity's measurement (chunks of --ctx tokens, the second
//! half of each scored) on the corpus the binary ships, or on a file. With `--kl-base`,
//! the KL divergence from a base model as well (`kl_report`).

use crate::llm::{load, CliResult, ModelArgs};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lamina_model::perplexity::perplexity;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PerplexityArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text to score (default: the public-domain verse corpus shipped in data/corpus.txt).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    pub chunk: usize,
    /// Score at most this many chunks.
    #[arg(long)]
    pub chunks: Option<usize>,
    /// Compare with this base model (e.g. the F16 original of a quantized or pruned model):
    /// both perplexities, KL divergence, same top token, as llama-perplexity --kl-divergence.
    #[arg(long, value_name = "BASE")]
    pub kl_base: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// The chunk options, checked before anything is loaded (shared with `sweep`).
pub fn check_chunks(chunk: usize, chunks: Option<usize>) -> CliResult {
    if chunk < 4 {
        return Err(format!("--chunk {chunk}: a chunk must be at least 4 tokens (half of it is scored)").into());
    }
    if chunks == Some(0) {
        return Err("--chunks 0: score at least 1 chunk (or leave --chunks out for all of them)".into());
    }
    Ok(())
}

pub fn run(args: PerplexityArgs) -> CliResult {
    check_chunks(args.chunk, args.chunks)?;
    let text = match &args.file {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => lamina_train::data::SHIPPED_CORPUS.to_string(),
    };
    let mut margs = args.model.clone();
    margs.ctx = args.chunk;
    if let Some(base) = &args.kl_base {
        return crate::kl_report::run(&margs, base, &text, args.chunks, args.json);
    }
    let m = load(&margs)?;
    let tokens = m.tokenizer.encode(&text, false, false)?;
    let bos = if m.tokenizer.adds_bos() { m.tokenizer.bos_id() } else { None };
    let total = args.chunks.map_or(tokens.len() / args.chunk.max(1), |c| c.min(tokens.len() / args.chunk.max(1)));
    let bar = ProgressBar::new(total as u64);
    if args.json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} chunks  {msg}  eta {eta}")?);
    let start = std::time::Instant::now();
    let report = perplexity(m.model.as_ref(), &tokens, args.chunk, args.chunks, bos, |_, _, ppl| {
        bar.inc(1);
        bar.set_message(format!("ppl {ppl:.4}"));
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    if args.json {
        let v = serde_json::json!({
            "model": m.path.display().to_string(),
            "tokens_in_text": tokens.len(),
            "n_ctx": report.n_ctx,
            "chunks": report.chunk_nll.len(),
            "tokens_scored": report.tokens_scored,
            "chunk_nll": report.chunk_nll,
            "mean_nll": report.mean_nll,
            "perplexity": report.perplexity,
            "seconds": secs,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} tokens, {} chunks of {}, {} scored: perplexity {:.4} (mean NLL {:.4} nats) in {secs:.1} s",
            tokens.len(),
            report.chunk_nll.len(),
            report.n_ctx,
            report.tokens_scored,
            report.perplexity,
            report.mean_nll
        );
    }
    Ok(())
}
