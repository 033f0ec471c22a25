//! `lamina train-demo --arch ngram|lstm|encoder` and `--compare`: the guide's model
//! lineage (`lamina_train::lineage`) on the bundled corpus, one model or all four, with
//! a table of parameters, training time and validation bits per character, samples from
//! the causal models and a plot of loss against training time.

use crate::demo::TrainDemoArgs;
use crate::plot::{lineage_svg, Curve};
use lamina_model::CharTokenizer;
use lamina_tensor::Device;
use lamina_train::lineage::encoder::PLL_CAVEAT;
use lamina_train::lineage::{run as train, Arch, Entry, LineageConfig, Sampling};
use lamina_train::{data::SHIPPED_CORPUS, Budget, Clock, Progress};
use std::time::Duration;

type Error = Box<dyn std::error::Error>;

pub fn run(args: &TrainDemoArgs, tokenizer: &CharTokenizer) -> Result<(), Error> {
    if !(1..=10).contains(&args.order) {
        return Err(format!("--order must be 1 to 10, got {}", args.order).into());
    }
    let budget = if args.compare {
        if !(args.budget_secs.is_finite() && args.budget_secs > 0.0 && args.budget_secs <= 86_400.0) {
            return Err(format!("--budget-secs must be in (0, 86400], got {}", args.budget_secs).into());
        }
        Budget::Time(Duration::from_secs_f64(args.budget_secs))
    } else {
        Budget::Steps(args.steps)
    };
    let clock = match (args.clock.as_deref().and_then(Clock::parse), args.device) {
        (Some(Clock::ProcessCpu), Device::Gpu(_)) => {
            return Err("--clock cpu does not count work on the GPU: use --clock wall with --device gpu".into())
        }
        (Some(c), _) => c,
        (None, Device::Cpu) => Clock::ProcessCpu,
        (None, _) => Clock::Wall,
    };
    let cfg = LineageConfig {
        budget,
        clock,
        ngram_order: args.order,
        seed: args.seed,
        device: args.device,
        progress: if args.quiet { Progress::Quiet } else { Progress::Auto },
        sampling: Some(Sampling {
            prompt: args.prompt.clone(),
            len: args.sample_len,
            temperature: args.temperature,
            top_k: args.top_k.map(|k| k as usize),
        }),
        ..LineageConfig::default()
    };
    let arches: Vec<Arch> = match Arch::parse(&args.arch) {
        _ if args.compare => Arch::ALL.to_vec(),
        Some(a) => vec![a],
        None => return Err(format!("unknown --arch {}", args.arch).into()),
    };
    describe(&arches, &cfg, tokenizer);
    let entries = train(&arches, SHIPPED_CORPUS, &cfg)?;
    print_table(&entries, &cfg);
    print_samples(&entries, args.temperature);
    if let Some(path) = &args.save_plot {
        crate::plot::save(path, &plot(&entries, &cfg)).map_err(|e| format!("--save-plot {e}"))?;
        println!("plot written to {}", path.display());
    }
    Ok(())
}

fn describe(arches: &[Arch], cfg: &LineageConfig, tokenizer: &CharTokenizer) {
    let chars = SHIPPED_CORPUS.chars().count();
    println!(
        "corpus: {chars} characters of verse (bundled), {} distinct; the last {:.0}% held out for validation",
        tokenizer.vocab_size(),
        cfg.val_fraction * 100.0
    );
    let g = &cfg.gpt;
    for a in arches {
        let what = match a {
            Arch::Ngram => format!(
                "{}-gram, interpolated Kneser-Ney (discounts from count-of-counts), counted on the CPU",
                cfg.ngram_order
            ),
            Arch::Lstm => format!(
                "LSTM, embedding {}, state {}, truncated BPTT over {} steps, {} lanes, no dropout",
                cfg.lstm.embd, cfg.lstm.hidden, g.ctx, cfg.batch
            ),
            Arch::Encoder => format!(
                "BERT-style masked LM, {} layers, {} heads, width {}, context {} (15% masked), batch {}",
                g.n_layer, g.n_head, g.n_embd, g.ctx, cfg.batch
            ),
            Arch::Gpt => format!(
                "GPT, {} layers, {} heads, width {}, context {}, batch {}, dropout {}",
                g.n_layer, g.n_head, g.n_embd, g.ctx, cfg.batch, g.dropout
            ),
        };
        println!("{:<8} {what}", format!("{a}:"));
    }
    let budget = match cfg.budget {
        Budget::Steps(n) => format!("{n} steps"),
        Budget::Time(d) => {
            format!("{:.0} s of {} of training each (interleaved step by step)", d.as_secs_f64(), cfg.clock.describe())
        }
    };
    let device = match cfg.device {
        Device::Cpu => {
            format!("the CPU ({} threads, {})", lamina_tensor::threads(), lamina_tensor::cpu::isa::active().name())
        }
        d => format!("{d} (the n-gram counts on the CPU: it has no tensor ops)"),
    };
    if arches.iter().any(|a| a.is_neural()) {
        println!("training: {budget}, AdamW lr {:.0e} (cosine), on {device}", cfg.max_lr);
    } else if cfg.device != Device::Cpu {
        println!("the n-gram counts on the CPU: it has no tensor ops, --device does not apply");
    }
}

fn print_table(entries: &[Entry], cfg: &LineageConfig) {
    println!();
    println!(
        "{:<9} {:>24} {:>11} {:>7} {:>11} {:>16}",
        "model", "size", "train time", "steps", "score time", "val bits/char"
    );
    for e in entries {
        let size = match e.arch {
            Arch::Ngram => format!("{} n-grams", thousands(e.size)),
            _ => format!("{} parameters", thousands(e.size)),
        };
        let name = match e.arch {
            Arch::Ngram => format!("{}-gram", cfg.ngram_order),
            a => a.name().to_string(),
        };
        let steps = e.fit.as_ref().map_or("-".to_string(), |f| f.steps().to_string());
        let mark = if e.arch.is_causal() { " " } else { "*" };
        println!(
            "{name:<9} {size:>24} {:>9.1} s {steps:>7} {:>9.1} s {:>15.3}{mark}",
            e.train_time.as_secs_f64(),
            e.eval_time.as_secs_f64(),
            e.val.bits_per_token()
        );
    }
    println!("times are {}{}", cfg.clock.describe(), clock_note(cfg));
    if entries.iter().any(|e| !e.arch.is_causal()) {
        println!("* {PLL_CAVEAT}");
    }
}

/// What the CPU clock counted: every kernel thread's time, so the thread count goes
/// with it (and with several, the time a thread spins waiting for a descheduled sibling).
fn clock_note(cfg: &LineageConfig) -> String {
    match (cfg.clock, lamina_tensor::threads()) {
        (Clock::Wall, _) => String::new(),
        (Clock::ProcessCpu, 1) => ", 1 kernel thread".into(),
        (Clock::ProcessCpu, n) => format!(
            ", {n} kernel threads (on a busy machine they spin while waiting for one another, which counts: --threads 1 is steadier)"
        ),
    }
}

fn print_samples(entries: &[Entry], temperature: f32) {
    for e in entries {
        if let Some(text) = &e.sample {
            println!("\n{} sample (temperature {temperature}):\n---\n{text}\n---", e.arch);
        }
    }
}

/// Loss against training time for each neural model, the n-gram's score as a line.
fn plot(entries: &[Entry], cfg: &LineageConfig) -> String {
    let curves: Vec<Curve> = entries
        .iter()
        .filter_map(|e| {
            let f = e.fit.as_ref()?;
            Some(Curve { name: e.arch.name(), losses: &f.losses, times: &f.times, val_bits: e.val.bits_per_token() })
        })
        .collect();
    let ngram_name = format!("{}-gram", cfg.ngram_order);
    let ngram = entries.iter().find(|e| e.arch == Arch::Ngram).map(|e| (ngram_name.as_str(), e.val.bits_per_token()));
    lineage_svg(&curves, ngram)
}

/// 123456 -> "123,456".
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
