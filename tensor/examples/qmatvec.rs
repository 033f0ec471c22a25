//! Micro-benchmark of `Tensor::matmul_qt` (quantized weights) against the f32 GEMM on the
//! same shapes: SmolLM2-135M's projections and its output head, decode (m = 1) and
//! prefill (m = 64).
//!
//!     cargo run --release -p lamina-tensor --example qmatvec [-- portable] [-- quick] [-- gpu]
//!
//! `gpu` runs on GPU 0 instead (each call timed up to a device sync).
//! Prints time per call (best and median of repeats), and from the best time GB/s of
//! weight bytes streamed and GFLOP/s (2 m rows cols per call). Threads: LAMINA_THREADS
//! (default: all cores).

use lamina_tensor::cpu::isa::{self, Isa};
use lamina_tensor::gpu::GpuDevice;
use lamina_tensor::quant::{GgmlType, QMatrix};
use lamina_tensor::{no_grad, threads, DType, Device, Tensor};
use std::time::{Duration, Instant};

/// (best, median) seconds per call of `f`, repeated for about `budget` after a warm-up.
fn time(budget: Duration, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (samples[0], samples[samples.len() / 2])
}

fn main() -> lamina_tensor::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "portable") {
        isa::force(Some(Isa::Portable));
    }
    let budget = Duration::from_millis(if args.iter().any(|a| a == "quick") { 150 } else { 600 });
    let (device, gpu) = if args.iter().any(|a| a == "gpu") {
        let dev = GpuDevice::get(0)?;
        println!("gpu:0 {}", dev.summary());
        (Device::Gpu(0), Some(dev))
    } else {
        println!("isa {}, {} threads", isa::active().name(), threads());
        (Device::Cpu, None)
    };
    let sync = || gpu.as_ref().map_or(Ok(()), |d| d.sync());
    println!(
        "{:>11} {:>3} {:>5} {:>7} {:>9} {:>9} {:>7} {:>8}",
        "rows x cols", "m", "type", "MB", "best us", "median us", "GB/s", "GFLOP/s"
    );
    for (rows, cols) in [(1536, 576), (576, 1536), (49152, 576)] {
        let w = Tensor::randn(&[rows, cols], 0.0, 0.05, 1, DType::F32)?;
        for m in [1, 64] {
            let x = Tensor::randn(&[m, cols], 0.0, 1.0, 2, DType::F32)?.to_device(device)?;
            let flops = 2.0 * (m * rows * cols) as f64;
            let report = |name: &str, bytes: usize, (best, median): (f64, f64)| {
                println!(
                    "{:>11} {m:>3} {name:>5} {:>7.2} {:>9.1} {:>9.1} {:>7.1} {:>8.1}",
                    format!("{rows}x{cols}"),
                    bytes as f64 / 1e6,
                    best * 1e6,
                    median * 1e6,
                    bytes as f64 / best / 1e9,
                    flops / best / 1e9
                )
            };
            for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_0] {
                let q = QMatrix::from_tensor(&w, ty)?.to_device(device)?;
                let secs = no_grad(|| time(budget, || drop((x.matmul_qt(&q).unwrap(), sync().unwrap()))));
                report(ty.name(), q.n_bytes(), secs);
            }
            let wt = w.to_device(device)?.t()?;
            let secs = no_grad(|| time(budget, || drop((x.matmul(&wt).unwrap(), sync().unwrap()))));
            report("f32", rows * cols * 4, secs);
        }
    }
    Ok(())
}
