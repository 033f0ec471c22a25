//! `lamina kernel check`: the contract (at load), then every conformance row of the op in
//! every dtype the kernel accepts and both input layouts, then random cases that proptest
//! shrinks on failure. Each row prints its error statistics and its tolerance (the
//! built-in kernel's on this adapter); a failure prints the first element outside it.

use super::KernelSource;
use clap::Args;
use lamina_tensor::gpu::contract::Family;
use lamina_tensor::DType;
use lamina_verify::compare::table;
use lamina_verify::lab::{check_case, property, CaseReport, PropertyOutcome};
use lamina_verify::{Backend, InputLayout, Problem};

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    source: KernelSource,
    /// Random property cases after the table (0: none)
    #[arg(long, default_value_t = 64)]
    cases: u32,
    /// Seed of the property run (the same seed draws the same cases)
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// The op's conformance rows and its property strategy.
fn problems(op: Family) -> Vec<Problem> {
    match op {
        Family::Matmul => lamina_verify::table::matmul_cases(),
    }
}

pub fn run(args: CheckArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (dev, kernel) = args.source.load()?;
    let op = args.source.op;
    let (bm, bn) = kernel.tile();
    println!(
        "kernel {} ({} contract: docs/kernels/{}.md) passes the binding checks",
        kernel.label(),
        op.name(),
        op.name()
    );
    println!("  tile {bm}x{bn} per workgroup; adapter {}", dev.summary());
    let dtypes: Vec<DType> = DType::FLOATS.into_iter().filter(|d| kernel.supports(*d)).collect();
    let skipped: Vec<DType> = DType::FLOATS.into_iter().filter(|d| !kernel.supports(*d)).collect();
    if !skipped.is_empty() {
        let names = op.dtype_overrides().join(", ");
        println!("  skipping {skipped:?}: the kernel declares none of the overrides {names}, so it is f32-only");
    }
    dev.set_matmul_kernel(Some(kernel.clone()))?;
    let backend = Backend::Gpu(args.source.gpu);

    let mut reports = Vec::new();
    for p in problems(op) {
        for &dt in &dtypes {
            for layout in InputLayout::ALL {
                reports.push(check_case(backend, &p, dt, layout, 0));
            }
        }
    }
    let failed: Vec<&CaseReport> = reports.iter().filter(|r| !r.passed()).collect();
    println!("\nconformance cases (the built-in kernel's; tolerance as for it on this adapter):");
    print!(
        "{}",
        table(&["verdict", "case", "dtype", "layout", "nmse", "max err/scale", "tol (nmse, max)"], &rows(&reports))
    );
    for r in &failed {
        println!("{}", failure(r));
    }

    let prop_run = match args.cases {
        0 => None,
        n => {
            println!(
                "\nproperty: {n} random {} problems (seed {}), dtypes {dtypes:?}, both layouts",
                op.name(),
                args.seed
            );
            let outcome = match op {
                Family::Matmul => property(backend, lamina_verify::strategy::matmul_problem(), &dtypes, n, args.seed),
            };
            match &outcome {
                PropertyOutcome::Passed(n) => println!("  PASS: all {n} cases within tolerance"),
                PropertyOutcome::Failed(r) => {
                    println!("  FAIL; the smallest failing case proptest found:\n{}", failure(r))
                }
                PropertyOutcome::Aborted(why) => println!("  ABORTED: {why}"),
            }
            Some(outcome)
        }
    };
    dev.set_matmul_kernel(None)?;

    let property_ok = prop_run.as_ref().is_none_or(|o| matches!(o, PropertyOutcome::Passed(_)));
    println!(
        "\nverdict: {} ({} of {} conformance runs passed{})",
        if failed.is_empty() && property_ok { "PASS" } else { "FAIL" },
        reports.len() - failed.len(),
        reports.len(),
        match &prop_run {
            None => String::new(),
            Some(PropertyOutcome::Passed(n)) => format!("; {n} property cases passed"),
            Some(_) => "; the property run failed".to_string(),
        }
    );
    if failed.is_empty() && property_ok {
        Ok(())
    } else {
        Err(format!("{} fails `kernel check` (details above)", kernel.label()).into())
    }
}

fn rows(reports: &[CaseReport]) -> Vec<Vec<String>> {
    reports
        .iter()
        .map(|r| {
            let (nmse, max) = match &r.outcome {
                Ok(c) => (format!("{:.2e}", c.nmse), format!("{:.2e}", c.max_rel())),
                Err(_) => ("-".into(), "-".into()),
            };
            let verdict = if r.passed() { "pass" } else { "FAIL" };
            let tol = format!("{:.1e}, {:.1e}", r.tol.nmse, r.tol.max_rel);
            vec![verdict.into(), r.label.clone(), r.dtype.name().into(), r.layout.name().into(), nmse, max, tol]
        })
        .collect()
}

/// A failed case: what ran, the statistics against the tolerance, the first element off.
fn failure(r: &CaseReport) -> String {
    let mut s = format!("  FAIL {} {} {}:", r.label, r.dtype.name(), r.layout.name());
    match &r.outcome {
        Err(why) => s += &format!(" {why}"),
        Ok(c) => {
            s += &format!(
                " nmse {:.2e} (tol {:.1e}), max err/scale {:.2e} (tol {:.1e}), NaN mismatches {}, inf mismatches {}",
                c.nmse,
                r.tol.nmse,
                c.max_rel(),
                r.tol.max_rel,
                c.nan_mismatch,
                c.inf_mismatch
            );
        }
    }
    if let Some(d) = &r.first {
        s += &format!(
            "\n    first differing element: C{:?} = {}, expected {} (|error| {:.3e}, allowed {:.3e})",
            d.index,
            d.got,
            d.want,
            (d.got - d.want).abs(),
            d.allowed
        );
    }
    s
}
