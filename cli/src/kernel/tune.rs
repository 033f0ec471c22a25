//! `lamina kernel tune`: search a kernel's override constants (tile and workgroup sizes)
//! on this adapter. Every candidate is verified first (the op's conformance rows in f32,
//! both layouts, against the f64 reference) and only a verified one is timed, so a fast
//! but wrong candidate can never win; the search stops at the time budget. The winner is
//! cached per (adapter, driver, kernel file) in the user's cache directory
//! (`tuning.tsv`, see `cache.rs`), and `kernel check` / `kernel bench` use it when no
//! `--override` is given.

use super::cache::{self, Entry};
use super::KernelSource;
use crate::bench::{gpu_batch, parse_dims, wall_batch, BATCH};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lamina_tensor::gpu::contract::{capabilities, Family};
use lamina_tensor::gpu::{GpuDevice, UserKernel};
use lamina_tensor::{DType, Tensor};
use lamina_verify::lab::check_case;
use lamina_verify::{Backend, InputLayout};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct TuneArgs {
    #[command(flatten)]
    source: KernelSource,
    /// Values to try for one of the kernel's overrides (repeatable): NAME=V1,V2,...; the
    /// candidates are every combination
    #[arg(long = "search", value_name = "NAME=V1,V2,..", value_parser = parse_search, required = true)]
    search: Vec<(String, Vec<f64>)>,
    /// The product candidates are timed on: N for (N x N) @ (N x N), or MxKxN
    #[arg(long, default_value = "256")]
    size: String,
    /// Stop starting new candidates after this many seconds
    #[arg(long, default_value_t = 120.0)]
    budget_secs: f64,
    /// Timed batches per candidate (the median is kept)
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Do not write the winner to the cache
    #[arg(long)]
    no_cache: bool,
}

fn parse_search(s: &str) -> Result<(String, Vec<f64>), String> {
    let (name, values) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected NAME=V1,V2,.."))?;
    let v: Result<Vec<f64>, _> = values.split(',').map(|v| v.trim().parse::<f64>()).collect();
    match v {
        Ok(v) if !v.is_empty() && v.iter().all(|x| x.is_finite()) => Ok((name.trim().to_string(), v)),
        _ => Err(format!("`{s}`: the values must be numbers, comma-separated")),
    }
}

/// One point of the search: the kernel's own overrides with these values.
pub type Candidate = Vec<(String, f64)>;

/// What became of one candidate.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// It failed verification (or could not be built): never timed.
    Rejected(String),
    /// Verified, then timed: seconds per call.
    Timed(f64),
    /// The budget ran out before it was tried.
    NotTried,
}

/// Try `candidates` in order until `budget` is spent: `verify` each, and `time` only those
/// that pass. Returns each one's verdict (`NotTried` past the budget).
pub fn search(
    candidates: &[Candidate],
    budget: Duration,
    mut verify: impl FnMut(&Candidate) -> Result<(), String>,
    mut time: impl FnMut(&Candidate) -> Result<f64, String>,
    mut progress: impl FnMut(&Candidate, &Verdict),
) -> Vec<Verdict> {
    let start = Instant::now();
    let mut out = Vec::with_capacity(candidates.len());
    for c in candidates {
        let v = if start.elapsed() > budget {
            Verdict::NotTried
        } else {
            match verify(c).and_then(|()| time(c)) {
                Ok(s) => Verdict::Timed(s),
                Err(why) => Verdict::Rejected(why),
            }
        };
        progress(c, &v);
        out.push(v);
    }
    out
}

/// The fastest timed candidate, if any was.
pub fn winner(verdicts: &[Verdict]) -> Option<(usize, f64)> {
    verdicts
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match v {
            Verdict::Timed(s) => Some((i, *s)),
            _ => None,
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Every combination of the searched values (the first name varies slowest), each with
/// the fixed overrides in front.
fn candidates(fixed: &[(String, f64)], search: &[(String, Vec<f64>)]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = vec![fixed.to_vec()];
    for (name, values) in search {
        out = out
            .iter()
            .flat_map(|c| values.iter().map(move |v| [c.clone(), vec![(name.clone(), *v)]].concat()))
            .collect();
    }
    out
}

pub fn run(args: TuneArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (dev, base) = args.source.load()?;
    let text = args.source.text()?;
    let [m, k, n] = match parse_dims(&args.size)?[..] {
        [n] => [n, n, n],
        [m, k, n] => [m, k, n],
        _ => return Err(format!("--size {:?}: expected N or MxKxN", args.size).into()),
    };
    let cands = candidates(&args.source.overrides, &args.search);
    println!(
        "kernel tune: {} on {}; {} candidates, each verified (conformance rows, f32) before it is timed on {m}x{k}x{n}",
        base.label(),
        dev.summary(),
        cands.len()
    );
    let bar = ProgressBar::new(cands.len() as u64);
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("a valid template"));
    let device = lamina_tensor::Device::Gpu(dev.ordinal());
    let a = Tensor::randn(&[m, k], 0.0, 1.0, 1, DType::F32)?.to_device(device)?;
    let b = Tensor::randn(&[k, n], 0.0, 1.0, 2, DType::F32)?.to_device(device)?;
    let build = |c: &Candidate| -> Result<Arc<UserKernel>, String> {
        let caps = capabilities(dev.features());
        let name = args.source.file_name();
        let k = UserKernel::load(args.source.op, &name, &text, args.source.entry.as_deref(), c, caps);
        k.map(Arc::new).map_err(|e| e.to_string())
    };
    let verify = |c: &Candidate| verify_candidate(&dev, args.source.op, build(c)?);
    let time = |c: &Candidate| time_candidate(&dev, build(c)?, &a, &b, args.repeat.max(1)).map_err(|e| e.to_string());
    let budget = Duration::from_secs_f64(args.budget_secs.max(0.0));
    let verdicts = search(&cands, budget, verify, time, |c, v| {
        bar.inc(1);
        bar.set_message(format!("{}: {}", show(c), show_verdict(v, m, k, n)));
    });
    bar.finish_and_clear();
    dev.set_matmul_kernel(None)?;
    for (c, v) in cands.iter().zip(&verdicts) {
        println!("  {:<28} {}", show(c), show_verdict(v, m, k, n));
    }
    let Some((best, secs)) = winner(&verdicts) else {
        return Err("no candidate passed verification: nothing to cache".into());
    };
    println!("winner: {} ({})", show(&cands[best]), show_verdict(&verdicts[best], m, k, n));
    if !args.no_cache {
        let entry = Entry::new(dev.summary(), args.source.op, &text, cands[best].clone(), flops(m, k, n) / secs / 1e9);
        let path = cache::store(entry)?;
        println!("cached in {} (used by kernel check and kernel bench without --override)", path.display());
    }
    Ok(())
}

/// The op's conformance rows in f32, both layouts: all must pass.
fn verify_candidate(dev: &GpuDevice, op: Family, kernel: Arc<UserKernel>) -> Result<(), String> {
    dev.set_matmul_kernel(Some(kernel)).map_err(|e| e.to_string())?;
    let rows = match op {
        Family::Matmul => lamina_verify::table::matmul_cases(),
    };
    for p in &rows {
        for layout in InputLayout::ALL {
            let r = check_case(Backend::Gpu(dev.ordinal()), p, DType::F32, layout, 0);
            if !r.passed() {
                return Err(format!("fails {} {}", r.label, layout.name()));
            }
        }
    }
    Ok(())
}

fn time_candidate(
    dev: &GpuDevice,
    kernel: Arc<UserKernel>,
    a: &Tensor,
    b: &Tensor,
    repeat: usize,
) -> lamina_tensor::Result<f64> {
    dev.set_matmul_kernel(Some(kernel))?;
    let mut call = || a.matmul(b);
    let mut batch = |inner: usize| match dev.summary().timestamp_query {
        true => gpu_batch(&mut call, inner, dev),
        false => wall_batch(&mut call, inner, &|| dev.sync()),
    };
    let one = batch(1)?.max(1e-9);
    let inner = (BATCH.as_secs_f64() / one).ceil().clamp(1.0, 1000.0) as usize;
    let mut times = (0..repeat).map(|_| batch(inner)).collect::<lamina_tensor::Result<Vec<f64>>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn flops(m: usize, k: usize, n: usize) -> f64 {
    2.0 * m as f64 * k as f64 * n as f64
}

fn show(c: &Candidate) -> String {
    c.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(" ")
}

fn show_verdict(v: &Verdict, m: usize, k: usize, n: usize) -> String {
    match v {
        Verdict::Timed(s) => format!("{} ({:.3} GFLOP/s)", crate::bench::fmt_time(*s), flops(m, k, n) / s / 1e9),
        Verdict::Rejected(why) => format!("rejected: {why}"),
        Verdict::NotTried => "not tried (budget spent)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn c(v: f64) -> Candidate {
        vec![("WG".to_string(), v)]
    }

    /// A fake timing source: the fastest candidate by far computes the wrong answer. It is
    /// rejected by verification, never timed, and never chosen.
    #[test]
    fn a_fast_but_wrong_candidate_is_never_chosen() {
        let cands = [c(4.0), c(8.0), c(16.0), c(32.0)];
        let timed = RefCell::new(Vec::new());
        let fake_time = |c: &Candidate| -> Result<f64, String> {
            timed.borrow_mut().push(c[0].1);
            Ok(match c[0].1 as u32 {
                4 => 3e-3,
                8 => 1e-3,
                16 => 1e-6, // fast because it skips work
                _ => 2e-3,
            })
        };
        let verify =
            |c: &Candidate| if c[0].1 == 16.0 { Err("fails matmul [65,33] [33,17] contig".into()) } else { Ok(()) };
        let verdicts = search(&cands, Duration::from_secs(60), verify, fake_time, |_, _| {});
        assert_eq!(winner(&verdicts), Some((1, 1e-3)), "{verdicts:?}");
        assert!(matches!(&verdicts[2], Verdict::Rejected(w) if w.contains("fails")), "{verdicts:?}");
        assert_eq!(*timed.borrow(), vec![4.0, 8.0, 32.0], "the wrong candidate was timed");
        // Every candidate wrong: no winner at all.
        let none = search(&cands, Duration::from_secs(60), |_| Err("wrong".into()), fake_time, |_, _| {});
        assert_eq!(winner(&none), None);
    }

    #[test]
    fn the_budget_bounds_the_search() {
        let cands = [c(4.0), c(8.0), c(16.0)];
        let slow = |_: &Candidate| -> Result<f64, String> {
            std::thread::sleep(Duration::from_millis(30));
            Ok(1e-3)
        };
        let v = search(&cands, Duration::from_millis(10), |_| Ok(()), slow, |_, _| {});
        assert_eq!(v, vec![Verdict::Timed(1e-3), Verdict::NotTried, Verdict::NotTried]);
    }

    #[test]
    fn candidates_are_every_combination() {
        let fixed = [("BK".to_string(), 16.0)];
        let search = [("WG_X".to_string(), vec![8.0, 16.0]), ("WG_Y".to_string(), vec![4.0, 8.0])];
        let all = candidates(&fixed, &search);
        assert_eq!(all.len(), 4);
        assert_eq!(show(&all[1]), "BK=16 WG_X=8 WG_Y=8");
        assert!(parse_search("WG=8,x").is_err() && parse_search("WG").is_err());
        assert_eq!(parse_search("WG = 4, 8").unwrap(), ("WG".to_string(), vec![4.0, 8.0]));
    }
}
