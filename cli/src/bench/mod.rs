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
//!
//! `--roofline FILE.svg` puts every case on its device's roofline (`roofline.rs`), for the
//! CPU and each GPU adapter; `peak.rs` measures the CPU's ceilings.

mod peak;
mod roofline;

use clap::Args;
use lamina_tensor::cpu::isa;
use lamina_tensor::gpu::{self, GpuDevice};
use lamina_tensor::quant::{GgmlType, QMatrix};
use lamina_tensor::{scaled_dot_product_attention, DType, Device, OpName, Tensor};
use peak::Peak;
pub(crate) use peak::{cpu_model, load_average};
use roofline::{Ceilings, Point, Roofline};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// Default: cpu (with --roofline: the CPU and every GPU adapter, one after the other)
    #[arg(long)]
    pub device: Option<Device>,
    /// Timed batches per case; the median is reported
    #[arg(long, default_value_t = 10)]
    pub repeat: usize,
    /// Element type of the float ops' inputs and outputs: f32, f16 or bf16 (matmul_qt's x
    /// stays f32). On a GPU with shader-f16, f16 matmuls compute in f16 (matmul_f16.wgsl);
    /// `LAMINA_GPU_DISABLE=f16` times the f32-math path instead
    #[arg(long, default_value = "f32", value_parser = parse_float_dtype)]
    pub dtype: DType,
    /// Also draw every measured case on its device's roofline (arithmetic intensity against
    /// GFLOP/s, under the compute and bandwidth ceilings: the CPU's compute ceiling stated
    /// from its clock, its bandwidth measured by STREAM; a GPU's bandwidth measured by an add
    /// kernel, its compute ceiling unknown) into this SVG, one panel per device; with --json,
    /// the same points and ceilings under `roofline` (and one object per device under
    /// `devices` when there are several)
    #[arg(long, value_name = "FILE.svg")]
    pub roofline: Option<PathBuf>,
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
    let cases = cases(&args)?;
    let peak = Peak::detect();
    if !args.json {
        peak.print();
    }
    // With --roofline and no --device: the CPU and every GPU adapter.
    let devices = match (args.device, &args.roofline) {
        (Some(d), _) => vec![d],
        (None, Some(_)) => std::iter::once(Device::Cpu).chain((0..gpu::adapters().len()).map(Device::Gpu)).collect(),
        (None, None) => vec![Device::Cpu],
    };
    let mut runs = Vec::new();
    for device in devices {
        runs.push(bench_device(device, &cases, &args, &peak)?);
    }
    if let Some(path) = &args.roofline {
        let lines: Vec<Roofline> = runs.iter().filter_map(|r| r.roofline.clone()).collect();
        crate::plot::save(path, &roofline::svg(&lines))?;
        if !args.json {
            println!("\nroofline of {} device(s) written to {}", lines.len(), path.display());
        }
    }
    if args.json {
        let mut objects: Vec<serde_json::Value> = runs.into_iter().map(|r| r.json).collect();
        let out = match objects.len() {
            1 => objects.remove(0),
            _ => serde_json::json!({ "devices": objects }),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// The cases `--ops` and `--sizes` name.
fn cases(args: &BenchArgs) -> Result<Vec<Case>, Box<dyn std::error::Error>> {
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
    Ok(cases)
}

/// One device's results: the JSON object `--json` prints and its roofline.
struct DeviceRun {
    json: serde_json::Value,
    roofline: Option<Roofline>,
}

/// Times every case on `device`, printing the table unless `--json`.
fn bench_device(
    device: Device,
    cases: &[Case],
    args: &BenchArgs,
    peak: &Peak,
) -> Result<DeviceRun, Box<dyn std::error::Error>> {
    // The GPU's own clock, when it has timestamp queries: kernel time without the host's
    // recording, submission and wake-up latency.
    let gpu = match device {
        Device::Gpu(n) => Some(GpuDevice::get(n)?),
        Device::Cpu => None,
    };
    // Waits for the device's queued work, so a GPU timing covers execution, not recording.
    let sync = || gpu.as_ref().map_or(Ok(()), |d| d.sync());
    let timestamps = gpu.as_ref().is_some_and(|d| d.summary().timestamp_query);
    let clock = match (&gpu, timestamps) {
        (None, _) => "wall",
        (Some(_), true) => "gpu-timestamps",
        (Some(_), false) => "wall-around-sync",
    };
    if !args.json {
        print_device_header(device, gpu.as_deref(), timestamps);
    }
    let mut rows = Vec::new();
    let mut points = Vec::new();
    for case in cases {
        let mut call = prepare(case, device, args.dtype)?;
        let t = match gpu.as_ref().filter(|_| timestamps) {
            Some(dev) => time_on_gpu(&mut *call, args.repeat.max(1), dev)?,
            None => time_it(&mut *call, args.repeat.max(1), &sync)?,
        };
        let elem = args.dtype.size_in_bytes();
        let (rate, unit, peak_rate) = match case.work(elem) {
            Work::Flops(f) => (f / t.median / 1e9, "GFLOP/s", peak.gflops),
            Work::Bytes(b) => (b / t.median / 1e9, "GB/s", Some(peak.mem_gbs)),
        };
        let peak_rate = if device == Device::Cpu { peak_rate } else { None };
        let frac = peak_rate.map(|p| rate / p);
        if !args.json {
            print_row(case, &t, (rate, unit), frac);
        }
        let label = format!("{} {}", op_key(case.op), case.label());
        points.push(Point { label, intensity: case.flops() / case.bytes(elem), gflops: case.flops() / t.median / 1e9 });
        rows.push(serde_json::json!({
            "op": op_key(case.op), "shape": case.shape, "causal": case.causal, "label": case.label(),
            "qtype": case.qtype.map(|t| t.name()),
            "median_s": t.median, "min_s": t.min, "runs": t.runs, "calls_per_run": t.inner, "clock": clock,
            "rate": rate, "unit": unit, "peak_fraction": frac,
        }));
    }
    let mut json = serde_json::json!({
        "device": device.name(), "dtype": args.dtype.to_string(), "clock": clock,
        "kernels": gpu.as_ref().map(|d| d.kernel_paths()), "peak": peak.to_json(), "results": rows,
    });
    let roofline = match (&args.roofline, &gpu) {
        (None, _) => None,
        (Some(_), None) => {
            Some(Roofline { device: device_title(device, None, peak), points, ceilings: peak.ceilings() })
        }
        (Some(_), Some(dev)) => {
            let ceilings = gpu_ceilings(dev, args.repeat.max(1))?;
            Some(Roofline { device: device_title(device, Some(dev), peak), points, ceilings })
        }
    };
    if let Some(r) = &roofline {
        json["roofline"] = r.json();
    }
    Ok(DeviceRun { json, roofline })
}

/// One row of the table: the case, its median time, its rate and the fraction of peak.
fn print_row(case: &Case, t: &Timing, (rate, unit): (f64, &str), frac: Option<f64>) {
    let pct = frac.map_or("-".to_string(), |f| format!("{:.0}%", f * 100.0));
    let runs = format!("{}x{}", t.runs, t.inner);
    // Three decimals below 1 (a software adapter's GB/s), else one.
    let rate = if rate < 1.0 { format!("{rate:.3} {unit}") } else { format!("{rate:.1} {unit}") };
    println!(
        "{:<11} {:<28} {:>10}  {:>17}  {:>6}  {:>7}",
        op_key(case.op),
        case.label(),
        fmt_time(t.median),
        rate,
        pct,
        runs
    );
}

fn print_device_header(device: Device, gpu: Option<&GpuDevice>, timestamps: bool) {
    if let Some(dev) = gpu {
        println!("\ndevice {device}: {}", dev.summary());
        println!("  kernels: {}", dev.kernel_paths());
        if timestamps {
            println!("  times: the kernels' execution on the GPU, from timestamp queries around each dispatch (summed over an op's dispatches); the adapter's peak is not known, so no %peak");
        } else {
            println!("  times: wall-clock around a device sync (this adapter has no timestamp queries); the adapter's peak is not known, so no %peak");
        }
    } else {
        println!("\ndevice cpu");
    }
    println!("{:<11} {:<28} {:>10}  {:>17}  {:>6}  {:>7}", "op", "shape", "median", "rate", "%peak", "runs");
}

/// The panel's title: the adapter's name, or the CPU's model, threads and kernels.
fn device_title(device: Device, gpu: Option<&Arc<GpuDevice>>, peak: &Peak) -> String {
    match gpu {
        Some(dev) => format!("{device}, {}", dev.summary().name),
        None => {
            let model = peak.model.as_deref().unwrap_or("CPU model unknown");
            format!("cpu ({model}), {} threads, {} kernels", lamina_tensor::threads(), isa::active().name())
        }
    }
}

/// A GPU adapter's ceilings: bandwidth measured with Lamina's own `add` kernel on three
/// 16 MiB f32 arrays (a lower bound on what its memory can do); compute not known (wgpu
/// reports neither the clock nor the ALU count).
fn gpu_ceilings(dev: &Arc<GpuDevice>, repeat: usize) -> Result<Ceilings, Box<dyn std::error::Error>> {
    let case = Case::new(OpName::Add, &[2048, 2048]);
    let mut call = prepare(&case, Device::Gpu(dev.ordinal()), DType::F32)?;
    let t = match dev.summary().timestamp_query {
        true => time_on_gpu(&mut *call, repeat, dev)?,
        false => time_it(&mut *call, repeat, &|| dev.sync())?,
    };
    Ok(Ceilings {
        gflops: None,
        compute_source: "wgpu reports no clock or ALU count".into(),
        gbs: Some(case.bytes(4) / t.median / 1e9),
        bandwidth_source: "measured: the add kernel on 3 x 16 MiB (a lower bound)".into(),
    })
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

    /// How the case is rated: compute-bound ops by their flops, memory-bound ones by the
    /// bytes they must read and write once (elements of `elem` bytes).
    fn work(&self, elem: usize) -> Work {
        match self.op {
            // One row of x streams the weights once: rated by the bytes of blocks it reads.
            OpName::MatmulQt if self.shape[0] == 1 => Work::Bytes(self.weight_bytes()),
            OpName::Matmul | OpName::MatmulQt | OpName::Attention => Work::Flops(self.flops()),
            _ => Work::Bytes(self.bytes(elem)),
        }
    }

    /// The arithmetic the op must do. Products: 2 flops per multiply-add. Row and
    /// elementwise ops: the reference formula's operations per element, an `exp` counting
    /// one (add 1, exp 1, softmax 5: max, subtract, exp, sum, divide; rms_norm 4: square,
    /// sum, scale, weight; layer_norm 7: sum, subtract, square, sum, scale, weight, bias).
    fn flops(&self) -> f64 {
        let s: Vec<f64> = self.shape.iter().map(|&d| d as f64).collect();
        let n: f64 = s.iter().product();
        match self.op {
            OpName::Matmul | OpName::MatmulQt => 2.0 * n,
            // QK^T and PV: 2 * T * T * D flops each per (b, h); causal skips half the scores.
            // Decode shapes (B, H, Tq, Tk, D): 2 * Tq * Tk * D each.
            OpName::Attention if s.len() == 5 => 4.0 * n,
            OpName::Attention => 4.0 * n * s[2] / if self.causal { 2.0 } else { 1.0 },
            OpName::Softmax => 5.0 * n,
            OpName::RmsNorm => 4.0 * n,
            OpName::LayerNorm => 7.0 * n,
            _ => n,
        }
    }

    /// The compulsory traffic: every input read once, the output written once (floats of
    /// `elem` bytes; matmul_qt's activations and output are f32, its weights blocks).
    fn bytes(&self, elem: usize) -> f64 {
        let e = elem as f64;
        let s: Vec<f64> = self.shape.iter().map(|&d| d as f64).collect();
        let n: f64 = s.iter().product();
        let row = s.last().copied().unwrap_or(1.0);
        match self.op {
            OpName::Matmul => e * (s[0] * s[1] + s[1] * s[2] + s[0] * s[2]),
            OpName::MatmulQt => self.weight_bytes() + 4.0 * (s[0] * s[1] + s[0] * s[2]),
            // q and the output (B, H, Tq, D); k and v (B, H, Tk, D).
            OpName::Attention if s.len() == 5 => e * s[0] * s[1] * s[4] * 2.0 * (s[2] + s[3]),
            OpName::Attention => 4.0 * e * n,
            OpName::Add => 3.0 * e * n,
            OpName::RmsNorm => e * (2.0 * n + row),
            OpName::LayerNorm => e * (2.0 * n + 2.0 * row),
            _ => 2.0 * e * n,
        }
    }

    /// matmul_qt's weight blocks: (N, K) in its format.
    fn weight_bytes(&self) -> f64 {
        let ty = self.qtype.expect("matmul_qt has a format");
        (self.shape[2] * self.shape[1] * ty.type_size() / ty.block_size()) as f64
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
