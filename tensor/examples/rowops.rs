//! Memory-bound ops against the memory bandwidth, both measured in one run: softmax,
//! rms_norm and layer_norm over rows of n, exp and add on n x n, through the Tensor API
//! (output allocation included), interleaved round by round with STREAM-like copy and
//! triad on arrays as big.
//!
//!     cargo run --release -p lamina-tensor --example rowops -- [--n 4096] [--rounds 5] [--retain]
//!
//! Bytes count each f32 read or written once, as STREAM does (softmax: x in, y out, 8 bytes
//! an element; add: 12). Each round takes the best of a few calls: wall-clock GB/s, and GB/s
//! per CPU-second this process got times the thread count (what the threads do with a core
//! each: the fairer figure on a shared machine, see `sgemm.rs`); printed as medians over the
//! rounds with the fraction of triad's rate on the same clock, and the page faults per call.
//!
//! Every call allocates its output (64 MiB at n = 4096). With glibc's defaults a block that
//! big is mmap'd, page-faulted on first write and unmapped when freed, on every call.
//! `--retain` first sets M_MMAP_MAX = 0 and M_TRIM_THRESHOLD = -1, as the `lamina` binary
//! does at start (`lamina_train::retain_freed_memory`), so freed outputs are reused.

use lamina_tensor::cpu::parallel;
use lamina_tensor::{threads, DType, Tensor};
use rayon::prelude::*;
use std::hint::black_box;
use std::time::Instant;

#[path = "common/mod.rs"]
mod common;
use common::{arg, cpu_seconds};

/// Page faults (minor) of this process so far (0 where unknown).
fn page_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Field 10 (minflt), counted after the parenthesised command name.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace().nth(7).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// See the module comment. Linux with glibc only; elsewhere nothing happens.
fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes malloc's tuning; M_MMAP_MAX (-4) = 0 and
        // M_TRIM_THRESHOLD (-1) = -1 are valid values (mallopt(3)).
        unsafe {
            mallopt(-4, 0);
            mallopt(-1, -1);
        }
    }
}

/// One measured round of a case: (wall GB/s, CPU GB/s x threads, page faults per call).
fn measure(bytes: f64, call: &mut dyn FnMut()) -> (f64, f64, f64) {
    call(); // warm-up
    let (mut wall, mut cpu, mut faults) = (f64::INFINITY, f64::INFINITY, 0u64);
    const CALLS: u64 = 4;
    for _ in 0..CALLS {
        let (t, c, f) = (Instant::now(), cpu_seconds(), page_faults());
        call();
        wall = wall.min(t.elapsed().as_secs_f64());
        cpu = cpu.min((cpu_seconds() - c) / threads() as f64);
        faults += page_faults() - f;
    }
    let cpu_rate = if cpu > 0.0 { bytes / cpu / 1e9 } else { f64::NAN };
    (bytes / wall / 1e9, cpu_rate, faults as f64 / CALLS as f64)
}

type Case = (&'static str, f64, Box<dyn FnMut()>);

/// The cases: STREAM copy and triad on n x n arrays, then the ops (bytes per element).
fn cases(n: usize) -> Vec<Case> {
    let len = n * n;
    let e = len as f64 * 4.0;
    let randn = |shape: &[usize], seed| Tensor::randn(shape, 0.0, 1.0, seed, DType::F32).unwrap();
    let (x, y, w, b) = (randn(&[n, n], 1), randn(&[n, n], 2), randn(&[n], 3), randn(&[n], 4));
    const CH: usize = 1 << 16;
    vec![
        (
            "copy",
            2.0 * e,
            Box::new({
                let (a, mut c) = (vec![1.0f32; len], vec![0.5f32; len]);
                move || {
                    parallel::install(|| {
                        c.par_chunks_mut(CH).zip(a.par_chunks(CH)).for_each(|(c, a)| c.copy_from_slice(a))
                    });
                    black_box(&c);
                }
            }),
        ),
        (
            "triad",
            3.0 * e,
            Box::new({
                let (mut a, src, c) = (vec![1.0f32; len], vec![2.0f32; len], vec![0.5f32; len]);
                move || {
                    parallel::install(|| {
                        a.par_chunks_mut(CH).zip(src.par_chunks(CH)).zip(c.par_chunks(CH)).for_each(|((a, b), c)| {
                            a.iter_mut().zip(b).zip(c).for_each(|((a, &b), &c)| *a = b + 3.0 * c)
                        })
                    });
                    black_box(&a);
                }
            }),
        ),
        (
            "softmax",
            2.0 * e,
            Box::new({
                let x = x.clone();
                move || drop(black_box(x.softmax(-1).unwrap()))
            }),
        ),
        (
            "rms_norm",
            2.0 * e,
            Box::new({
                let (x, w) = (x.clone(), w.clone());
                move || drop(black_box(x.rms_norm(Some(&w), 1e-5).unwrap()))
            }),
        ),
        (
            "layer_norm",
            2.0 * e,
            Box::new({
                let x = x.clone();
                move || drop(black_box(x.layer_norm(Some(&w), Some(&b), 1e-5).unwrap()))
            }),
        ),
        (
            "exp",
            2.0 * e,
            Box::new({
                let x = x.clone();
                move || drop(black_box(x.exp().unwrap()))
            }),
        ),
        ("add", 3.0 * e, Box::new(move || drop(black_box(x.add(&y).unwrap())))),
    ]
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = arg(&args, "--n").map_or(4096, |s| s.parse().expect("--n: an integer"));
    let rounds: usize = arg(&args, "--rounds").map_or(5, |s| s.parse().expect("--rounds: an integer"));
    let retain = args.iter().any(|a| a == "--retain");
    if retain {
        retain_freed_memory();
    }
    let mut cases = cases(n);
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for ((_, bytes, call), r) in cases.iter_mut().zip(&mut results) {
            r.push(measure(*bytes, call));
        }
    }
    let stat = |r: &[(f64, f64, f64)], f: fn(&(f64, f64, f64)) -> f64| median(&mut r.iter().map(f).collect::<Vec<_>>());
    let triad = &results[1];
    let (triad_wall, triad_cpu) = (stat(triad, |r| r.0), stat(triad, |r| r.1));
    println!(
        "{n}x{n} f32, {} threads, {rounds} rounds, outputs {}; GB/s as STREAM counts bytes",
        threads(),
        if retain { "reused (--retain)" } else { "fresh (glibc defaults)" }
    );
    println!(
        "{:<11} {:>10} {:>8} {:>16} {:>8} {:>14}",
        "case", "wall GB/s", "% triad", "CPU-time GB/s", "% triad", "faults/call"
    );
    for ((name, _, _), r) in cases.iter().zip(&results) {
        let (wall, cpu, faults) = (stat(r, |r| r.0), stat(r, |r| r.1), stat(r, |r| r.2));
        println!(
            "{name:<11} {wall:>10.1} {:>7.0}% {cpu:>16.1} {:>7.0}% {faults:>14.0}",
            100.0 * wall / triad_wall,
            100.0 * cpu / triad_cpu
        );
    }
}
