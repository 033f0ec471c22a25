//! f32 matmul speed at every ISA level this CPU runs, interleaved round by round so load
//! changes hit every level alike. Goes through `Tensor::matmul` (output allocation
//! included), as numpy's `matmul` does.
//!
//!     cargo run --release -p lamina-tensor --example sgemm -- [--sizes 1024,2048] [--rounds 5] [--json]
//!
//! Prints, per (level, n), the median and best GFLOP/s over the rounds; each round is the
//! best of a few calls (about 0.5 s). `--json` prints one JSON object per line instead
//! (what `benches/gemm_vs_numpy.py` reads). Threads: LAMINA_THREADS (default: all cores).
//!
//! On a loaded machine wall-clock rates say more about the other processes than about the
//! kernel, so each round also reports the rate per CPU-second this process got (Linux:
//! `/proc/self/task/*/schedstat`), times the thread count: what the threads would do with
//! a core each. It still counts cache pollution by the neighbours, not their share of time.

use lamina_tensor::cpu::isa::{self, Isa};
use lamina_tensor::{threads, DType, Tensor};
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{arg, cpu_seconds};

/// (best wall seconds per call, best CPU seconds per call / threads) over calls filling
/// about half a second (at least 2).
fn best_of(a: &Tensor, b: &Tensor) -> (f64, f64) {
    let (mut best, mut best_cpu, start, mut calls) = (f64::INFINITY, f64::INFINITY, Instant::now(), 0);
    while calls < 2 || start.elapsed().as_secs_f64() < 0.5 {
        let (t, c) = (Instant::now(), cpu_seconds());
        std::hint::black_box(a.matmul(b).unwrap());
        best = best.min(t.elapsed().as_secs_f64());
        best_cpu = best_cpu.min((cpu_seconds() - c) / threads() as f64);
        calls += 1;
    }
    (best, best_cpu)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = arg(&args, "--sizes")
        .unwrap_or_else(|| "1024,2048".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--sizes: comma-separated integers"))
        .collect();
    let rounds: usize = arg(&args, "--rounds").map_or(5, |s| s.parse().expect("--rounds: an integer"));
    let json = args.iter().any(|a| a == "--json");
    let levels = isa::available();
    if !json {
        let names: Vec<&str> = levels.iter().map(|i| i.key()).collect();
        println!("sgemm via Tensor::matmul, {} threads, levels {names:?}, {rounds} rounds", threads());
    }
    for &n in &sizes {
        let a = Tensor::randn(&[n, n], 0.0, 1.0, 1, DType::F32).unwrap();
        let b = Tensor::randn(&[n, n], 0.0, 1.0, 2, DType::F32).unwrap();
        let flops = 2.0 * (n as f64).powi(3);
        let mut rates: Vec<(Isa, Vec<f64>, Vec<f64>)> = levels.iter().map(|&i| (i, Vec::new(), Vec::new())).collect();
        for _ in 0..rounds {
            for (level, wall, cpu) in rates.iter_mut() {
                isa::force(Some(*level));
                let (w, c) = best_of(&a, &b);
                wall.push(flops / w / 1e9);
                cpu.push(if c > 0.0 { flops / c / 1e9 } else { f64::NAN });
            }
        }
        isa::force(None);
        for (level, mut wall, mut cpu) in rates {
            wall.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            let (median, best, cpu_median) = (wall[wall.len() / 2], wall[wall.len() - 1], cpu[cpu.len() / 2]);
            if json {
                println!(
                    "{{\"n\": {n}, \"isa\": \"{}\", \"threads\": {}, \"median_gflops\": {median:.2}, \"best_gflops\": {best:.2}, \"cpu_time_median_gflops\": {cpu_median:.2}, \"rounds\": {wall:?}}}",
                    level.key(),
                    threads()
                );
            } else {
                println!(
                    "n={n:>5} {:>9}: median {median:7.1} GFLOP/s, best {best:7.1}; per CPU-second x threads: {cpu_median:7.1}",
                    level.name()
                );
            }
        }
    }
}
