//! A researcher's CPU GEMM micro-kernel through the harness `lamina kernel check` uses
//! (`GemmMicroKernel`, `set_custom_kernel`; `examples/custom_gemm.rs` is the worked
//! example): a correct one passes the matmul conformance rows and the property run; one
//! that drops the k steps past the last multiple of 4 fails, and the property run shrinks
//! it to the smallest case, 1x1 times 1x1. One test: the registration is process-wide.

use lamina_tensor::cpu::gemm::{custom_kernel, set_custom_kernel, CustomKernel, GemmMicroKernel};
use lamina_tensor::DType;
use lamina_verify::lab::{check_case, property, PropertyOutcome};
use lamina_verify::{Backend, InputLayout};

const MR: usize = 3;
const NR: usize = 8;

/// The CPU at its detected level (the registered kernel runs whatever the level).
fn cpu() -> Backend {
    Backend::Cpu(lamina_tensor::cpu::isa::default_level())
}

/// Plain sums, in k order.
struct Plain;

impl GemmMicroKernel<MR, NR> for Plain {
    const NAME: &'static str = "plain 3x8";
    const KC: usize = 64;
    fn tile(kc: usize, a: &[f32], b: &[f32], acc: &mut [[f32; NR]; MR]) {
        *acc = [[0.0; NR]; MR];
        for p in 0..kc {
            for (i, row) in acc.iter_mut().enumerate() {
                row.iter_mut().enumerate().for_each(|(j, c)| *c += a[p * MR + i] * b[p * NR + j]);
            }
        }
    }
}

/// Unrolled by 4 with the remainder loop forgotten: right whenever k is a multiple of 4.
struct Unrolled;

impl GemmMicroKernel<MR, NR> for Unrolled {
    const NAME: &'static str = "unrolled 3x8 (bug)";
    const KC: usize = 64;
    fn tile(kc: usize, a: &[f32], b: &[f32], acc: &mut [[f32; NR]; MR]) {
        *acc = [[0.0; NR]; MR];
        for p in (0..kc / 4 * 4).step_by(4) {
            for q in p..p + 4 {
                for (i, row) in acc.iter_mut().enumerate() {
                    row.iter_mut().enumerate().for_each(|(j, c)| *c += a[q * MR + i] * b[q * NR + j]);
                }
            }
        }
    }
}

/// (runs that failed, runs) over the matmul conformance rows, every float dtype and layout.
fn conformance() -> (usize, usize) {
    let rows = lamina_verify::table::matmul_cases();
    let mut failed = 0;
    for p in &rows {
        for dt in DType::FLOATS {
            for layout in InputLayout::ALL {
                failed += usize::from(!check_case(cpu(), p, dt, layout, 0).passed());
            }
        }
    }
    (failed, rows.len() * DType::FLOATS.len() * InputLayout::ALL.len())
}

fn property_run() -> PropertyOutcome {
    property(cpu(), lamina_verify::strategy::matmul_problem(), &DType::FLOATS, 24, 0)
}

#[test]
fn a_registered_micro_kernel_runs_every_cpu_matmul_and_is_checked() {
    let plain = CustomKernel::new::<MR, NR, Plain>().unwrap();
    set_custom_kernel(Some(plain));
    assert_eq!(conformance().0, 0, "a correct kernel fails");
    assert!(matches!(property_run(), PropertyOutcome::Passed(24)));

    set_custom_kernel(Some(CustomKernel::new::<MR, NR, Unrolled>().unwrap()));
    let (failed, runs) = conformance();
    assert!(failed > 0 && failed < runs, "{failed} of {runs}: the bug hides in some rows only");
    let PropertyOutcome::Failed(r) = property_run() else { panic!("the property run missed the bug") };
    // Any k under 4 loses every product: the smallest failing case is 1x1 times 1x1.
    assert_eq!(r.label, "matmul [1,1] [1,1]", "not shrunk to the smallest case");
    assert!(r.first.is_some(), "names the first differing element: {r:?}");

    // Back to the engine's own kernels; a tile the driver cannot hold is refused.
    assert_eq!(set_custom_kernel(None).map(|k| k.name()), Some("unrolled 3x8 (bug)"));
    assert!(custom_kernel().is_none() && conformance().0 == 0);
    struct Huge;
    impl GemmMicroKernel<32, 32> for Huge {
        const NAME: &'static str = "huge";
        fn tile(_: usize, _: &[f32], _: &[f32], _: &mut [[f32; 32]; 32]) {}
    }
    let err = CustomKernel::new::<32, 32, Huge>().unwrap_err().to_string();
    assert!(err.contains("huge") && err.contains("exceeds"), "{err}");
}
