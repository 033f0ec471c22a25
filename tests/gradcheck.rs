//! Gradient checks: the engine's autograd (f32) against central finite differences of the
//! f64 reference, for every differentiable op, with contiguous and strided leaves; then
//! the mechanics of the tape (accumulation, zero_grad, detach, no_grad, errors).
//!
//! Loss L = sum(out * w) with fixed random weights w (quantised to the output dtype, as
//! `backward_with` would store them), so dL/dx = J^T w checks every output's row of J.

use lamina_tensor::quant::GgmlType;
use lamina_tensor::{no_grad, BinaryOp as B, DType, Error, OpName, RopeConvention, Tensor, UnaryOp as U};
use lamina_verify::compare::table;
use lamina_verify::data::{quantize, Rng};
use lamina_verify::fd::{check_grad, numeric_grad, GradTol};
use lamina_verify::{Backend, InputLayout, MaskSpec, Problem, Reduction, RefTensor, Values};
use std::collections::HashSet;

/// Finite-difference step, in f64: truncation error ~h^2 f''' ~ 1e-12, cancellation
/// ~1e-16 |L| / h ~ 1e-9 — both far below the tolerance.
const H: f64 = 1e-6;

/// f32 autograd against f64 differences: 1e-3 relative per element, plus a floor of
/// 1e-4 of the gradient's largest element (an f32 chain of a few ops is ~1e-6 off; a
/// wrong rule is off by O(1)) and 1e-6 absolute for all-zero gradients.
const TOL: GradTol = GradTol { rtol: 1e-3, atol_scale: 1e-4, atol: 1e-6 };

fn s(v: &[usize]) -> Vec<usize> {
    v.to_vec()
}

/// Small shapes (finite differences cost two reference evaluations per input element),
/// still awkward: odd sizes, broadcasts, keepdim, transposed and broadcast matmuls.
fn grad_cases() -> Vec<Problem> {
    use Problem as P;
    let mut c = Vec::new();
    for op in [
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
        U::Clamp { min: -0.5, max: 0.75 },
        U::Affine { mul: 1.5, add: -0.25 },
    ] {
        c.push(P::Unary { op, shape: s(&[5, 7]), specials: false });
    }
    for op in [B::Add, B::Sub, B::Mul, B::Div, B::Maximum, B::Minimum] {
        c.push(P::Binary { op, a: s(&[3, 5]), b: s(&[3, 5]), specials: false });
        c.push(P::Binary { op, a: s(&[2, 1, 5]), b: s(&[3, 1]), specials: false }); // both broadcast
        c.push(P::Binary { op, a: s(&[]), b: s(&[7]), specials: false });
    }
    c.push(P::Where { cond: s(&[2, 1, 5]), a: s(&[3, 1]), b: s(&[5]) });
    c.push(P::MaskedFill { x: s(&[3, 5]), mask: s(&[5]), value: -1.5 });
    for op in [Reduction::Sum, Reduction::Mean, Reduction::Max, Reduction::Min] {
        c.push(P::Reduce { op, shape: s(&[3, 4, 5]), axes: vec![], keepdim: false, specials: false });
        c.push(P::Reduce { op, shape: s(&[3, 4, 5]), axes: vec![-1], keepdim: true, specials: false });
        c.push(P::Reduce { op, shape: s(&[3, 4, 5]), axes: vec![0, 2], keepdim: false, specials: false });
    }
    c.push(P::Matmul { a: s(&[5, 7]), b: s(&[7, 3]), ta: false, tb: false });
    c.push(P::Matmul { a: s(&[2, 1, 5, 4]), b: s(&[3, 4, 6]), ta: true, tb: true }); // broadcast batch, transposed
    c.push(P::Matmul { a: s(&[2, 3, 4]), b: s(&[4, 5]), ta: false, tb: true }); // shared weight over a batch
                                                                                // Quantized weights: the gradient to x is g W with W decoded exactly (the CPU's 8-bit
                                                                                // activations only affect the forward value).
    c.push(P::MatmulQt { x: s(&[3, 64]), rows: 5, ty: GgmlType::Q4_1 });
    c.push(P::MatmulQt { x: s(&[2, 1, 256]), rows: 3, ty: GgmlType::Q6K });
    for log in [false, true] {
        c.push(P::Softmax { shape: s(&[3, 7]), dim: -1, log, values: Values::Normal(2.0) });
        c.push(P::Softmax { shape: s(&[4, 3, 5]), dim: 1, log, values: Values::Normal(2.0) });
    }
    c.push(P::LayerNorm { shape: s(&[4, 9]), weight: true, bias: true, eps: 1e-5, offset: 0.0 });
    c.push(P::LayerNorm { shape: s(&[2, 3, 8]), weight: false, bias: false, eps: 1e-5, offset: 3.0 });
    c.push(P::RmsNorm { shape: s(&[4, 9]), weight: true, eps: 1e-6 });
    c.push(P::RmsNorm { shape: s(&[3, 8]), weight: false, eps: 1e-6 });
    c.push(P::CrossEntropy { n: 7, c: 5, ignore_index: -100, every: 0 });
    c.push(P::CrossEntropy { n: 9, c: 6, ignore_index: -100, every: 3 });
    c.push(P::Embedding { vocab: 5, dim: 4, ids: s(&[3, 4]) }); // 12 ids of 5: repeats
    c.push(P::IndexSelect { shape: s(&[4, 5, 3]), dim: 1, n_ids: 8 });
    c.push(P::Gather { shape: s(&[4, 5]), dim: 1, index: s(&[4, 7]) });
    for convention in [RopeConvention::Interleaved, RopeConvention::SplitHalves] {
        c.push(P::Rope { shape: s(&[2, 5, 8]), convention, start: 3, engine_tables: false });
    }
    let att = |hq, hkv, tq, tk, causal, mask: Option<(&[usize], bool)>| P::Attention {
        b: 2,
        hq,
        hkv,
        tq,
        tk,
        d: 4,
        dv: 3,
        causal,
        mask: mask.map(|(m, neg_inf)| MaskSpec { shape: m.to_vec(), neg_inf }),
        scale: None,
    };
    c.push(att(4, 2, 3, 5, false, None));
    c.push(att(4, 2, 3, 5, true, None)); // GQA, causal, Tq < Tk
    c.push(att(4, 2, 4, 4, false, Some((&[4, 4], false)))); // additive mask, its gradient too
    c.push(att(2, 1, 3, 5, true, Some((&[2, 1, 3, 5], true)))); // causal + -inf mask
    c.push(P::Dropout { shape: s(&[5, 7]), p: 0.3, seed: 11 });
    c.push(P::Cast { shape: s(&[5, 7]), to: DType::F16, values: Values::Normal(1.0) });
    c.push(P::Cast { shape: s(&[5, 7]), to: DType::BF16, values: Values::Normal(1.0) });
    c.push(P::Reshape { shape: s(&[3, 4, 5]), to: s(&[12, 5]) });
    c.push(P::Permute { shape: s(&[3, 4, 5]), dims: vec![2, 0, 1] });
    c.push(P::Narrow { shape: s(&[4, 7]), dim: 1, start: 2, len: 3 });
    c.push(P::BroadcastTo { shape: s(&[3, 1]), to: s(&[2, 3, 4]) });
    c.push(P::Contiguous { shape: s(&[3, 4, 5]), dims: vec![1, 2, 0] });
    c.push(P::Concat { shapes: vec![s(&[2, 3]), s(&[2, 5]), s(&[2, 1])], dim: 1 });
    c
}

/// One problem, one layout of the leaves: a failure row per input whose gradient is off.
fn check(p: &Problem, layout: InputLayout, backend: Backend) -> Vec<Vec<String>> {
    let row = |input: usize, worst: String, note: String| {
        vec![
            backend.name(),
            format!("{:?}", p.op()),
            p.label(),
            layout.name().to_string(),
            input.to_string(),
            worst,
            note,
        ]
    };
    let xs = p.draw(DType::F32, 1);
    let out_dt = p.out_dtype(DType::F32);
    let shape = p.reference_smooth(&xs, DType::F32).shape;
    let w = quantize(&Values::Normal(1.0).generate(&shape, &mut Rng::for_label(&p.label(), 99)), out_dt);

    let run = || -> lamina_tensor::Result<Vec<Tensor>> {
        let mut inputs = p.engine_inputs(&xs, DType::F32, layout)?;
        for (t, inp) in inputs.iter_mut().zip(p.inputs()) {
            *t = backend.upload(t.clone())?;
            if inp.diff {
                *t = t.clone().requires_grad_();
            }
        }
        let out = p.run(&inputs)?;
        out.backward_with(&backend.upload(w.to_tensor(out_dt)?)?)?;
        Ok(inputs)
    };
    let inputs = match run() {
        Ok(v) => v,
        Err(e) => return vec![row(0, "-".into(), format!("error: {e}"))],
    };
    let mut rows = Vec::new();
    for (i, inp) in p.inputs().iter().enumerate() {
        if !inp.diff {
            continue;
        }
        let Some(g) = inputs[i].grad() else {
            rows.push(row(i, "-".into(), "no gradient reached this input".into()));
            continue;
        };
        if g.shape() != inp.shape.as_slice() {
            rows.push(row(i, "-".into(), format!("gradient shape {:?}, input {:?}", g.shape(), inp.shape)));
            continue;
        }
        let engine = RefTensor::from_tensor(&g).expect("read gradient");
        let numeric = numeric_grad(p, &xs, i, &w, H, DType::F32);
        let c = check_grad(&engine.data, &numeric.data, TOL);
        if !c.passes() {
            rows.push(row(
                i,
                format!("{:.2}", c.worst_ratio),
                format!(
                    "at {}: engine {:.6e}, numeric {:.6e} (scale {:.2e}, {} non-finite)",
                    c.worst_index, c.worst_engine, c.worst_numeric, c.scale, c.non_finite
                ),
            ));
        }
    }
    rows
}

#[test]
fn gradients_match_finite_differences() {
    let cases = grad_cases();
    // The CPU at its default ISA and the GPU when present (the other CPU levels are
    // covered by the conformance table; forcing them here would race with the other tests).
    let backends = Backend::unforced();
    let mut failures = Vec::new();
    for &backend in &backends {
        for p in &cases {
            for layout in InputLayout::ALL {
                failures.extend(check(p, layout, backend));
            }
        }
    }
    let names: Vec<String> = backends.iter().map(|b| b.name()).collect();
    println!(
        "gradcheck: {} cases x {} layouts on {names:?}, {} failures",
        cases.len(),
        InputLayout::ALL.len(),
        failures.len()
    );
    if !failures.is_empty() {
        let header = ["backend", "op", "case", "layout", "input", "worst err/tol", "where"];
        eprintln!("{}", table(&header, &failures));
        panic!("{} gradient checks failed (table above)", failures.len());
    }
}

#[test]
fn every_differentiable_op_has_a_gradient_check() {
    let covered: HashSet<OpName> = grad_cases().iter().map(|p| p.op()).collect();
    let missing: Vec<OpName> =
        OpName::ALL.iter().copied().filter(|o| o.differentiable() && !covered.contains(o)).collect();
    assert!(missing.is_empty(), "differentiable ops without a gradient check: {missing:?}");
}

// ---- autograd mechanics -----------------------------------------------------------------

fn leaf(v: &[f32]) -> Tensor {
    Tensor::from_slice(v, &[v.len()]).unwrap().requires_grad_()
}

fn grad_of(t: &Tensor) -> Vec<f32> {
    t.grad().expect("no gradient").to_vec_f32().unwrap()
}

#[test]
fn gradients_accumulate_over_backward_calls() {
    let x = leaf(&[1.0, -2.0, 3.0]);
    x.square().unwrap().sum_all().unwrap().backward().unwrap(); // 2x
    assert_eq!(grad_of(&x), vec![2.0, -4.0, 6.0]);
    x.scale(3.0).unwrap().sum_all().unwrap().backward().unwrap(); // + 3
    assert_eq!(grad_of(&x), vec![5.0, -1.0, 9.0]);
}

#[test]
fn zero_grad_clears_the_gradient() {
    let x = leaf(&[1.0, 2.0]);
    x.square().unwrap().sum_all().unwrap().backward().unwrap();
    x.zero_grad();
    assert!(x.grad().is_none());
    x.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad_of(&x), vec![1.0, 1.0]);
}

#[test]
fn a_tensor_used_twice_gets_both_contributions() {
    // y = sum(x * x + x): dy/dx = 2x + 1, through two paths that meet at x.
    let x = leaf(&[0.5, -1.0, 2.0]);
    x.mul(&x).unwrap().add(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grad_of(&x), vec![2.0, -1.0, 5.0]);
}

#[test]
fn detach_stops_gradients() {
    let x = leaf(&[1.0, 2.0, 3.0]);
    let d = x.detach();
    assert!(!d.tracks_grad());
    // y = sum(detach(x) * x): only the second factor carries a gradient, so dy/dx = x.
    d.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grad_of(&x), vec![1.0, 2.0, 3.0]);
}

#[test]
fn no_grad_records_nothing() {
    let x = leaf(&[1.0, 2.0]);
    let y = no_grad(|| x.mul(&x).unwrap().sum_all().unwrap());
    assert!(!y.tracks_grad());
    assert!(lamina_tensor::is_grad_enabled(), "no_grad must restore grad mode");
    assert!(matches!(y.backward(), Err(Error::Autograd(_))));
    assert!(x.grad().is_none());
}

#[test]
fn backward_on_a_non_scalar_is_an_error() {
    let x = leaf(&[1.0, 2.0, 3.0]);
    let y = x.square().unwrap();
    assert!(matches!(y.backward(), Err(Error::Autograd(_))));
    assert!(x.grad().is_none());
}

#[test]
fn backward_with_takes_the_upstream_gradient() {
    let x = leaf(&[1.0, 2.0, 3.0]);
    let y = x.mul(&Tensor::from_slice(&[1.0f32, 2.0, 3.0], &[3]).unwrap()).unwrap();
    y.backward_with(&Tensor::from_slice(&[1.0f32, 1.0, 2.0], &[3]).unwrap()).unwrap();
    assert_eq!(grad_of(&x), vec![1.0, 2.0, 6.0]);
    let wrong = Tensor::from_slice(&[1.0f32, 1.0], &[2]).unwrap();
    assert!(matches!(y.backward_with(&wrong), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn tie_rules() {
    // max over tied elements shares the gradient evenly (amax); maximum(a, b) sends a tie to a.
    let x = leaf(&[1.0, 3.0, 3.0]);
    x.max(&[0], false).unwrap().backward().unwrap();
    assert_eq!(grad_of(&x), vec![0.0, 0.5, 0.5]);
    let (a, b) = (leaf(&[2.0, 1.0]), leaf(&[2.0, 3.0]));
    a.maximum(&b).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!((grad_of(&a), grad_of(&b)), (vec![1.0, 0.0], vec![0.0, 1.0]));
}

#[test]
fn only_leaves_that_require_grad_get_one() {
    let x = leaf(&[1.0, 2.0]);
    let a = Tensor::from_slice(&[3.0f32, 4.0], &[2]).unwrap();
    let mid = x.mul(&a).unwrap();
    mid.sum_all().unwrap().backward().unwrap();
    assert_eq!(grad_of(&x), vec![3.0, 4.0]);
    assert!(a.grad().is_none(), "a constant got a gradient");
    assert!(mid.grad().is_none(), "an intermediate got a gradient");
}

// ---- half precision ------------------------------------------------------------------------

/// The same table with f16/bf16 leaves: backward runs in the half dtype (every rule's ops
/// round to it), so this checks the dtype plumbing of the rules against the f64 gradient
/// at the same quantised point. Tolerance: max|err| <= K_HALF u max|g| (a backward is a
/// chain of several rounded ops; attention's is ~10 deep, with cancellations; measured
/// worst 4.3u over the table).
const K_HALF: f64 = 16.0;

#[test]
fn half_precision_gradients() {
    let mut failures = Vec::new();
    let mut worst = 0.0f64;
    for p in &grad_cases() {
        for dt in [DType::F16, DType::BF16] {
            let u = dt.epsilon();
            let xs = p.draw(dt, 1);
            let out_dt = p.out_dtype(dt);
            let shape = p.reference_smooth(&xs, dt).shape;
            let w = quantize(&Values::Normal(1.0).generate(&shape, &mut Rng::for_label(&p.label(), 99)), out_dt);
            let run = || -> lamina_tensor::Result<Vec<Tensor>> {
                let mut inputs = p.engine_inputs(&xs, dt, InputLayout::Contiguous)?;
                for (t, inp) in inputs.iter_mut().zip(p.inputs()) {
                    if inp.diff {
                        *t = t.clone().requires_grad_();
                    }
                }
                p.run(&inputs)?.backward_with(&w.to_tensor(out_dt)?)?;
                Ok(inputs)
            };
            let inputs = match run() {
                Ok(v) => v,
                Err(e) => {
                    failures.push(vec![p.label(), dt.name().into(), "-".into(), format!("error: {e}")]);
                    continue;
                }
            };
            for (i, _) in p.inputs().iter().enumerate().filter(|(_, inp)| inp.diff) {
                let Some(g) = inputs[i].grad() else {
                    failures.push(vec![p.label(), dt.name().into(), i.to_string(), "no gradient".into()]);
                    continue;
                };
                let note = if g.dtype() != dt { format!("gradient dtype {}", g.dtype()) } else { String::new() };
                let engine = RefTensor::from_tensor(&g).unwrap();
                let numeric = numeric_grad(p, &xs, i, &w, H, dt);
                let c = check_grad(&engine.data, &numeric.data, GradTol { rtol: 0.0, atol_scale: u, atol: 1e-6 });
                worst = worst.max(c.worst_ratio);
                if !note.is_empty() || c.non_finite > 0 || c.worst_ratio > K_HALF {
                    failures.push(vec![
                        p.label(),
                        dt.name().into(),
                        i.to_string(),
                        format!(
                            "{note} err {:.1}u of scale {:.2e}, {} non-finite",
                            c.worst_ratio, c.scale, c.non_finite
                        ),
                    ]);
                }
            }
        }
    }
    println!("half-precision gradients: worst error {worst:.1}u of the gradient's scale (limit {K_HALF}u)");
    if !failures.is_empty() {
        eprintln!("{}", table(&["case", "dtype", "input", "problem"], &failures));
        panic!("{} half-precision gradient checks failed", failures.len());
    }
}
