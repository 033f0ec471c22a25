//! Criterion benches of the CPU kernels through the public `Tensor` API: `cargo bench`
//! (or `cargo bench --bench ops -- softmax` for one group).
//!
//! Rates: matmul and attention report `Throughput::Elements(flops)`, so criterion's
//! "Gelem/s" reads as GFLOP/s; the memory-bound ops report `Throughput::Bytes` of what they
//! must read and write once. Threads: $LAMINA_THREADS, else all cores. `lamina bench`
//! gives the same numbers as a fraction of the machine's peak.
//!
//! Measurement is kept short (0.5 s warm-up, 2 s measuring, 10 samples) so the whole run
//! takes a few minutes on two cores; this VM varies +-25% between runs, so compare
//! implementations within one run (as the `simd_vs_portable` group does).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use lamina_tensor::cpu::isa::{self, Isa};
use lamina_tensor::{scaled_dot_product_attention, DType, Tensor};
use std::hint::black_box;
use std::time::Duration;

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, seed, DType::F32).unwrap()
}

/// (M, K) @ (K, N) with M = K = N = n: 2 n^3 flops.
fn matmul(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul");
    g.sampling_mode(SamplingMode::Flat); // one call is 0.3 ms .. 0.2 s: no need for linear batches
    for n in [256usize, 512, 1024, 2048] {
        let (a, b) = (randn(&[n, n], 1), randn(&[n, n], 2));
        if n == 2048 {
            g.measurement_time(Duration::from_secs(4)); // 10 calls of ~0.15 s (more on a busy VM)
        }
        g.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |bch| bch.iter(|| black_box(a.matmul(&b).unwrap())));
    }
    g.finish();
}

/// Row ops over (rows, cols) f32: bytes = input read + output written (+ the weight row).
fn rows(c: &mut Criterion) {
    const SHAPES: [[usize; 2]; 2] = [[4096, 1024], [4096, 4096]];
    let mut g = c.benchmark_group("softmax");
    for [r, n] in SHAPES {
        let x = randn(&[r, n], 1);
        g.throughput(Throughput::Bytes(2 * 4 * (r * n) as u64));
        g.bench_function(format!("{r}x{n}"), |bch| bch.iter(|| black_box(x.softmax(-1).unwrap())));
    }
    g.finish();
    let mut g = c.benchmark_group("rms_norm");
    for [r, n] in SHAPES {
        let (x, w) = (randn(&[r, n], 1), randn(&[n], 2));
        g.throughput(Throughput::Bytes(4 * (2 * r * n + n) as u64));
        g.bench_function(format!("{r}x{n}"), |bch| bch.iter(|| black_box(x.rms_norm(Some(&w), 1e-5).unwrap())));
    }
    g.finish();
}

/// q, k, v: (B, H, T, D) = (1, 8, T, 64); flops = 4 B H T^2 D, halved with the causal mask.
fn attention(c: &mut Criterion) {
    let mut g = c.benchmark_group("attention");
    g.sampling_mode(SamplingMode::Flat);
    for (t, causal) in [(128, false), (256, false), (512, false), (512, true)] {
        let s = [1, 8, t, 64];
        let (q, k, v) = (randn(&s, 1), randn(&s, 2), randn(&s, 3));
        let flops = 4 * 8 * t * t * 64 / if causal { 2 } else { 1 };
        g.throughput(Throughput::Elements(flops as u64));
        let id = format!("B1_H8_T{t}_D64{}", if causal { "_causal" } else { "" });
        g.bench_function(id, |bch| {
            bch.iter(|| black_box(scaled_dot_product_attention(&q, &k, &v, None, causal, None).unwrap()))
        });
    }
    g.finish();
}

/// The same calls with the SIMD kernels and with the portable twins (`isa::force`),
/// back to back in one run so the VM's drift hits both alike.
fn simd_vs_portable(c: &mut Criterion) {
    let mut g = c.benchmark_group("simd_vs_portable");
    let (a, b) = (randn(&[256, 256], 1), randn(&[256, 256], 2));
    let x = randn(&[4096, 1024], 3);
    let paths = [("simd", isa::detected()), ("portable", Isa::Portable)];
    for (name, path) in paths {
        isa::force(Some(path));
        g.throughput(Throughput::Elements(2 * 256 * 256 * 256));
        g.bench_function(format!("matmul_256/{name}"), |bch| bch.iter(|| black_box(a.matmul(&b).unwrap())));
        g.throughput(Throughput::Bytes(2 * 4 * 4096 * 1024));
        g.bench_function(format!("softmax_4096x1024/{name}"), |bch| bch.iter(|| black_box(x.softmax(-1).unwrap())));
    }
    isa::force(None);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10)
}

criterion_group! {
    name = benches;
    config = config();
    targets = matmul, rows, attention, simd_vs_portable
}
criterion_main!(benches);
