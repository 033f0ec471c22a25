//! Bring your own CPU GEMM micro-kernel: write the register tile, register it, and it runs
//! every CPU matmul in this process through the engine's packed, blocked driver; then the
//! same harness `lamina kernel check` uses puts it through the conformance table's matmul
//! rows (f32, f16, bf16; contiguous and strided operands) and a shrinking property run
//! against the f64 reference, and it is timed against the built-in kernel, interleaved.
//!
//! ```sh
//! cargo run --release --example custom_gemm            # check, then bench at 256 and 512
//! cargo run --release --example custom_gemm -- 1024    # bench sizes of your choice
//! ```
//!
//! The trait and the registration point are `lamina_tensor::cpu::gemm::{GemmMicroKernel,
//! CustomKernel, set_custom_kernel}` (`tensor/src/cpu/gemm/custom.rs` documents the packed
//! panels a kernel reads). The kernel below is a 4 x 16 AVX2+FMA tile (two 8-lane
//! accumulators per row), with a plain Rust twin for CPUs without AVX2.

use lamina_tensor::cpu::gemm::{set_custom_kernel, CustomKernel, GemmMicroKernel};
use lamina_tensor::{DType, Tensor};
use lamina_verify::lab::{check_case, property, PropertyOutcome};
use lamina_verify::{Backend, InputLayout};
use std::time::Instant;

const MR: usize = 4;
const NR: usize = 16;

/// The CPU at its detected level (the registered kernel runs whatever the level).
fn cpu() -> Backend {
    Backend::Cpu(lamina_tensor::cpu::isa::default_level())
}

struct Fma4x16;

impl GemmMicroKernel<MR, NR> for Fma4x16 {
    const NAME: &'static str = "example 4x16 (avx2+fma, portable twin)";

    fn tile(kc: usize, a: &[f32], b: &[f32], acc: &mut [[f32; NR]; MR]) {
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { tile_avx2(kc, a, b, acc) };
        }
        tile_portable(kc, a, b, acc);
    }
}

/// `acc[i][j] = sum_p a[p * MR + i] * b[p * NR + j]`, in 8-lane registers.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(kc: usize, a: &[f32], b: &[f32], acc: &mut [[f32; NR]; MR]) {
    use std::arch::x86_64::*;
    let (a, b) = (&a[..kc * MR], &b[..kc * NR]);
    let mut c = [[_mm256_setzero_ps(); 2]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        // SAFETY: `bp` holds NR = 16 floats: two unaligned 8-float loads.
        let (b0, b1) = unsafe { (_mm256_loadu_ps(bp.as_ptr()), _mm256_loadu_ps(bp.as_ptr().add(8))) };
        for (ci, &ai) in c.iter_mut().zip(ap) {
            let ai = _mm256_set1_ps(ai);
            ci[0] = _mm256_fmadd_ps(ai, b0, ci[0]);
            ci[1] = _mm256_fmadd_ps(ai, b1, ci[1]);
        }
    }
    for (row, ci) in acc.iter_mut().zip(&c) {
        // SAFETY: `row` holds NR = 16 floats: two unaligned 8-float stores.
        unsafe {
            _mm256_storeu_ps(row.as_mut_ptr(), ci[0]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), ci[1]);
        }
    }
}

fn tile_portable(kc: usize, a: &[f32], b: &[f32], acc: &mut [[f32; NR]; MR]) {
    *acc = [[0.0; NR]; MR];
    for (ap, bp) in a[..kc * MR].chunks_exact(MR).zip(b[..kc * NR].chunks_exact(NR)) {
        for (row, &ai) in acc.iter_mut().zip(ap) {
            row.iter_mut().zip(bp).for_each(|(c, &bj)| *c = ai.mul_add(bj, *c));
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|s| s.parse()).collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() { vec![256, 512] } else { sizes };
    let mine = CustomKernel::new::<MR, NR, Fma4x16>()?;
    set_custom_kernel(Some(mine));
    println!("registered {}: every CPU matmul now runs it", mine.name());

    // The conformance table's matmul rows, every float dtype, both operand layouts.
    let mut failed = 0;
    let rows = lamina_verify::table::matmul_cases();
    for p in &rows {
        for dt in DType::FLOATS {
            for layout in InputLayout::ALL {
                let r = check_case(cpu(), p, dt, layout, 0);
                if !r.passed() {
                    failed += 1;
                    println!(
                        "FAIL {} {dt} {}: {:?}, first differing element {:?}",
                        r.label,
                        layout.name(),
                        r.outcome,
                        r.first
                    );
                }
            }
        }
    }
    let runs = rows.len() * DType::FLOATS.len() * InputLayout::ALL.len();
    println!("conformance: {} of {runs} runs passed", runs - failed);
    // Random problems, shrunk to the smallest failing one if any fails.
    match property(cpu(), lamina_verify::strategy::matmul_problem(), &DType::FLOATS, 64, 0) {
        PropertyOutcome::Passed(n) => println!("property: {n} random cases passed"),
        PropertyOutcome::Failed(r) => {
            failed += 1;
            println!("property FAIL, smallest case: {} {}: {:?} at {:?}", r.label, r.dtype, r.outcome, r.first);
        }
        PropertyOutcome::Aborted(why) => return Err(why.into()),
    }
    if failed > 0 {
        return Err(format!("{} fails the check: not timed", mine.name()).into());
    }
    bench(mine, &sizes)
}

/// The built-in kernel and the registered one in alternating rounds (the machine's load
/// hits both alike), on the same inputs; the median of 5 rounds each.
fn bench(mine: CustomKernel, sizes: &[usize]) -> Result<(), Box<dyn std::error::Error>> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).unwrap_or("?");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    println!("\nbench on{model}, {} threads, load average {}", lamina_tensor::threads(), load.join(" "));
    println!("{:>6}  {:>14}  {:>14}  {:>6}", "n", "built-in", "yours", "ratio");
    for &n in sizes {
        let a = Tensor::randn(&[n, n], 0.0, 1.0, 1, DType::F32)?;
        let b = Tensor::randn(&[n, n], 0.0, 1.0, 2, DType::F32)?;
        let time = |k: Option<CustomKernel>| -> Result<f64, Box<dyn std::error::Error>> {
            set_custom_kernel(k);
            let calls = (2e9 / (2.0 * (n as f64).powi(3))).clamp(1.0, 200.0) as usize;
            let t = Instant::now();
            for _ in 0..calls {
                std::hint::black_box(a.matmul(&b)?);
            }
            Ok(t.elapsed().as_secs_f64() / calls as f64)
        };
        time(None)?; // warm-up
        let (mut builtin, mut yours) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            builtin.push(time(None)?);
            yours.push(time(Some(mine))?);
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let gflops = |s: f64| 2.0 * (n as f64).powi(3) / s / 1e9;
        let (tb, ty) = (median(&mut builtin), median(&mut yours));
        println!("{n:>6}  {:>8.1} GFLOP/s  {:>8.1} GFLOP/s  {:>5.2}x", gflops(tb), gflops(ty), tb / ty);
    }
    set_custom_kernel(None);
    Ok(())
}
