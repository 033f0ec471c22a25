//! `lamina bench`: time the engine's ops and rate each against the machine's peak.
//!
//! Compute-bound ops (matmul, attention, matmul_qt with several rows) are rated in GFLOP/s
//! against the FMA peak (clock x FMA pipes x f32 lanes x 2 flop x threads, derived and
//! printed at the top); memory-bound ops (norms, softmax, elementwise, matmul_qt with one
//! row: GB/s of weight blocks) in GB/s of the bytes they must read and write once, against
//! a bandwidth peak measured first with a STREAM-like copy and triad.
//!
//! Timing: one warm-up call (page faults, thread pool, packing buffers), then `--repeat`
//! timed batches, each of enough calls to last about 5 ms; the median batch is reported.
//! Every call goes through the public `Tensor` API, output allocation included: glibc maps
//! outputs over 32 MiB fresh from the kernel on every call, so the 4096x4096 cases pay a
//! page fault per 4 KiB of output (measured: `add` 2.5x slower than with THP on).

use clap::Args;
use lamina_tensor::cpu::isa;
use lamina_tensor::gpu::GpuDevice;
use lamina_tensor::quant::{GgmlType, QMatrix};
use lamina_tensor::{scaled_dot_product_attention, DType, Device, OpName, Tensor};
use std::hint::black_box;
use std::time::{Duration, Instant};

const DEFAULT_OPS: &str = "matmul,matmul_qt,softmax,rms_norm,layer_norm,attention,exp,add";

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Ops to time, comma-separated, named as in the op catalog (e.g. matmul,rms_norm)
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_OPS)]
    pub ops: Vec<String>,
    /// Sizes, comma-separated, each `N` or `AxBx..`, read per op: matmul N = (N,N)@(N,N) or
    /// MxKxN; matmul_qt MxKxN = (M,K)@W^T with W (N,K) quantized (see --qtype); row and
    /// elementwise ops N = NxN or the full shape; attention T = (1,8,T,64) or BxHxTxD
    /// (each run without and with the causal mask), or BxHxTqxTkxD (Tq queries against Tk
    /// cached keys, no mask: decode). Default: per-op sizes
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<String>,
    /// Weight format of matmul_qt with --sizes: q4_0, q4_1, q5_0, q5_1 or q8_0 (weights are
    /// random normals quantized to it). The default cases are SmolLM2-135M's projections
    /// (Q4_1) and output head (Q8_0)
    #[arg(long, default_value = "q4_1")]
    pub qtype: String,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
    /// Device to run on: cpu, gpu or gpu:N. GPU times come from timestamp queries around each
    /// kernel where the adapter has them (wall-clock around a device sync otherwise, said so
    /// in the output); the adapter's peak is unknown, so no %peak.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Timed batches per case; the median is reported
    #[arg(long, default_value_t = 10)]
    pub repeat: usize,
    /// Element type of the float ops' inputs and outputs: f32, f16 or bf16 (matmul_qt's x
    /// stays f32). On a GPU with shader-f16, f16 matmuls compute in f16 (matmul_f16.wgsl);
    /// `LAMINA_GPU_DISABLE=f16` times the f32-math path instead
    #[arg(long, default_value = "f32", value_parser = parse_float_dtype)]
    pub dtype: DType,
}

pub(crate) fn parse_float_dtype(s: &str) -> Result<DType, String> {
    match s {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        other => Err(format!("unknown float dtype `{other}` (f32, f16 or bf16)")),
    }
}

pub fn run(args: BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let device = args.device;
    // Waits for the device's queued work, so a GPU timing covers execution, not recording.
    let sync: Box<dyn Fn() -> lamina_tensor::Result<()>> = match device {
        Device::Cpu => Box::new(|| Ok(())),
        Device::Gpu(n) => {
            let dev = GpuDevice::get(n)?;
            Box::new(move || dev.sync())
        }
    };
    // The GPU's own clock, when it has timestamp queries: kernel time without the host's
    // recording, submission and wake-up latency.
    let gpu = match device {
        Device::Gpu(n) => Some(GpuDevice::get(n)?),
        Device::Cpu => None,
    };
    let timestamps = gpu.as_ref().is_some_and(|d| d.summary().timestamp_query);
    let clock = if device == Device::Cpu {
        "wall"
    } else if timestamps {
        "gpu-timestamps"
    } else {
        "wall-around-sync"
    };
    let ops = args.ops.iter().map(|s| parse_op(s)).collect::<Result<Vec<_>, _>>()?;
    let qtype = parse_qtype(&args.qtype)?;
    let sizes = args.sizes.iter().map(|s| parse_dims(s)).collect::<Result<Vec<_>, _>>()?;
    let mut cases = Vec::new();
    for &op in &ops {
        if sizes.is_empty() {
            cases.extend(default_cases(op));
            continue;
        }
        // With several ops, a size may fit only some of them (64x1000 is no matmul): skip it there.
        let resolved: Vec<_> = sizes.iter().map(|dims| resolve(op, dims, qtype)).collect();
        if let Some(Err(e)) = resolved.first().filter(|_| resolved.iter().all(Result::is_err)) {
            return Err(e.clone().into());
        }
        for r in resolved {
            match r {
                Ok(c) => cases.extend(c),
                Err(e) => eprintln!("note: {e}; skipped"),
            }
        }
    }

    let peak = Peak::detect();
    if !args.json {
        peak.print();
        if let Device::Gpu(n) = device {
            let dev = GpuDevice::get(n)?;
            println!("device {device}: {}", dev.summary());
            println!("  kernels: {}", dev.kernel_paths());
            if timestamps {
                println!("  times: the kernels' execution on the GPU, from timestamp queries around each dispatch (summed over an op's dispatches); the adapter's peak is not known, so no %peak");
            } else {
                println!("  times: wall-clock around a device sync (this adapter has no timestamp queries); the adapter's peak is not known, so no %peak");
            }
        }
        println!("\n{:<11} {:<28} {:>10}  {:>17}  {:>6}  {:>7}", "op", "shape", "median", "rate", "%peak", "runs");
    }
    let mut rows = Vec::new();
    for case in &cases {
        let mut call = prepare(case, device, args.dtype)?;
        let t = match gpu.as_ref().filter(|_| timestamps) {
            Some(dev) => time_on_gpu(&mut *call, args.repeat.max(1), dev)?,
            None => time_it(&mut *call, args.repeat.max(1), &*sync)?,
        };
        let (rate, unit, peak_rate) = match case.work(args.dtype.size_in_bytes()) {
            Work::Flops(f) => (f / t.median / 1e9, "GFLOP/s", peak.gflops),
            Work::Bytes(b) => (b / t.median / 1e9, "GB/s", Some(peak.mem_gbs)),
        };
        let peak_rate = if device == Device::Cpu { peak_rate } else { None };
        let frac = peak_rate.map(|p| rate / p);
        if !args.json {
            let pct = frac.map_or("-".to_string(), |f| format!("{:.0}%", f * 100.0));
            let runs = format!("{}x{}", t.runs, t.inner);
            // Three decimals below 1 (a software adapter's GB/s), else one.
            let rate_s = if rate < 1.0 { format!("{rate:.3} {unit}") } else { format!("{rate:.1} {unit}") };
            println!(
                "{:<11} {:<28} {:>10}  {:>17}  {:>6}  {:>7}",
                op_key(case.op),
                case.label(),
                fmt_time(t.median),
                rate_s,
                pct,
                runs
            );
        }
        rows.push(serde_json::json!({
            "op": op_key(case.op), "shape": case.shape, "causal": case.causal, "label": case.label(),
            "qtype": case.qtype.map(|t| t.name()),
            "median_s": t.median, "min_s": t.min, "runs": t.runs, "calls_per_run": t.inner, "clock": clock,
            "rate": rate, "unit": unit, "peak_fraction": frac,
        }));
    }
    if args.json {
        let out = serde_json::json!({
            "device": device.name(), "dtype": args.dtype.to_string(), "clock": clock,
            "kernels": gpu.as_ref().map(|d| d.kernel_paths()), "peak": peak.to_json(), "results": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

// ---- cases ---------------------------------------------------------------------------------

/// One timed configuration. `shape`: matmul and matmul_qt (M, K, N); attention (B, H, T,
/// D); others the input shape. `qtype`: matmul_qt's weight format.
#[derive(Clone, Debug, PartialEq)]
struct Case {
    op: OpName,
    shape: Vec<usize>,
    causal: bool,
    qtype: Option<GgmlType>,
}

enum Work {
    Flops(f64),
    Bytes(f64),
}

impl Case {
    fn new(op: OpName, shape: &[usize]) -> Case {
        Case { op, shape: shape.to_vec(), causal: false, qtype: None }
    }

    /// x (M, K) @ W^T with W (N, K) in `ty` blocks.
    fn quant(shape: [usize; 3], ty: GgmlType) -> Case {
        Case { op: OpName::MatmulQt, shape: shape.to_vec(), causal: false, qtype: Some(ty) }
    }

    /// What the op must do at minimum: flops for compute-bound ops, else bytes read + written
    /// once, for elements of `elem` bytes.
    fn work(&self, elem: usize) -> Work {
        let e = elem as f64;
        let s: Vec<f64> = self.shape.iter().map(|&d| d as f64).collect();
        let n: f64 = s.iter().product();
        let row = s.last().copied().unwrap_or(1.0);
        match self.op {
            OpName::Matmul => Work::Flops(2.0 * n),
            // One row of x streams the weights once: rated by the bytes of blocks it reads.
            OpName::MatmulQt if self.shape[0] == 1 => {
                let ty = self.qtype.expect("matmul_qt has a format");
                Work::Bytes(s[2] * s[1] * ty.type_size() as f64 / ty.block_size() as f64)
            }
            OpName::MatmulQt => Work::Flops(2.0 * n),
            // QK^T and PV: 2 * T * T * D flops each per (b, h); causal skips half the scores.
            // Decode shapes (B, H, Tq, Tk, D): 2 * Tq * Tk * D each.
            OpName::Attention if s.len() == 5 => Work::Flops(4.0 * n),
            OpName::Attention => Work::Flops(4.0 * n * s[2] / if self.causal { 2.0 } else { 1.0 }),
            OpName::Add => Work::Bytes(3.0 * e * n),
            OpName::RmsNorm => Work::Bytes(e * (2.0 * n + row)),
            OpName::LayerNorm => Work::Bytes(e * (2.0 * n + 2.0 * row)),
            _ => Work::Bytes(2.0 * e * n),
        }
    }

    fn label(&self) -> String {
        let s = &self.shape;
        match self.op {
            OpName::Matmul => format!("({}x{})@({}x{})", s[0], s[1], s[1], s[2]),
            OpName::MatmulQt => {
                format!("({}x{})@({}x{})ᵀ {}", s[0], s[1], s[2], s[1], self.qtype.map_or("?", |t| t.name()))
            }
            OpName::Attention if s.len() == 5 => format!("B{} H{} Tq{} Tk{} D{}", s[0], s[1], s[2], s[3], s[4]),
            OpName::Attention => {
                let mask = if self.causal { " causal" } else { "" };
                format!("B{} H{} T{} D{}{mask}", s[0], s[1], s[2], s[3])
            }
            _ => s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("x"),
        }
    }
}

fn default_cases(op: OpName) -> Vec<Case> {
    match op {
        OpName::Matmul => [256, 512, 1024, 2048].iter().map(|&n| Case::new(op, &[n, n, n])).collect(),
        // SmolLM2-135M: the FFN up projection (decode and a 64-token prefill), the FFN
        // down projection, and the tied Q8_0 output head.
        OpName::MatmulQt => vec![
            Case::quant([1, 576, 1536], GgmlType::Q4_1),
            Case::quant([1, 1536, 576], GgmlType::Q4_1),
            Case::quant([1, 576, 49152], GgmlType::Q8_0),
            Case::quant([64, 576, 1536], GgmlType::Q4_1),
        ],
        OpName::Attention => {
            attention_pair(&[1, 8, 256, 64]).into_iter().chain(attention_pair(&[1, 8, 512, 64])).collect()
        }
        _ => vec![Case::new(op, &[4096, 4096])],
    }
}

fn attention_pair(shape: &[usize]) -> Vec<Case> {
    let plain = Case::new(OpName::Attention, shape);
    vec![plain.clone(), Case { causal: true, ..plain }]
}

/// Reads one `--sizes` entry for `op` (see `BenchArgs::sizes`); `qtype` is matmul_qt's format.
fn resolve(op: OpName, dims: &[usize], qtype: GgmlType) -> Result<Vec<Case>, String> {
    let bad = || format!("size {dims:?} does not fit op {}", op_key(op));
    Ok(match (op, dims) {
        (OpName::Matmul, [n]) => vec![Case::new(op, &[*n, *n, *n])],
        (OpName::Matmul, [_, _, _]) => vec![Case::new(op, dims)],
        (OpName::MatmulQt, &[m, k, n]) if k % qtype.block_size() == 0 => vec![Case::quant([m, k, n], qtype)],
        (OpName::MatmulQt, [_, _, _]) => {
            return Err(format!("matmul_qt {dims:?}: K must be a multiple of {qtype}'s block ({})", qtype.block_size()))
        }
        (OpName::Attention, [t]) => attention_pair(&[1, 8, *t, 64]),
        (OpName::Attention, [_, _, _, _]) => attention_pair(dims),
        // Decode: Tq queries against a cache of Tk keys, no mask.
        (OpName::Attention, [_, _, _, _, _]) => vec![Case::new(op, dims)],
        (OpName::Matmul | OpName::MatmulQt | OpName::Attention, _) => return Err(bad()),
        (_, [n]) => vec![Case::new(op, &[*n, *n])],
        _ => vec![Case::new(op, dims)],
    })
}

type Call = Box<dyn FnMut() -> lamina_tensor::Result<Tensor>>;

/// Builds the inputs once and returns the call to time.
fn prepare(case: &Case, device: Device, dtype: DType) -> Result<Call, Box<dyn std::error::Error>> {
    let randn =
        |shape: &[usize], seed| Tensor::randn(shape, 0.0, 1.0, seed, DType::F32)?.to_dtype(dtype)?.to_device(device);
    let s = case.shape.clone();
    let row = *s.last().unwrap_or(&1);
    Ok(match case.op {
        OpName::Matmul => {
            let (a, b) = (randn(&[s[0], s[1]], 1)?, randn(&[s[1], s[2]], 2)?); // (M, K), (K, N)
            Box::new(move || a.matmul(&b))
        }
        OpName::MatmulQt => {
            let ty = case.qtype.ok_or("matmul_qt needs a weight format")?;
            // Weights of a trained layer's scale; uploaded once, as a model load does.
            let w = Tensor::randn(&[s[2], s[1]], 0.0, 0.05, 2, DType::F32)?; // (N, K)
            let w = QMatrix::from_tensor(&w, ty)?.to_device(device)?;
            let x = Tensor::randn(&[s[0], s[1]], 0.0, 1.0, 1, DType::F32)?.to_device(device)?; // (M, K)
            Box::new(move || x.matmul_qt(&w))
        }
        OpName::Attention => {
            // (B, H, T, D) each, or for a decode shape q (B, H, Tq, D) and k, v (B, H, Tk, D).
            let (qs, kvs) = match s[..] {
                [b, h, tq, tk, d] => (vec![b, h, tq, d], vec![b, h, tk, d]),
                _ => (s.clone(), s.clone()),
            };
            let (q, k, v) = (randn(&qs, 1)?, randn(&kvs, 2)?, randn(&kvs, 3)?);
            let causal = case.causal;
            Box::new(move || scaled_dot_product_attention(&q, &k, &v, None, causal, None))
        }
        OpName::Softmax => {
            let x = randn(&s, 1)?;
            Box::new(move || x.softmax(-1))
        }
        OpName::RmsNorm => {
            let (x, w) = (randn(&s, 1)?, randn(&[row], 2)?);
            Box::new(move || x.rms_norm(Some(&w), 1e-5))
        }
        OpName::LayerNorm => {
            let (x, w, b) = (randn(&s, 1)?, randn(&[row], 2)?, randn(&[row], 3)?);
            Box::new(move || x.layer_norm(Some(&w), Some(&b), 1e-5))
        }
        OpName::Exp => {
            let x = randn(&s, 1)?;
            Box::new(move || x.exp())
        }
        OpName::Add => {
            let (x, y) = (randn(&s, 1)?, randn(&s, 2)?);
            Box::new(move || x.add(&y))
        }
        op => return Err(format!("lamina bench has no case for op {} yet (have: {DEFAULT_OPS})", op_key(op)).into()),
    })
}

// ---- timing --------------------------------------------------------------------------------

struct Timing {
    median: f64,
    min: f64,
    runs: usize,
    inner: usize,
}

/// A batch lasts at least this long, so tiny ops are not timed at the clock's resolution.
pub(crate) const BATCH: Duration = Duration::from_millis(5);

fn time_it(
    call: &mut dyn FnMut() -> lamina_tensor::Result<Tensor>,
    runs: usize,
    sync: &dyn Fn() -> lamina_tensor::Result<()>,
) -> lamina_tensor::Result<Timing> {
    black_box(call()?); // warm-up: first-touch page faults, pool start-up, pipeline compiles
    sync()?;
    time_runs(runs, 10_000, |inner| wall_batch(call, inner, sync))
}

/// Seconds per call of `inner` calls, by the wall clock around a final `sync`.
pub(crate) fn wall_batch(
    call: &mut dyn FnMut() -> lamina_tensor::Result<Tensor>,
    inner: usize,
    sync: &dyn Fn() -> lamina_tensor::Result<()>,
) -> lamina_tensor::Result<f64> {
    let t = Instant::now();
    for _ in 0..inner {
        black_box(call()?);
    }
    sync()?;
    Ok(t.elapsed().as_secs_f64() / inner as f64)
}

/// Seconds per call of `inner` calls: the sum of their kernels' GPU execution intervals
/// (timestamp queries; the adapter must have them).
pub(crate) fn gpu_batch(
    call: &mut dyn FnMut() -> lamina_tensor::Result<Tensor>,
    inner: usize,
    dev: &GpuDevice,
) -> lamina_tensor::Result<f64> {
    dev.start_kernel_timing()?;
    for _ in 0..inner {
        black_box(call()?);
    }
    let kernels = dev.stop_kernel_timing()?;
    Ok(kernels.iter().map(|k| k.seconds).sum::<f64>() / inner as f64)
}

/// Like `time_it`, but each run's time is the sum of its kernels' GPU execution intervals
/// (timestamp queries), per call.
fn time_on_gpu(
    call: &mut dyn FnMut() -> lamina_tensor::Result<Tensor>,
    runs: usize,
    dev: &GpuDevice,
) -> lamina_tensor::Result<Timing> {
    black_box(call()?); // warm-up: pool start-up, pipeline compiles
    dev.sync()?;
    time_runs(runs, 1000, |inner| gpu_batch(call, inner, dev))
}

/// `runs` timed batches of `inner` calls each, `inner` chosen from one call so a batch lasts
/// about `BATCH`; `per_call(inner)` runs a batch and returns its seconds per call.
fn time_runs(
    runs: usize,
    max_inner: usize,
    mut per_call: impl FnMut(usize) -> lamina_tensor::Result<f64>,
) -> lamina_tensor::Result<Timing> {
    let one = per_call(1)?.max(1e-9);
    let inner = (BATCH.as_secs_f64() / one).ceil().clamp(1.0, max_inner as f64) as usize;
    let mut times = (0..runs).map(|_| per_call(inner)).collect::<lamina_tensor::Result<Vec<f64>>>()?;
    times.sort_by(f64::total_cmp);
    Ok(Timing { median: times[times.len() / 2], min: times[0], runs, inner })
}

pub(crate) fn fmt_time(s: f64) -> String {
    match s {
        s if s >= 1.0 => format!("{s:.3} s"),
        s if s >= 1e-3 => format!("{:.3} ms", s * 1e3),
        s => format!("{:.1} us", s * 1e6),
    }
}

// ---- machine peak --------------------------------------------------------------------------

struct Peak {
    /// 1-minute load average before we started.
    load: Option<f64>,
    threads: usize,
    clock_mhz: Option<f64>,
    clock_source: String,
    simd: &'static str,
    lanes: usize,
    pipes: usize,
    flop_per_lane_op: usize,
    gflops: Option<f64>,
    copy_gbs: f64,
    triad_gbs: f64,
    mem_gbs: f64,
}

impl Peak {
    fn detect() -> Peak {
        let load = load_average();
        let threads = lamina_tensor::threads();
        let (clock_mhz, clock_source) = match clock_mhz() {
            Some((mhz, src)) => (Some(mhz), src),
            None => (None, "not found in /proc/cpuinfo or cpufreq".to_string()),
        };
        let (simd, lanes, pipes, flop_per_lane_op) = simd_width();
        let gflops = clock_mhz.map(|m| m / 1e3 * (pipes * lanes * flop_per_lane_op * threads) as f64);
        let (copy_gbs, triad_gbs) = stream(threads);
        Peak {
            load,
            threads,
            clock_mhz,
            clock_source,
            simd,
            lanes,
            pipes,
            flop_per_lane_op,
            gflops,
            copy_gbs,
            triad_gbs,
            mem_gbs: copy_gbs.max(triad_gbs),
        }
    }

    fn print(&self) {
        println!("lamina bench: device cpu, f32, {} threads, engine kernels: {}", self.threads, isa::active().name());
        if let Some(load) = self.load {
            let busy = if load > 0.5 { ": other processes compete for the cores, rates may read low" } else { "" };
            println!("  1-minute load average before the run: {load:.2}{busy}");
        }
        let clock = self.clock_mhz.map_or("? MHz".to_string(), |m| format!("{m:.0} MHz"));
        let peak = self.gflops.map_or("unknown".to_string(), |g| format!("{g:.1} GFLOP/s"));
        println!(
            "compute peak: {clock} x {} FMA pipes x {} f32 lanes ({}) x {} flop x {} threads = {peak}",
            self.pipes, self.lanes, self.simd, self.flop_per_lane_op, self.threads
        );
        println!("  clock from {}; pipes assumed (2 on Zen / Intel big cores)", self.clock_source);
        println!(
            "memory peak: {:.1} GB/s, measured (STREAM-like, {} threads, 3 x 64 MiB arrays, best of 5): copy {:.1} GB/s, triad {:.1} GB/s",
            self.mem_gbs, self.threads, self.copy_gbs, self.triad_gbs
        );
        println!(
            "  memory-bound ops count bytes read + written once (f32); %peak is against the better of copy and triad"
        );
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "threads": self.threads, "engine_isa": isa::active().name(), "load_average_1m": self.load,
            "clock_mhz": self.clock_mhz, "clock_source": self.clock_source,
            "simd": self.simd, "f32_lanes": self.lanes, "fma_pipes_assumed": self.pipes,
            "flop_per_lane_op": self.flop_per_lane_op, "gflops": self.gflops,
            "mem_copy_gbs_measured": self.copy_gbs, "mem_triad_gbs_measured": self.triad_gbs, "mem_gbs": self.mem_gbs,
        })
    }
}

/// The 1-minute load average (Linux), to flag runs that shared the cores with other work.
pub(crate) fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// The core clock: the largest "cpu MHz" in /proc/cpuinfo, else cpufreq's maximum.
fn clock_mhz() -> Option<(f64, String)> {
    if let Some(mhz) = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| max_cpu_mhz(&s)) {
        return Some((mhz, "/proc/cpuinfo \"cpu MHz\" (max over cores)".to_string()));
    }
    let path = "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq";
    let khz: f64 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    Some((khz / 1e3, path.to_string()))
}

/// AMD family 25 (0x19) with AVX-512: Zen 4 (Zen 3, the same family, has no AVX-512).
fn is_zen4(cpuinfo: &str) -> bool {
    let field =
        |name: &str| cpuinfo.lines().find(|l| l.starts_with(name)).and_then(|l| l.split(':').nth(1)).map(str::trim);
    field("vendor_id") == Some("AuthenticAMD") && field("cpu family") == Some("25")
}

fn max_cpu_mhz(cpuinfo: &str) -> Option<f64> {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
        .reduce(f64::max)
}

/// (name, f32 lanes, pipes, flop per lane per op) of the widest vector unit this CPU has.
/// Without FMA the two pipes are one adder and one multiplier: 1 flop per lane each.
fn simd_width() -> (&'static str, usize, usize, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // Zen 4 (AMD family 25) splits each 512-bit FMA over its two 256-bit pipes: the
            // same peak as AVX2. Zen 5 and Intel's server cores issue two 512-bit FMAs.
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            if is_zen4(&cpuinfo) {
                return ("avx-512, 256-bit halves (Zen 4)", 16, 1, 2);
            }
            return ("avx-512", 16, 2, 2);
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return ("avx2+fma", 8, 2, 2);
        }
        if is_x86_feature_detected!("avx") {
            return ("avx, no fma", 8, 2, 1);
        }
        ("sse", 4, 2, 1)
    }
    #[cfg(target_arch = "aarch64")]
    {
        ("neon", 4, 2, 2)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        ("scalar", 1, 2, 2)
    }
}

/// STREAM-like bandwidth in GB/s: (copy `c = a`, triad `a = b + s * c`), best of 5 passes,
/// counting bytes read + written like STREAM does. 3 x 64 MiB dwarfs the caches.
fn stream(threads: usize) -> (f64, f64) {
    const N: usize = 1 << 24;
    let (mut a, b, mut c) = (vec![1.0f32; N], vec![2.0f32; N], vec![0.5f32; N]);
    let chunk = N.div_ceil(threads.max(1));
    let best = |bytes: f64, pass: &mut dyn FnMut()| {
        (0..6)
            .map(|i| {
                let t = Instant::now();
                pass();
                if i == 0 {
                    0.0
                } else {
                    bytes / t.elapsed().as_secs_f64() / 1e9
                } // pass 0 warms up
            })
            .fold(0.0, f64::max)
    };
    let copy = best(2.0 * 4.0 * N as f64, &mut || {
        std::thread::scope(|sc| {
            for (cc, ac) in c.chunks_mut(chunk).zip(a.chunks(chunk)) {
                sc.spawn(move || cc.copy_from_slice(ac));
            }
        })
    });
    let triad = best(3.0 * 4.0 * N as f64, &mut || {
        std::thread::scope(|sc| {
            for ((ac, bc), cc) in a.chunks_mut(chunk).zip(b.chunks(chunk)).zip(c.chunks(chunk)) {
                sc.spawn(move || ac.iter_mut().zip(bc).zip(cc).for_each(|((x, &y), &z)| *x = y + 3.0 * z));
            }
        })
    });
    black_box((&a, &c));
    (copy, triad)
}

// ---- names ---------------------------------------------------------------------------------

/// The catalog name in snake case: `OpName::RmsNorm` -> "rms_norm".
fn op_key(op: OpName) -> String {
    let mut out = String::new();
    for (i, ch) in format!("{op:?}").chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

fn parse_op(s: &str) -> Result<OpName, String> {
    let s = s.trim();
    OpName::ALL
        .iter()
        .copied()
        .find(|&op| op_key(op) == s)
        .filter(|&op| DEFAULT_OPS.split(',').any(|b| b == op_key(op)))
        .ok_or_else(|| format!("no benchmark for op {s:?} (have: {DEFAULT_OPS})"))
}

/// matmul_qt's weight formats: those `QMatrix::from_tensor` can make.
fn parse_qtype(s: &str) -> Result<GgmlType, String> {
    let types = [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0];
    GgmlType::parse_among(s, &types).map_err(|e| format!("--qtype: {e}"))
}

pub(crate) fn parse_dims(s: &str) -> Result<Vec<usize>, String> {
    let dims: Result<Vec<usize>, _> = s.trim().split('x').map(|d| d.trim().parse::<usize>()).collect();
    match dims {
        Ok(d) if !d.is_empty() && d.iter().all(|&x| x > 0) => Ok(d),
        _ => Err(format!("bad size {s:?}: expected N or AxBx.. with positive integers")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_names_round_trip() {
        assert_eq!(op_key(OpName::RmsNorm), "rms_norm");
        for name in DEFAULT_OPS.split(',') {
            assert_eq!(op_key(parse_op(name).unwrap()), name);
        }
        assert!(parse_op("rmsnorm").is_err() && parse_op("cross_entropy").is_err());
    }

    #[test]
    fn sizes_resolve_per_op() {
        assert_eq!(parse_dims("4096x1024").unwrap(), vec![4096, 1024]);
        assert!(parse_dims("0x3").is_err() && parse_dims("a").is_err());
        let q = GgmlType::Q4_1;
        assert_eq!(resolve(OpName::Matmul, &[64], q).unwrap(), vec![Case::new(OpName::Matmul, &[64, 64, 64])]);
        assert_eq!(resolve(OpName::Softmax, &[8], q).unwrap(), vec![Case::new(OpName::Softmax, &[8, 8])]);
        assert_eq!(resolve(OpName::Attention, &[16], q).unwrap().len(), 2);
        assert!(resolve(OpName::Matmul, &[2, 3], q).is_err());
        assert_eq!(resolve(OpName::MatmulQt, &[1, 64, 9], q).unwrap(), vec![Case::quant([1, 64, 9], q)]);
        assert!(resolve(OpName::MatmulQt, &[1, 48, 9], q).unwrap_err().contains("multiple of"));
        assert_eq!(parse_qtype("Q8_0"), Ok(GgmlType::Q8_0));
        assert!(parse_qtype("q4_k").is_err());
    }

    #[test]
    fn attention_flops_halve_when_causal() {
        let [plain, causal] = <[Case; 2]>::try_from(attention_pair(&[1, 8, 256, 64])).unwrap();
        let (Work::Flops(p), Work::Flops(c)) = (plain.work(4), causal.work(4)) else { panic!() };
        assert_eq!(p, 4.0 * 8.0 * 256.0 * 256.0 * 64.0);
        assert_eq!(c, p / 2.0);
    }

    #[test]
    fn clock_parses_from_cpuinfo() {
        let info = "processor\t: 0\ncpu MHz\t\t: 2445.404\nprocessor\t: 1\ncpu MHz\t\t: 1800.0\n";
        assert_eq!(max_cpu_mhz(info), Some(2445.404));
        assert_eq!(max_cpu_mhz("model name: x"), None);
        assert!(is_zen4("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"));
        assert!(!is_zen4("vendor_id\t: GenuineIntel\ncpu family\t: 6\n"));
    }

    #[test]
    fn every_default_op_has_a_case() {
        for name in DEFAULT_OPS.split(',') {
            for case in default_cases(parse_op(name).unwrap()) {
                // Small, but a matmul_qt K stays one whole block.
                let keep = |i: usize, d: usize| if case.op == OpName::MatmulQt && i == 1 { 32 } else { d.min(8) };
                let small = Case { shape: case.shape.iter().enumerate().map(|(i, &d)| keep(i, d)).collect(), ..case };
                let mut call = prepare(&small, Device::Cpu, DType::F32).unwrap();
                call().unwrap();
            }
        }
    }
}
