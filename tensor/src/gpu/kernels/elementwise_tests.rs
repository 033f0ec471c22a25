//! GPU elementwise kernels against the CPU kernels (`crate::cpu`), on small awkward shapes,
//! strided and broadcast views, f32/f16/bf16 and edge values. Skips without an adapter.

use super::*;
use crate::cpu;
use crate::gpu::testing::{assert_close, data, device, storage, storage_tol, values, SPECIALS};
use crate::gpu::GpuStorage;

/// Tolerance on top of storage rounding, per op: abs + rel * |expected|, where `x` is the
/// input (GELU's bound scales with |x|, as the CPU's own accuracy contract).
fn op_tol(op: UnaryOp, x: f32, expected: f32) -> f32 {
    let rel = match op {
        UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Relu | UnaryOp::Square | UnaryOp::Clamp { .. } => 0.0,
        UnaryOp::Recip | UnaryOp::Sqrt | UnaryOp::Rsqrt | UnaryOp::Affine { .. } => 2.5e-7,
        UnaryOp::Powf(e) => 2e-6 * (1.0 + (e * x.abs().clamp(1e-30, 1e30).ln()).abs()),
        _ => 2e-6,
    };
    let abs = match op {
        UnaryOp::GeluTanh | UnaryOp::GeluErf => 1.5e-6 * x.abs().max(1.0),
        UnaryOp::Silu | UnaryOp::Sigmoid | UnaryOp::Tanh => 1e-7,
        _ => 0.0,
    };
    // GPUs may flush subnormal results (lavapipe's exp does).
    abs + rel * expected.abs() + f32::MIN_POSITIVE
}

/// Every unary kind (from `UnaryOp::KINDS`, so a new kind is tested without editing a list
/// here), the scalar ones at the parameters worth testing.
fn ops() -> Vec<UnaryOp> {
    let at_params = |op| match op {
        UnaryOp::Powf(_) => vec![UnaryOp::Powf(3.0), UnaryOp::Powf(-0.37), UnaryOp::Powf(2.5)],
        UnaryOp::Clamp { .. } => vec![UnaryOp::Clamp { min: -0.5, max: 2.0 }],
        UnaryOp::Affine { .. } => vec![UnaryOp::Affine { mul: 1.5, add: -0.25 }],
        op => vec![op],
    };
    UnaryOp::KINDS.into_iter().flat_map(at_params).collect()
}

/// Inputs: specials, a sweep of small magnitudes (tanh/GELU near 0), and random values.
fn unary_inputs(n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = SPECIALS.to_vec();
    v.extend((0..40).map(|i| 10f32.powf(-7.0 + i as f32 * 0.2) * if i % 2 == 0 { 1.0 } else { -1.0 }));
    v.extend(data(n - v.len(), 7, -9.0, 9.0));
    v
}

#[test]
fn unary_matches_cpu_f32_all_ops() {
    let Some(dev) = device() else { return };
    let shape = [5usize, 7, 11];
    let n: usize = shape.iter().product();
    let x = unary_inputs(n);
    let cpu_x = storage(DType::F32, x.clone());
    let gpu_x = GpuStorage::from_cpu(&cpu_x, &dev).unwrap();
    // A contiguous view and a permuted one (strided reads).
    let contiguous = Layout::contiguous(&shape);
    let permuted = Layout::contiguous(&[7, 5, 11]).permute(&[1, 0, 2]).unwrap();
    for l in [&contiguous, &permuted] {
        let xin = values(&cpu_x.copy_contiguous(l));
        for op in ops() {
            let want = values(&cpu::unary(&cpu_x, l, op).unwrap());
            let got = values(&unary(&gpu_x, l, op).unwrap().to_cpu().unwrap());
            assert_close(&format!("{op:?} strides {:?}", l.strides()), &got, &want, |i, c| op_tol(op, xin[i], c));
        }
    }
}

#[test]
fn unary_matches_cpu_half_dtypes() {
    let Some(dev) = device() else { return };
    // Odd element count: the last word is half padding.
    let n = 3 * 67;
    let x = unary_inputs(n);
    for dtype in [DType::F16, DType::BF16] {
        let cpu_x = storage(dtype, x.clone());
        let gpu_x = GpuStorage::from_cpu(&cpu_x, &dev).unwrap();
        // Offset view starting mid-word, with a step of 2 (reads alternate word halves).
        let views = [Layout::contiguous(&[n]), Layout::new(vec![(n - 1) / 2], vec![2], 1)];
        for l in &views {
            let xv = values(&cpu_x.copy_contiguous(l));
            for op in [
                UnaryOp::Exp,
                UnaryOp::Tanh,
                UnaryOp::GeluTanh,
                UnaryOp::Silu,
                UnaryOp::Neg,
                UnaryOp::Affine { mul: 3.0, add: 1.0 },
            ] {
                let want = values(&cpu::unary(&cpu_x, l, op).unwrap());
                let got = values(&unary(&gpu_x, l, op).unwrap().to_cpu().unwrap());
                let st = storage_tol(dtype);
                assert_close(&format!("{op:?} {dtype} {:?}", l.strides()), &got, &want, |i, c| {
                    op_tol(op, xv[i], c) + st * c.abs()
                });
            }
        }
    }
}

/// (shape, a layout, b layout): broadcasts of every kind, and a transposed operand.
fn binary_cases() -> Vec<(Vec<usize>, Layout, Layout)> {
    let s = vec![4usize, 5, 6];
    let full = Layout::contiguous(&s);
    vec![
        (s.clone(), full.clone(), full.clone()),
        // Row broadcast ([6] -> [4,5,6]) and scalar broadcast.
        (s.clone(), full.clone(), Layout::contiguous(&[6]).broadcast_to(&s).unwrap()),
        (s.clone(), Layout::contiguous(&[]).broadcast_to(&s).unwrap(), full.clone()),
        // Middle-dim broadcast ([4,1,6]) against a permuted operand.
        (
            s.clone(),
            Layout::contiguous(&[4, 1, 6]).broadcast_to(&s).unwrap(),
            Layout::contiguous(&[6, 5, 4]).permute(&[2, 1, 0]).unwrap(),
        ),
    ]
}

#[test]
fn binary_and_cmp_match_cpu() {
    let Some(dev) = device() else { return };
    let n = 120;
    let mut xa = data(n, 1, -3.0, 3.0);
    let mut xb = data(n, 2, -3.0, 3.0);
    // Specials and ties (equal values test the comparisons' boundaries).
    xa[..SPECIALS.len()].copy_from_slice(&SPECIALS);
    xb[3..3 + SPECIALS.len()].copy_from_slice(&SPECIALS);
    xb[20..40].copy_from_slice(&xa[20..40]);
    for dtype in DType::FLOATS {
        let (ca, cb) = (storage(dtype, xa.clone()), storage(dtype, xb.clone()));
        let (ga, gb) = (GpuStorage::from_cpu(&ca, &dev).unwrap(), GpuStorage::from_cpu(&cb, &dev).unwrap());
        for (shape, la, lb) in binary_cases() {
            for op in BinaryOp::ALL {
                let want = values(&cpu::binary(&ca, &la, &cb, &lb, op).unwrap());
                let got = values(&binary(&ga, &la, &gb, &lb, op).unwrap().to_cpu().unwrap());
                // f32: exact (one IEEE rounding each side); halves: storage rounding only.
                let st = storage_tol(dtype);
                assert_close(&format!("{op:?} {dtype} {shape:?}"), &got, &want, |_, c| st * c.abs());
            }
            for op in CmpOp::ALL {
                let want = values(&cpu::cmp(&ca, &la, &cb, &lb, op).unwrap());
                let got = values(&cmp(&ga, &la, &gb, &lb, op).unwrap().to_cpu().unwrap());
                assert_close(&format!("{op:?} {dtype} {shape:?}"), &got, &want, |_, _| 0.0);
            }
        }
    }
}

#[test]
fn where_matches_cpu_with_any_condition_dtype() {
    let Some(dev) = device() else { return };
    let s = [3usize, 4, 5];
    let n = 60;
    let mut c = data(n, 3, -1.0, 1.0).iter().map(|v| if *v > 0.2 { 0.0 } else { v.round() }).collect::<Vec<_>>();
    c[7] = f32::NAN;
    let (xa, xb) = (data(n, 4, -5.0, 5.0), data(20, 5, -5.0, 5.0));
    let full = Layout::contiguous(&s);
    let lb = Layout::contiguous(&[4, 5]).broadcast_to(&s).unwrap();
    let lc = Layout::contiguous(&[5, 4, 3]).permute(&[2, 1, 0]).unwrap();
    for dtype in DType::FLOATS {
        for cdt in DType::ALL {
            let cc = storage(cdt, c.clone());
            let (ca, cb) = (storage(dtype, xa.clone()), storage(dtype, xb.clone()));
            let gc = GpuStorage::from_cpu(&cc, &dev).unwrap();
            let (ga, gb) = (GpuStorage::from_cpu(&ca, &dev).unwrap(), GpuStorage::from_cpu(&cb, &dev).unwrap());
            let want = values(&cpu::where_cond(&cc, &lc, &ca, &full, &cb, &lb).unwrap());
            let got = values(&where_cond(&gc, &lc, &ga, &full, &gb, &lb).unwrap().to_cpu().unwrap());
            assert_close(&format!("where {dtype} cond {cdt}"), &got, &want, |_, _| 0.0);
        }
    }
}

#[test]
fn integer_inputs_and_mismatches_are_errors() {
    let Some(dev) = device() else { return };
    let l = Layout::contiguous(&[4]);
    let i = GpuStorage::from_cpu(&CpuStorage::I32(vec![1, 2, 3, 4]), &dev).unwrap();
    let f = GpuStorage::from_cpu(&storage(DType::F32, vec![1.0; 4]), &dev).unwrap();
    let h = GpuStorage::from_cpu(&storage(DType::F16, vec![1.0; 4]), &dev).unwrap();
    assert!(matches!(unary(&i, &l, UnaryOp::Exp), Err(Error::UnsupportedDType { .. })));
    assert!(matches!(binary(&f, &l, &h, &l, BinaryOp::Add), Err(Error::DTypeMismatch { .. })));
    // A view reaching past the storage is refused, not read out of bounds.
    assert!(unary(&f, &Layout::contiguous(&[5]), UnaryOp::Neg).is_err());
}

use crate::storage::CpuStorage;

#[test]
fn two_dimensional_grids_cover_every_element_once() {
    let Some(dev) = device() else { return };
    // x limited to 4 workgroups: 3000 words -> 12 groups -> 4 x 3; 2500 -> 10 groups -> 4 x 3
    // with two surplus groups that must write nothing.
    for n in [3000usize, 2500, 1] {
        let x = data(n, 51, -2.0, 2.0);
        let cs = storage(DType::F32, x);
        let gs = GpuStorage::from_cpu(&cs, &dev).unwrap();
        let l = Layout::contiguous(&[n]);
        let got = crate::gpu::dispatch::test_grid_limit::with(4, || unary(&gs, &l, UnaryOp::Square).unwrap());
        let want = cpu::unary(&cs, &l, UnaryOp::Square).unwrap();
        assert_close(&format!("square x{n} on a 2-D grid"), &values(&got.to_cpu().unwrap()), &values(&want), |_, _| {
            0.0
        });
        let h = GpuStorage::from_cpu(&storage(DType::BF16, values(&cs)), &dev).unwrap();
        let got = crate::gpu::dispatch::test_grid_limit::with(1, || crate::gpu::cast(&h, &l, DType::F32).unwrap());
        let want = storage(DType::BF16, values(&cs)).cast(&l, DType::F32);
        assert_close(
            &format!("cast x{n} on a 1-wide grid"),
            &values(&got.to_cpu().unwrap()),
            &values(&want),
            |_, _| 0.0,
        );
    }
    // Reductions: one workgroup per output (tree), and one thread per output (serial).
    let x = data(600 * 130, 52, -1.0, 1.0);
    let cs = storage(DType::F32, x);
    let gs = GpuStorage::from_cpu(&cs, &dev).unwrap();
    for shape in [[600usize, 130], [7800, 10]] {
        let l = Layout::contiguous(&shape);
        let got = crate::gpu::dispatch::test_grid_limit::with(3, || crate::gpu::reduce(&gs, &l, ReduceOp::Max, &[1]));
        let want = cpu::reduce(&cs, &l, ReduceOp::Max, &[1]).unwrap();
        assert_close(
            &format!("max {shape:?} on a 2-D grid"),
            &values(&got.unwrap().to_cpu().unwrap()),
            &values(&want),
            |_, _| 0.0,
        );
    }
}

#[test]
fn long_chains_from_many_threads_share_the_batch_and_pool() {
    let Some(dev) = device() else { return };
    // 300 dispatches per thread (over two batches each), every intermediate dropped at
    // once, so pooled buffers are reused inside one unsubmitted batch by several threads.
    std::thread::scope(|scope| {
        for t in 0..4 {
            let dev = dev.clone();
            scope.spawn(move || {
                let n = 1000 + t * 37;
                let x: Vec<f32> = (0..n).map(|i| (i % 17) as f32).collect();
                let l = Layout::contiguous(&[n]);
                let mut g = GpuStorage::from_cpu(&storage(DType::F32, x.clone()), &dev).unwrap();
                for _ in 0..300 {
                    g = unary(&g, &l, UnaryOp::Affine { mul: 1.0, add: 1.0 }).unwrap();
                }
                let want: Vec<f32> = x.iter().map(|v| v + 300.0).collect();
                assert_close(&format!("chain on thread {t}"), &values(&g.to_cpu().unwrap()), &want, |_, _| 0.0);
            });
        }
    });
}

use crate::ops::ReduceOp;

/// A code the shader does not handle gives NaN (an error value), not some other op's result.
#[test]
fn unknown_unary_code_gives_nan() {
    let Some(dev) = device() else { return };
    let x = GpuStorage::from_cpu(&storage(DType::F32, vec![1.0, 2.0, -3.0]), &dev).unwrap();
    let l = Layout::contiguous(&[3]);
    let params = StridedParams::new("unary", &[&l]).unwrap().with_scalars(2.0, 1.0);
    for code in [UnaryOp::KINDS.len() as u32, 99] {
        let out = GpuStorage::alloc(&dev, DType::F32, 3).unwrap();
        let key = UnaryKey { op: code, dtype: DType::F32 };
        launch(&dev, key, &[out.raw(), x.raw()], params.bytes(), out.words(), WG).unwrap();
        let got = values(&out.to_cpu().unwrap());
        assert!(got.iter().all(|v| v.is_nan()), "code {code}: {got:?}");
    }
}
