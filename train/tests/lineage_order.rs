//! The guide's ordering on the shipped corpus, measured: at equal training time the
//! n-gram should score worst and the GPT best, in validation bits per character. Training time
//! is the process's CPU time with one kernel thread, so the machine's other work does not
//! change the result (a faster or slower CPU does: it buys more or fewer steps). The
//! encoder's pseudo-log-likelihood is not comparable, so it is not in the race. The
//! n-gram to beat is the best of orders 2 to 8, not only train-demo's 5-gram.
//!
//! Only the GPT's place holds, and only it is asserted. Measured (README, "The model
//! lineage"), n-gram 2.951 at best (the 8-gram), three runs at 90 s (this test with seeds
//! 1337 and 7, `lamina train-demo --compare`): GPT 2.855, 2.869, 2.855 bits/char; LSTM
//! 2.910, 2.995, 2.868. The GPT beat the n-gram by 0.08 or more and the LSTM every time,
//! but by as little as 0.013. "N-gram worst" does not hold: the LSTM, with no dropout,
//! overfits the 46,000 training characters between 60 s (2.840, best of all) and 120 s
//! (3.054, worse than the n-gram), so at 90 s a tenth more or fewer steps (the CPU time
//! of a step varies that much with the machine's load) or another seed puts it on either
//! side of the n-gram. Its place is printed, not asserted.
//!
//! Ignored in CI: it trains the LSTM and the GPT for `BUDGET` of CPU time each, about
//! 3 minutes of CPU in all with scoring (5 to 9 minutes of wall time under `nice -n 15`
//! at load 11-19 on 2 cores: the wall time is all that load changes). CI covers every part in
//! seconds: the counts and probabilities (lineage_ngram), the losses and gradients
//! against PyTorch (lineage_torch), the loop, scoring and sampling end to end
//! (lineage_run), the CPU clock (train_clock). Run it with
//! `cargo test --release -p lamina-train --test lineage_order -- --ignored --nocapture`;
//! `LAMINA_LINEAGE_BUDGET_SECS` and `LAMINA_LINEAGE_SEED` try another budget or seed.

use lamina_train::data::SHIPPED_CORPUS;
use lamina_train::lineage::{run, Arch, Entry, LineageConfig};
use lamina_train::{retain_freed_memory, Budget, Clock, Progress};
use std::time::Duration;

/// CPU time of training for each neural model (train-demo --compare's default).
const BUDGET: Duration = Duration::from_secs(90);

/// How far (bits per character) the GPT must beat the best n-gram: the smallest gap
/// measured at this budget was 0.082.
const NGRAM_MARGIN: f64 = 0.05;

/// How far it must beat the LSTM: the smallest gap measured was 0.013, so this is thin,
/// and said so.
const LSTM_MARGIN: f64 = 0.01;

#[test]
#[ignore = "trains for 3 minutes of CPU time; see the file's comment for what CI runs instead"]
fn the_gpt_scores_best_at_equal_cpu_time() {
    // As `lamina` does at start: without it a third of the CPU time goes to the kernel
    // faulting in fresh pages, and a budget buys half the LSTM steps it buys in the CLI.
    retain_freed_memory();
    lamina_tensor::set_threads(1).unwrap();
    let env = |name: &str| std::env::var(name).ok().map(|s| s.parse::<f64>().unwrap_or_else(|_| panic!("{name}: {s}")));
    let cfg = LineageConfig {
        budget: Budget::Time(env("LAMINA_LINEAGE_BUDGET_SECS").map_or(BUDGET, Duration::from_secs_f64)),
        clock: Clock::ProcessCpu,
        seed: env("LAMINA_LINEAGE_SEED").map_or(LineageConfig::default().seed, |s| s as u64),
        progress: Progress::Auto,
        ..LineageConfig::default()
    };
    let neural = run(&[Arch::Lstm, Arch::Gpt], SHIPPED_CORPUS, &cfg).unwrap();
    for e in &neural {
        report(&e.arch.to_string(), e);
    }
    let ngrams: Vec<(usize, f64)> = (2..=8)
        .map(|order| {
            let cfg = LineageConfig { ngram_order: order, ..cfg.clone() };
            let e = run(&[Arch::Ngram], SHIPPED_CORPUS, &cfg).unwrap().remove(0);
            report(&format!("{order}-gram"), &e);
            (order, e.val.bits_per_token())
        })
        .collect();
    let (order, ngram) = ngrams.into_iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    let bits = |a: Arch| neural.iter().find(|e| e.arch == a).unwrap().val.bits_per_token();
    let (lstm, gpt) = (bits(Arch::Lstm), bits(Arch::Gpt));
    let lstm_place = if lstm < ngram { "beats" } else { "does not beat" };
    eprintln!("the LSTM {lstm_place} the n-gram (not asserted: it overfits around this budget)");
    assert!(
        gpt + NGRAM_MARGIN <= ngram,
        "the GPT ({gpt:.3}) should beat the best n-gram (the {order}-gram, {ngram:.3}) by {NGRAM_MARGIN}"
    );
    assert!(gpt + LSTM_MARGIN <= lstm, "the GPT ({gpt:.3}) should beat the LSTM ({lstm:.3}) by {LSTM_MARGIN}");
}

fn report(name: &str, e: &Entry) {
    let steps = e.fit.as_ref().map_or(0, |f| f.steps());
    eprintln!(
        "{name:<7} {:>7.3} bits/char  {:>6.1} s of CPU  {steps:>5} steps",
        e.val.bits_per_token(),
        e.train_time.as_secs_f64()
    );
}
