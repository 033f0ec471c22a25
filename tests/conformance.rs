//! The conformance table: every op in `OpName::ALL`, on awkward shapes, in f32/f16/bf16,
//! with contiguous and strided-view inputs, on every backend present, against the f64
//! reference in `tests/support` (ggml's test-backend-ops, as one table).
//!
//! `LAMINA_CONFORMANCE_STATS=1 cargo test --release -p lamina-verify --test conformance -- --nocapture`
//! prints the worst error of each (op, dtype) in units of the tolerance, to see the headroom.

use lamina_tensor::quant::GgmlType;
use lamina_tensor::{BinaryOp as B, CmpOp, DType, OpName, RopeConvention, Tensor, UnaryOp as U};
use lamina_verify::check::{run_one, tolerance_on};
use lamina_verify::compare::table;
use lamina_verify::data::make_tensor;
use lamina_verify::{Backend, InputLayout, MaskSpec, Problem, Reduction, RefTensor, Values};
use std::collections::{BTreeMap, HashSet};

// ---- the table ---------------------------------------------------------------------------

fn s(v: &[usize]) -> Vec<usize> {
    v.to_vec()
}

/// Awkward shapes: a 4-D prime-sized block (5x7x11x13), non-multiples of 8/16 (17, 33,
/// 65), broadcasts, 0-d scalars, [1], and empty dims.
fn cases() -> Vec<Problem> {
    use Problem as P;
    let mut c = Vec::new();

    // Unary: a big 4-D block, an odd 1-D length, a 0-d scalar, [1], an empty tensor.
    let unary = [
        U::Neg,
        U::Exp,
        U::Log,
        U::Sqrt,
        U::Rsqrt,
        U::Tanh,
        U::Sigmoid,
        U::Relu,
        U::Silu,
        U::GeluTanh,
        U::GeluErf,
        U::Abs,
        U::Recip,
        U::Square,
        U::Powf(2.5),
        U::Powf(3.0),
        U::Powf(-0.5),
        U::Clamp { min: -0.5, max: 0.75 },
        U::Affine { mul: 1.5, add: -0.25 },
    ];
    for op in unary {
        for shape in [s(&[5, 7, 11, 13]), s(&[65]), s(&[]), s(&[1]), s(&[0, 5])] {
            c.push(P::Unary { op, shape, specials: false });
        }
    }
    // IEEE specials where the answer is unambiguous (GELU/SiLU of -inf is not: 0 or NaN).
    for op in [U::Neg, U::Exp, U::Log, U::Sqrt, U::Tanh, U::Sigmoid, U::Relu, U::Abs, U::Recip, U::Square] {
        c.push(P::Unary { op, shape: s(&[17, 33]), specials: true });
    }
    c.push(P::Unary { op: U::Clamp { min: -0.5, max: 0.75 }, shape: s(&[17, 33]), specials: true });

    // Binary: same shape, two-sided broadcast, row broadcast, scalar either side, empty.
    for op in [B::Add, B::Sub, B::Mul, B::Div, B::Maximum, B::Minimum] {
        for (a, b) in [
            (s(&[5, 7, 11, 13]), s(&[5, 7, 11, 13])),
            (s(&[5, 1, 13]), s(&[7, 1])),
            (s(&[17, 33]), s(&[33])),
            (s(&[33]), s(&[17, 33])),
            (s(&[65]), s(&[])),
            (s(&[]), s(&[65])),
            (s(&[1]), s(&[1])),
            (s(&[0, 5]), s(&[5])),
        ] {
            c.push(P::Binary { op, a, b, specials: false });
        }
        c.push(P::Binary { op, a: s(&[17, 33]), b: s(&[17, 33]), specials: true });
    }

    for op in CmpOp::ALL {
        c.push(P::Cmp { op, a: s(&[5, 7, 11]), b: s(&[7, 11]), specials: false });
        c.push(P::Cmp { op, a: s(&[33]), b: s(&[]), specials: false });
        c.push(P::Cmp { op, a: s(&[17, 33]), b: s(&[17, 33]), specials: true });
    }
    for (cond, a, b) in [
        (s(&[5, 1, 13]), s(&[7, 1]), s(&[13])),
        (s(&[17, 33]), s(&[17, 33]), s(&[17, 33])),
        (s(&[]), s(&[65]), s(&[65])),
        (s(&[0, 5]), s(&[5]), s(&[1])),
    ] {
        c.push(P::Where { cond, a, b });
    }
    c.push(P::MaskedFill { x: s(&[5, 7, 13]), mask: s(&[7, 1]), value: -1.5 });
    c.push(P::MaskedFill { x: s(&[17, 33]), mask: s(&[17, 33]), value: f32::NEG_INFINITY });
    c.push(P::MaskedFill { x: s(&[65]), mask: s(&[]), value: 0.0 });

    // Reductions: all axes, last axis kept, two axes, a middle axis, a 1500-long row (two
    // 1024 blocks), empty inputs, 0-d and [1].
    for op in [Reduction::Sum, Reduction::Mean, Reduction::Max, Reduction::Min] {
        let r = |shape: &[usize], axes: &[isize], keepdim| P::Reduce {
            op,
            shape: shape.to_vec(),
            axes: axes.to_vec(),
            keepdim,
            specials: false,
        };
        c.push(r(&[5, 7, 11, 13], &[], false));
        c.push(r(&[5, 7, 11, 13], &[-1], true));
        c.push(r(&[5, 7, 11, 13], &[0, 2], false));
        c.push(r(&[5, 7, 11, 13], &[1], true));
        c.push(r(&[5, 7, 11, 13], &[-1, 0, -1], false)); // mixed signs, a repeat
        c.push(r(&[17, 65], &[0], false));
        c.push(r(&[3, 1500], &[-1], false));
        c.push(r(&[0, 5], &[1], true));
        c.push(r(&[], &[], false));
        c.push(r(&[1], &[0], false));
        if matches!(op, Reduction::Sum | Reduction::Mean) {
            c.push(r(&[0, 5], &[0], false)); // sum of nothing: 0; mean: NaN
        }
        c.push(P::Reduce { op, shape: s(&[7, 13]), axes: vec![-1], keepdim: false, specials: true });
    }

    // Matmul (shared with `lamina kernel check`).
    c.extend(lamina_verify::table::matmul_cases());

    // matmul_qt (x W^T, W in ggml blocks): every block format; one x row (the GPU's
    // matrix-vector kernel), batch dims, more rows than a 64-row tile, odd weight rows,
    // several blocks along K (32-element blocks, and 256 for the K-quants), an empty x.
    for (x, rows, ty) in [
        (s(&[1, 64]), 37, GgmlType::Q4_0),
        (s(&[3, 5, 96]), 33, GgmlType::Q4_1),
        (s(&[70, 64]), 67, GgmlType::Q8_0),
        (s(&[2, 96]), 9, GgmlType::Q5_0),
        (s(&[1, 128]), 40, GgmlType::Q5_1),
        (s(&[5, 512]), 19, GgmlType::Q4K),
        (s(&[1, 256]), 13, GgmlType::Q4K),
        (s(&[3, 512]), 21, GgmlType::Q5K),
        (s(&[66, 256]), 65, GgmlType::Q6K),
        (s(&[1, 512]), 23, GgmlType::Q6K),
        (s(&[0, 64]), 5, GgmlType::Q8_0),
    ] {
        c.push(P::MatmulQt { x, rows, ty });
    }

    for log in [false, true] {
        let normal = Values::Normal(2.0);
        for (shape, dim, values) in [
            (s(&[5, 7, 11, 13]), -1, normal.clone()),
            (s(&[5, 7, 11, 13]), 1, normal.clone()),
            (s(&[17, 65]), -1, Values::AdditiveMask { neg_inf: true }),
            (s(&[17, 65]), -1, Values::Uniform(80.0, 120.0)), // exp overflows f32 past 88.7
            (s(&[3, 1500]), -1, normal.clone()),
            (s(&[]), 0, normal.clone()),
            (s(&[1]), 0, normal.clone()),
            (s(&[0, 5]), -1, normal.clone()),
            (s(&[5, 0]), -1, normal.clone()),
        ] {
            c.push(P::Softmax { shape, dim, log, values });
        }
    }

    for (shape, weight, bias, offset) in [
        (s(&[5, 7, 11, 13]), true, true, 0.0),
        (s(&[17, 65]), true, false, 0.0),
        (s(&[33, 33]), false, false, 0.0),
        (s(&[9, 129]), false, true, 10.0),
        (s(&[4, 1500]), true, true, 0.0),
        (s(&[1, 1]), true, true, 0.0),
        (s(&[0, 5]), true, true, 0.0),
    ] {
        c.push(P::LayerNorm { shape, weight, bias, eps: 1e-5, offset });
    }
    for (shape, weight) in
        [(s(&[5, 7, 11, 13]), true), (s(&[17, 65]), false), (s(&[4, 1500]), true), (s(&[1, 1]), true)]
    {
        c.push(P::RmsNorm { shape, weight, eps: 1e-6 });
    }

    for (n, cl, ignore_index, every) in [
        (17, 33, -100, 0),
        (33, 65, -100, 4),
        (9, 5, 0, 3),    // the ignored id is also a class: drawn 0s are ignored too
        (4, 7, -100, 1), // every row ignored: NaN
        (1, 1, -100, 0),
        (2, 1500, -100, 0),
    ] {
        c.push(P::CrossEntropy { n, c: cl, ignore_index, every });
    }

    c.push(P::Embedding { vocab: 11, dim: 17, ids: s(&[5, 7]) }); // 35 ids of 11: repeats
    c.push(P::Embedding { vocab: 65, dim: 33, ids: s(&[3]) });
    c.push(P::Embedding { vocab: 5, dim: 8, ids: s(&[]) });
    c.push(P::Embedding { vocab: 5, dim: 8, ids: s(&[0]) });
    for (shape, dim, n_ids) in
        [(s(&[5, 7, 11]), 1, 9), (s(&[5, 7, 11]), 0, 3), (s(&[5, 7, 11]), 2, 0), (s(&[17, 33]), 0, 40)]
    {
        c.push(P::IndexSelect { shape: shape.clone(), dim, n_ids });
        c.push(P::IndexAdd { shape, dim, n_ids });
    }
    for (shape, dim, index) in [
        (s(&[5, 7, 11]), 1, s(&[5, 4, 11])),
        (s(&[5, 7, 11]), 2, s(&[3, 7, 6])),
        (s(&[5, 7, 11]), 0, s(&[2, 7, 11])),
        (s(&[17, 33]), 1, s(&[17, 5])),
    ] {
        c.push(P::Gather { shape, dim, index });
    }
    for (shape, dim, index) in
        [(s(&[5, 7, 11]), 1, s(&[5, 9, 11])), (s(&[17, 33]), 0, s(&[40, 33])), (s(&[17, 33]), 1, s(&[17, 5]))]
    {
        c.push(P::ScatterAdd { shape, dim, index });
    }

    for convention in [RopeConvention::Interleaved, RopeConvention::SplitHalves] {
        let rope =
            |shape: &[usize], start, engine_tables| P::Rope { shape: s(shape), convention, start, engine_tables };
        c.push(rope(&[2, 3, 17, 16], 0, false));
        c.push(rope(&[5, 7, 64], 5, false));
        c.push(rope(&[1, 2], 0, false));
        c.push(rope(&[3, 0, 8], 0, false));
        // The engine's own tables (`rope_tables`) against the f64 formula's.
        c.push(rope(&[2, 3, 17, 16], 3, true));
        c.push(rope(&[5, 7, 64], 5, true));
        c.push(rope(&[1, 2], 0, true));
    }

    let att = |b, hq, hkv, tq, tk, d, dv, causal, mask: Option<(&[usize], bool)>, scale| P::Attention {
        b,
        hq,
        hkv,
        tq,
        tk,
        d,
        dv,
        causal,
        mask: mask.map(|(m, neg_inf)| MaskSpec { shape: m.to_vec(), neg_inf }),
        scale,
    };
    c.push(att(2, 4, 2, 5, 7, 8, 8, false, None, None));
    c.push(att(2, 4, 2, 5, 7, 8, 8, true, None, None)); // causal, Tq < Tk (KV cache)
    c.push(att(1, 3, 3, 17, 17, 16, 16, true, None, None));
    c.push(att(2, 4, 2, 5, 7, 8, 8, false, Some((&[5, 7], false)), None));
    c.push(att(2, 4, 2, 5, 7, 8, 8, true, Some((&[2, 1, 5, 7], true)), Some(0.3)));
    c.push(att(1, 6, 1, 9, 9, 33, 17, false, None, None)); // multi-query, odd head dims
    c.push(att(2, 2, 1, 1, 33, 16, 16, true, None, None)); // one decode step
    c.push(att(1, 2, 1, 0, 5, 8, 8, false, None, None)); // no queries

    c.push(P::Dropout { shape: s(&[5, 7, 11, 13]), p: 0.3, seed: 7 });
    c.push(P::Dropout { shape: s(&[65]), p: 0.5, seed: 1 });
    c.push(P::Dropout { shape: s(&[0, 5]), p: 0.1, seed: 3 });

    for to in [DType::F32, DType::F16, DType::BF16, DType::I32] {
        c.push(P::Cast { shape: s(&[5, 7, 11, 13]), to, values: Values::Normal(30.0) });
        c.push(P::Cast { shape: s(&[65]), to, values: Values::Specials });
    }
    c.push(P::Cast { shape: s(&[257]), to: DType::F16, values: Values::Uniform(-7e4, 7e4) }); // overflow to inf
    c.push(P::Cast { shape: s(&[33]), to: DType::U32, values: Values::Uniform(-5.0, 300.0) }); // saturates at 0

    // Bigger than one parallel task (16384 elements / rows_per_task), so the chunking seams
    // are crossed (the matmul rows past the GEMM's blocks are in `matmul_cases`).
    for op in [U::Exp, U::GeluErf, U::Sigmoid] {
        c.push(P::Unary { op, shape: s(&[129, 131]), specials: false });
    }
    c.push(P::Binary { op: B::Add, a: s(&[129, 131]), b: s(&[131]), specials: false });
    c.push(P::Binary { op: B::Mul, a: s(&[129, 131]), b: s(&[129, 131]), specials: false });
    c.push(P::Binary { op: B::Div, a: s(&[129, 1]), b: s(&[131]), specials: false });
    for (op, axes) in [(Reduction::Sum, [0]), (Reduction::Sum, [1]), (Reduction::Max, [1]), (Reduction::Min, [0])] {
        c.push(P::Reduce { op, shape: s(&[129, 131]), axes: axes.to_vec(), keepdim: false, specials: false });
    }
    c.push(P::Softmax { shape: s(&[129, 131]), dim: -1, log: false, values: Values::Normal(2.0) });
    c.push(P::LayerNorm { shape: s(&[300, 65]), weight: true, bias: true, eps: 1e-5, offset: 0.0 });
    c.push(P::RmsNorm { shape: s(&[300, 65]), weight: true, eps: 1e-6 });
    c.push(P::CrossEntropy { n: 300, c: 65, ignore_index: -100, every: 7 });
    c.push(P::Rope { shape: s(&[3, 700, 16]), convention: RopeConvention::Interleaved, start: 0, engine_tables: true });
    c.push(P::Rope {
        shape: s(&[3, 700, 16]),
        convention: RopeConvention::SplitHalves,
        start: 0,
        engine_tables: false,
    });
    c.push(att(1, 2, 1, 65, 65, 32, 32, true, None, None));

    c.push(P::Reshape { shape: s(&[5, 7, 11, 13]), to: s(&[35, 143]) });
    c.push(P::Reshape { shape: s(&[]), to: s(&[1, 1]) });
    c.push(P::Reshape { shape: s(&[0, 5]), to: s(&[5, 0]) });
    c.push(P::Permute { shape: s(&[5, 7, 11, 13]), dims: vec![3, 1, 0, 2] });
    c.push(P::Permute { shape: s(&[17, 33]), dims: vec![1, 0] });
    c.push(P::Narrow { shape: s(&[5, 7, 11, 13]), dim: 2, start: 3, len: 5 });
    c.push(P::Narrow { shape: s(&[17, 33]), dim: 1, start: 4, len: 0 });
    c.push(P::Narrow { shape: s(&[17, 33]), dim: 0, start: 16, len: 1 });
    c.push(P::BroadcastTo { shape: s(&[7, 1]), to: s(&[5, 7, 13]) });
    c.push(P::BroadcastTo { shape: s(&[]), to: s(&[4, 5]) });
    c.push(P::BroadcastTo { shape: s(&[0, 1]), to: s(&[3, 0, 4]) });
    c.push(P::Contiguous { shape: s(&[5, 7, 11, 13]), dims: vec![3, 2, 1, 0] });
    c.push(P::Contiguous { shape: s(&[17, 33]), dims: vec![1, 0] });
    c.push(P::Contiguous { shape: s(&[0, 5]), dims: vec![1, 0] });
    c.push(P::Concat { shapes: vec![s(&[5, 3, 13]), s(&[5, 7, 13]), s(&[5, 0, 13])], dim: 1 });
    c.push(P::Concat { shapes: vec![s(&[17]), s(&[33])], dim: 0 });
    c.push(P::Concat { shapes: vec![s(&[2, 3]), s(&[2, 5])], dim: 1 });
    c.push(P::Concat { shapes: vec![s(&[2, 3]), s(&[2, 5]), s(&[2, 1])], dim: 1 });
    c.push(P::Concat { shapes: vec![s(&[3]), s(&[1]), s(&[4]), s(&[2])], dim: 0 });
    c
}

#[test]
fn conformance() {
    let cases = cases();
    let backends = Backend::all();
    let stats = std::env::var_os("LAMINA_CONFORMANCE_STATS").is_some();
    // Inputs and reference once per (case, dtype): shared by every backend and layout.
    let prepared: Vec<(&Problem, DType, Vec<RefTensor>, RefTensor)> = cases
        .iter()
        .flat_map(|p| DType::FLOATS.into_iter().map(move |dt| (p, dt)))
        .map(|(p, dt)| {
            let xs = p.draw(dt, 0);
            let expected = p.reference(&xs, dt);
            (p, dt, xs, expected)
        })
        .collect();

    let header = [
        "backend",
        "op",
        "case",
        "dtype",
        "layout",
        "nmse",
        "max err/scale",
        "nan≠",
        "inf≠",
        "tol (nmse, max)",
        "note",
    ];
    let mut failures: Vec<Vec<String>> = Vec::new();
    let mut worst: BTreeMap<(String, &'static str), f64> = BTreeMap::new();
    let mut runs = 0usize;
    for &backend in &backends {
        backend.activate();
        for (p, dt, xs, expected) in &prepared {
            let (op, dt) = (p.op(), *dt);
            let tol = tolerance_on(backend, op, p.out_dtype(dt));
            for layout in InputLayout::ALL {
                runs += 1;
                let row = |nmse: String, max: String, nan: String, inf: String, note: String| {
                    vec![
                        backend.name(),
                        format!("{op:?}"),
                        p.label(),
                        dt.name().to_string(),
                        layout.name().to_string(),
                        nmse,
                        max,
                        nan,
                        inf,
                        format!("{:.1e}, {:.1e}", tol.nmse, tol.max_rel),
                        note,
                    ]
                };
                match run_one(backend, p, xs, expected, dt, layout) {
                    Ok(c) => {
                        let headroom = match (c.max_rel(), tol.max_rel) {
                            (0.0, _) => 0.0,
                            (_, 0.0) => f64::INFINITY,
                            (e, t) => e / t,
                        };
                        let w = worst.entry((format!("{op:?}"), dt.name())).or_insert(0.0);
                        *w = w.max(headroom);
                        if !c.passes(tol) {
                            failures.push(row(
                                format!("{:.2e}", c.nmse),
                                format!("{:.2e}", c.max_rel()),
                                c.nan_mismatch.to_string(),
                                c.inf_mismatch.to_string(),
                                format!("{} elements", c.n),
                            ));
                        }
                    }
                    Err(note) => failures.push(row("-".into(), "-".into(), "-".into(), "-".into(), note)),
                }
            }
        }
        backend.deactivate();
    }

    let names: Vec<String> = backends.iter().map(|b| b.name()).collect();
    println!(
        "conformance: {} cases x {} dtypes x {} layouts on {names:?}: {runs} runs, {} failed",
        cases.len(),
        DType::FLOATS.len(),
        InputLayout::ALL.len(),
        failures.len()
    );
    if stats {
        let rows: Vec<Vec<String>> =
            worst.iter().map(|((op, dt), w)| vec![op.clone(), dt.to_string(), format!("{w:.3}")]).collect();
        println!(
            "worst max error as a fraction of its tolerance (EXACT ops: 0 or inf):\n{}",
            table(&["op", "dtype", "worst/tol"], &rows)
        );
    }
    if !failures.is_empty() {
        eprintln!("{}", table(&header, &failures));
        panic!("{} of {runs} conformance runs failed (table above)", failures.len());
    }
}

#[test]
fn every_op_has_a_conformance_case() {
    let covered: HashSet<OpName> = cases().iter().map(|p| p.op()).collect();
    let missing: Vec<OpName> = OpName::ALL.iter().copied().filter(|o| !covered.contains(o)).collect();
    assert!(missing.is_empty(), "ops in OpName::ALL without a conformance case: {missing:?}");
}

/// The strided-view maker really makes non-contiguous views holding the right values.
#[test]
fn strided_views_are_strided() {
    let r = RefTensor::from_fn(&[3, 4, 5], |i| (i[0] * 100 + i[1] * 10 + i[2]) as f64);
    let t = make_tensor(&r, DType::F32, InputLayout::Strided).unwrap();
    assert!(!t.is_contiguous());
    assert_eq!(RefTensor::from_tensor(&t).unwrap(), r);
    let scalar = make_tensor(&RefTensor::scalar(2.5), DType::BF16, InputLayout::Strided).unwrap();
    assert_eq!(scalar.to_vec_f32().unwrap(), vec![2.5]);
}

/// Minimal form of a concat bug this suite found: `cpu::concat` (tensor/src/cpu/index.rs)
/// records each part's offset as `joined.len()` before any part after the first has been
/// appended, so every part from the third on is read from the wrong place. Narrow's
/// backward pads with zeros through `cat` of three parts, so its gradient is wrong too.
#[test]
fn cat_of_three_parts() {
    let t = |v: &[f32]| Tensor::from_slice(v, &[v.len()]).unwrap();
    let out = Tensor::cat(&[&t(&[1.0]), &t(&[2.0, 3.0]), &t(&[4.0])], 0).unwrap();
    assert_eq!(out.to_vec_f32().unwrap(), vec![1.0, 2.0, 3.0, 4.0]);
}
