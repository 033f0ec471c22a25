//! `lamina bench-model`: llama-bench's two figures for a model: pp (prompt processing,
//! one batched pass over N tokens) and tg (text generation, N single-token passes), in
//! tokens per second, mean ± standard deviation over repetitions.

use crate::llm::{load, CliResult, ModelArgs};
use clap::Args;
use lamina_model::LogitsFor;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchModelArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Prompt length for the pp test (0: skip).
    #[arg(short = 'p', long, default_value_t = 512)]
    pub prompt: usize,
    /// Tokens for the tg test (0: skip).
    #[arg(short = 'n', long, default_value_t = 128)]
    pub gen: usize,
    /// Repetitions of each test.
    #[arg(short = 'r', long, default_value_t = 3)]
    pub repetitions: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: BenchModelArgs) -> CliResult {
    let mut margs = args.model.clone();
    margs.ctx = args.prompt.max(args.gen).max(1);
    let m = load(&margs)?;
    let _no_grad = lamina_tensor::NoGradGuard::new();
    let vocab = m.model.vocab_size() as u32;
    // Token ids as llama-bench uses them: arbitrary but valid.
    let tokens: Vec<u32> = (0..args.prompt.max(args.gen) as u32).map(|i| (i * 7919 + 13) % vocab).collect();
    let mut rows = Vec::new();
    // Warm-up pass: first-touch page faults and thread-pool start-up are not the model's speed.
    m.model.forward(&tokens[..1], &mut m.model.new_cache(margs.ctx)?, LogitsFor::Last)?.to_vec_f32()?;
    let run_test = |name: String, n: usize, pp: bool| -> CliResult<(String, usize, f64, f64)> {
        let mut rates = Vec::new();
        for _ in 0..args.repetitions.max(1) {
            let mut cache = m.model.new_cache(margs.ctx)?;
            let start = Instant::now();
            if pp {
                m.model.forward(&tokens[..n], &mut cache, LogitsFor::Last)?.to_vec_f32()?;
            } else {
                for &t in &tokens[..n] {
                    m.model.forward(&[t], &mut cache, LogitsFor::Last)?.to_vec_f32()?;
                }
            }
            rates.push(n as f64 / start.elapsed().as_secs_f64());
        }
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        let var = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rates.len().max(2).saturating_sub(1) as f64;
        Ok((name, n, mean, var.sqrt()))
    };
    if args.prompt > 0 {
        rows.push(run_test(format!("pp{}", args.prompt), args.prompt, true)?);
    }
    if args.gen > 0 {
        rows.push(run_test(format!("tg{}", args.gen), args.gen, false)?);
    }
    let device = format!("{:?}", args.model.device).to_lowercase();
    let weights = if args.model.dequantize { "f32 (--dequantize)" } else { "as stored (quantized blocks kept)" };
    if args.json {
        let v: Vec<_> = rows
            .iter()
            .map(|(t, n, mean, sd)| {
                serde_json::json!({"test": t, "tokens": n, "tokens_per_s": mean, "stddev": sd,
                    "device": device, "threads": lamina_tensor::threads(), "model": m.path.display().to_string(),
                    "weights": weights})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "model: {}  device: {device}  threads: {}  weights: {weights}",
            m.path.display(),
            lamina_tensor::threads()
        );
        println!("| test   |   tokens/s |    ± |");
        println!("|--------|-----------:|-----:|");
        for (t, _, mean, sd) in &rows {
            println!("| {t:6} | {mean:10.2} | {sd:4.2} |");
        }
    }
    Ok(())
}
