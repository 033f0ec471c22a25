//! `lamina kernel bench`: a user's kernel against the built-in one on the same adapter,
//! same inputs, in one run. Rounds are interleaved (built-in then yours, then yours then
//! built-in, ...), so drift in the machine's load hits both alike; each round times a batch
//! of calls of each, and the median per call is reported with GFLOP/s and the ratio.
//! Times come from GPU timestamp queries around each dispatch where the adapter has them,
//! else from the wall clock around a device sync (the output says which). Before timing,
//! each size's result is compared with the built-in kernel's: a fast but wrong kernel is
//! flagged, not celebrated.

use super::KernelSource;
use crate::bench::{fmt_time, gpu_batch, load_average, parse_dims, parse_float_dtype, wall_batch, BATCH};
use clap::Args;
use lamina_tensor::gpu::{GpuDevice, UserKernel};
use lamina_tensor::{DType, OpName, Tensor};
use lamina_verify::check::tolerance_on;
use lamina_verify::Backend;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    source: KernelSource,
    /// Sizes, comma-separated: N for (N x N) @ (N x N), or MxKxN
    #[arg(long, value_delimiter = ',', default_value = "128,256,512")]
    sizes: Vec<String>,
    /// Interleaved rounds per size; the median per call is reported
    #[arg(long, default_value_t = 7)]
    repeat: usize,
    /// Operand dtype: f32, f16 or bf16
    #[arg(long, default_value = "f32", value_parser = parse_float_dtype)]
    dtype: DType,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

/// One size's result.
struct Row {
    mkn: [usize; 3],
    builtin_s: f64,
    user_s: f64,
    /// max |yours - built-in| / max |built-in|.
    diff: f64,
    agrees: bool,
}

impl Row {
    fn gflops(&self, s: f64) -> f64 {
        2.0 * self.mkn.iter().map(|&d| d as f64).product::<f64>() / s / 1e9
    }
}

pub fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (dev, kernel) = args.source.load()?;
    if !kernel.supports(args.dtype) {
        return Err(format!("{} is f32-only; it cannot be timed on {}", kernel.label(), args.dtype).into());
    }
    let sizes = args.sizes.iter().map(|s| mkn(s)).collect::<Result<Vec<_>, _>>()?;
    let timestamps = dev.summary().timestamp_query;
    let clock = if timestamps { "gpu-timestamps" } else { "wall-around-sync" };
    let load = load_average();
    if !args.json {
        println!("kernel bench: {} against the built-in matmul, {}", kernel.label(), args.dtype);
        println!("  adapter {}", dev.summary());
        match timestamps {
            true => println!("  times: GPU timestamp queries around each dispatch, per call"),
            false => println!("  times: wall clock around a device sync (this adapter has no timestamp queries)"),
        }
        let rounds = args.repeat.max(1);
        println!("  {rounds} interleaved rounds per size, median per call; ratio > 1: yours is faster");
        if let Some(l) = load {
            println!(
                "  1-minute load average before the run: {l:.2} (a CPU adapter such as lavapipe shares the cores)"
            );
        }
        println!(
            "\n{:<16} {:>10} {:>14} {:>10} {:>14} {:>7}  result",
            "M x K x N", "built-in", "", "yours", "", "ratio"
        );
    }
    let mut rows = Vec::new();
    for mkn in sizes {
        let row = bench_size(&dev, &kernel, mkn, args.dtype, args.repeat.max(1), timestamps)?;
        if !args.json {
            print_row(&row);
        }
        rows.push(row);
    }
    dev.set_matmul_kernel(None)?;
    if args.json {
        let results: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "m": r.mkn[0], "k": r.mkn[1], "n": r.mkn[2],
                    "builtin_s": r.builtin_s, "user_s": r.user_s,
                    "builtin_gflops": r.gflops(r.builtin_s), "user_gflops": r.gflops(r.user_s),
                    "ratio": r.builtin_s / r.user_s, "max_rel_diff": r.diff, "agrees": r.agrees,
                })
            })
            .collect();
        let out = serde_json::json!({
            "kernel": kernel.label(), "adapter": dev.summary().to_string(), "dtype": args.dtype.to_string(),
            "clock": clock, "load_average": load, "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if rows.iter().any(|r| !r.agrees) {
        println!("\nyours DIFFERS from the built-in kernel where marked: run `lamina kernel check` before trusting its times");
    }
    Ok(())
}

fn mkn(s: &str) -> Result<[usize; 3], String> {
    match parse_dims(s)?[..] {
        [n] => Ok([n, n, n]),
        [m, k, n] => Ok([m, k, n]),
        _ => Err(format!("size {s:?}: expected N or MxKxN")),
    }
}

/// Compare, then time both kernels on (M, K) @ (K, N) in interleaved rounds.
fn bench_size(
    dev: &Arc<GpuDevice>,
    kernel: &Arc<UserKernel>,
    [m, k, n]: [usize; 3],
    dtype: DType,
    rounds: usize,
    timestamps: bool,
) -> Result<Row, Box<dyn std::error::Error>> {
    let device = lamina_tensor::Device::Gpu(dev.ordinal());
    let randn =
        |shape: &[usize], seed| Tensor::randn(shape, 0.0, 1.0, seed, DType::F32)?.to_dtype(dtype)?.to_device(device);
    let (a, b) = (randn(&[m, k], 1)?, randn(&[k, n], 2)?);
    let mut call = || a.matmul(&b);
    let use_kernel = |user: bool| dev.set_matmul_kernel(user.then(|| kernel.clone()));

    // The results first (this also compiles both pipelines).
    use_kernel(false)?;
    let want = call()?.to_vec_f32()?;
    use_kernel(true)?;
    let got = call()?.to_vec_f32()?;
    let scale = want.iter().fold(0f32, |s, x| s.max(x.abs())) as f64;
    let err =
        got.iter()
            .zip(&want)
            .fold(0f64, |e, (g, w)| if (g - w).is_nan() { f64::INFINITY } else { e.max((g - w).abs() as f64) });
    let diff = if err == 0.0 { 0.0 } else { err / scale };
    // Two kernels each within the conformance tolerance of the exact product.
    let agrees = diff <= 2.0 * tolerance_on(Backend::Gpu(dev.ordinal()), OpName::Matmul, dtype).max_rel;

    let mut batch = |user: bool, inner: usize| -> lamina_tensor::Result<f64> {
        use_kernel(user)?;
        match timestamps {
            true => gpu_batch(&mut call, inner, dev),
            false => wall_batch(&mut call, inner, &|| dev.sync()),
        }
    };
    // Calls per batch: enough for BATCH on the slower of the two, the same for both.
    let one = batch(false, 1)?.max(batch(true, 1)?).max(1e-9);
    let inner = (BATCH.as_secs_f64() / one).ceil().clamp(1.0, 1000.0) as usize;
    let (mut builtin, mut user) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let order = if r % 2 == 0 { [false, true] } else { [true, false] };
        for u in order {
            let t = batch(u, inner)?;
            if u {
                user.push(t)
            } else {
                builtin.push(t)
            }
        }
    }
    Ok(Row { mkn: [m, k, n], builtin_s: median(&mut builtin), user_s: median(&mut user), diff, agrees })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn print_row(r: &Row) {
    let rate = |s: f64| {
        let g = r.gflops(s);
        if g < 1.0 {
            format!("{g:.3} GFLOP/s")
        } else {
            format!("{g:.1} GFLOP/s")
        }
    };
    let [m, k, n] = r.mkn;
    let result =
        if r.agrees { format!("ok (max diff {:.1e})", r.diff) } else { format!("DIFFERS (max diff {:.1e})", r.diff) };
    println!(
        "{:<16} {:>10} {:>14} {:>10} {:>14} {:>6.2}x  {result}",
        format!("{m}x{k}x{n}"),
        fmt_time(r.builtin_s),
        rate(r.builtin_s),
        fmt_time(r.user_s),
        rate(r.user_s),
        r.builtin_s / r.user_s
    );
}
