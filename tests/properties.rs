//! Property tests with shrinking problem structs: SIMD path vs portable path, algebraic
//! identities, and fast paths vs general paths. Each `*Problem` is a small, printable
//! description of one random case; proptest shrinks it to a minimal failing example.

use lamina_tensor::cpu::gemm::{sgemm, MatRef};
use lamina_tensor::cpu::isa::{self, Isa};
use lamina_tensor::cpu::simd;
use lamina_tensor::quant::GgmlType;
use lamina_tensor::{BinaryOp, DType, Tensor, UnaryOp};
use lamina_verify::check::{run_one, tolerance, tolerance_on};
use lamina_verify::{Backend, InputLayout, Problem, Reduction, Values};
use proptest::prelude::*;

const CASES: u32 = 256;

/// The SIMD levels this CPU runs (AVX-512, AVX2, NEON), each compared with the portable
/// path; levels it lacks are reported on stderr once (`LAMINA_REQUIRE_ISA` fails on them).
fn simd_levels() -> &'static [Isa] {
    static LEVELS: std::sync::OnceLock<Vec<Isa>> = std::sync::OnceLock::new();
    LEVELS.get_or_init(|| {
        isa::levels_to_test("SIMD-vs-portable properties").into_iter().filter(|&i| i != Isa::Portable).collect()
    })
}

/// A dim size: mostly small and awkward (0, 1, odd), sometimes past a SIMD width or tile.
fn dim() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1usize..8, 1 => Just(0usize), 2 => 8usize..40]
}

fn shape(max_rank: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(dim(), 0..=max_rank)
}

/// f32 values: mostly moderate, some large, some tiny, a few exact zeros.
fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -4.0f32..4.0,
        2 => -100.0f32..100.0,
        1 => prop::sample::select(vec![0.0f32, -0.0, 1e-30, -1e-30, 1e4, -1e4, 80.0, -80.0]),
    ]
}

/// Every unary kind (from `UnaryOp::KINDS`), the scalar ones at fixed parameters.
fn unary_op() -> impl Strategy<Value = UnaryOp> {
    let at_params = |op| match op {
        UnaryOp::Powf(_) => UnaryOp::Powf(1.5),
        UnaryOp::Clamp { .. } => UnaryOp::Clamp { min: -1.0, max: 2.0 },
        UnaryOp::Affine { .. } => UnaryOp::Affine { mul: 0.5, add: -3.0 },
        op => op,
    };
    prop::sample::select(UnaryOp::KINDS.map(at_params).to_vec())
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(BinaryOp::ALL.to_vec())
}

/// Equal within `rel` of the larger magnitude (plus `abs`), or both NaN, or equal infinities.
fn close(a: f32, b: f32, rel: f32, abs: f32) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= abs + rel * a.abs().max(b.abs())
}

#[derive(Debug, Clone)]
struct UnaryProblem {
    op: UnaryOp,
    x: Vec<f32>,
}

fn unary_problem() -> impl Strategy<Value = UnaryProblem> {
    (unary_op(), prop::collection::vec(value(), 0..70)).prop_map(|(op, x)| UnaryProblem { op, x })
}

#[derive(Debug, Clone)]
struct GemmProblem {
    m: usize,
    n: usize,
    k: usize,
    a_transposed: bool,
    b_transposed: bool,
    seed: u64,
}

fn gemm_problem() -> impl Strategy<Value = GemmProblem> {
    (1usize..40, 1usize..40, 0usize..40, any::<bool>(), any::<bool>(), any::<u64>()).prop_map(
        |(m, n, k, a_transposed, b_transposed, seed)| GemmProblem { m, n, k, a_transposed, b_transposed, seed },
    )
}

fn run_gemm(isa: Isa, p: &GemmProblem, a: &[f32], b: &[f32]) -> Vec<f32> {
    let (m, n, k) = (p.m, p.n, p.k);
    // Stored transposed means element (i, j) lives at j * rows + i.
    let am = if p.a_transposed {
        MatRef { data: a, offset: 0, row_stride: 1, col_stride: m }
    } else {
        MatRef { data: a, offset: 0, row_stride: k, col_stride: 1 }
    };
    let bm = if p.b_transposed {
        MatRef { data: b, offset: 0, row_stride: 1, col_stride: k }
    } else {
        MatRef { data: b, offset: 0, row_stride: n, col_stride: 1 }
    };
    let mut c = vec![f32::NAN; m * n]; // beta = 0 must ignore garbage in C
    sgemm(isa, m, n, k, 1.0, am, bm, 0.0, &mut c, n);
    c
}

#[derive(Debug, Clone)]
struct BroadcastProblem {
    op: BinaryOp,
    out_shape: Vec<usize>,
    /// Which dims of the rhs are stretched from 1, and how many leading dims it drops.
    stretched: Vec<bool>,
    dropped: usize,
    seed: u64,
}

fn broadcast_problem() -> impl Strategy<Value = BroadcastProblem> {
    (binary_op(), shape(4), any::<u64>()).prop_flat_map(|(op, out_shape, seed)| {
        let r = out_shape.len();
        (prop::collection::vec(any::<bool>(), r), 0..=r).prop_map(move |(stretched, dropped)| BroadcastProblem {
            op,
            out_shape: out_shape.clone(),
            stretched,
            dropped,
            seed,
        })
    })
}

#[derive(Debug, Clone)]
struct PermuteProblem {
    shape: Vec<usize>,
    perm: Vec<usize>,
    seed: u64,
}

fn permute_problem() -> impl Strategy<Value = PermuteProblem> {
    (shape(5), any::<u64>()).prop_flat_map(|(shape, seed)| {
        let r = shape.len();
        Just((0..r).collect::<Vec<_>>()).prop_shuffle().prop_map(move |perm| PermuteProblem {
            shape: shape.clone(),
            perm,
            seed,
        })
    })
}

/// A random op problem for the backend-vs-reference property: random shapes (with size-1,
/// odd and empty dims), broadcasts, transposed operands, and special or large values.
fn op_problem() -> impl Strategy<Value = Problem> {
    let unary =
        (unary_op(), shape(4), any::<bool>()).prop_map(|(op, shape, specials)| Problem::Unary { op, shape, specials });
    let binary = broadcast_problem().prop_map(|p| {
        let b: Vec<usize> =
            p.out_shape.iter().zip(&p.stretched).map(|(&d, &s)| if s { 1 } else { d }).skip(p.dropped).collect();
        Problem::Binary { op: p.op, a: p.out_shape, b, specials: p.seed % 4 == 0 }
    });
    let reduce = (
        prop::sample::select(vec![Reduction::Sum, Reduction::Mean, Reduction::Max, Reduction::Min]),
        prop::collection::vec(1usize..9, 1..4),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(op, shape, keepdim, pick)| {
            let axes: Vec<isize> = (0..shape.len() as isize).filter(|a| (pick >> a) & 1 == 1).collect();
            Problem::Reduce { op, shape, axes, keepdim, specials: false }
        });
    let matmul = lamina_verify::strategy::matmul_problem();
    let softmax =
        (prop::collection::vec(1usize..12, 1..4), any::<bool>(), prop_oneof![Just(1.0f64), Just(30.0), Just(1e4)])
            .prop_map(|(shape, log, scale)| Problem::Softmax { shape, dim: -1, log, values: Values::Normal(scale) });
    prop_oneof![unary, binary, reduce, matmul, softmax]
}

/// A quantized product x (m, k) W^T: m = 1 (the GPU's matrix-vector kernel), small and
/// odd, or past a 64-row tile; k = 1 to 3 blocks of 32 or 256; odd weight row counts
/// (around the GPU's 8-row workgroups and 32/64-column tiles).
fn matmul_qt_problem() -> impl Strategy<Value = Problem> {
    let ty = prop::sample::select(vec![
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
    ]);
    let m = prop_oneof![Just(1usize), (1usize..5).prop_map(|h| 2 * h + 1), 65usize..72];
    (ty, m, 1usize..4, 0usize..40).prop_map(|(ty, m, blocks, r)| Problem::MatmulQt {
        x: vec![m, blocks * ty.block_size()],
        rows: 2 * r + 1,
        ty,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    /// matmul_qt on the CPU (detected ISA) and the GPU when present, against the f64
    /// product with the decoded blocks, within each backend's conformance tolerance.
    #[test]
    fn matmul_qt_matches_reference(p in matmul_qt_problem(), salt in any::<u64>()) {
        let xs = p.draw(DType::F32, salt);
        let expected = p.reference(&xs, DType::F32);
        // Not the forced CPU levels: the ISA switch is process-wide (the table covers them).
        for backend in Backend::unforced() {
            let cmp = run_one(backend, &p, &xs, &expected, DType::F32, InputLayout::Contiguous)
                .map_err(TestCaseError::fail)?;
            let tol = tolerance_on(backend, p.op(), DType::F32);
            prop_assert!(cmp.passes(tol), "{} on {}: {cmp:?} vs {tol:?}", p.label(), backend.name());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, .. ProptestConfig::default() })]

    /// The backend agrees with the f64 reference, within the conformance table's tolerance,
    /// on random problems in every float dtype and in contiguous and strided layouts.
    #[test]
    fn backend_matches_reference(
        p in op_problem(),
        dt in prop::sample::select(DType::FLOATS.to_vec()),
        strided in any::<bool>(),
        salt in any::<u64>(),
    ) {
        let layout = if strided { InputLayout::Strided } else { InputLayout::Contiguous };
        let xs = p.draw(dt, salt);
        let expected = p.reference(&xs, dt);
        let backend = Backend::unforced()[0];
        let cmp = run_one(backend, &p, &xs, &expected, dt, layout).map_err(TestCaseError::fail)?;
        let tol = tolerance(p.op(), p.out_dtype(dt));
        prop_assert!(cmp.passes(tol), "{} {dt} {}: {cmp:?} vs {tol:?}", p.label(), layout.name());
    }

    /// Every SIMD level and the portable path agree on every unary op.
    #[test]
    fn simd_unary_matches_portable(p in unary_problem()) {
        let mut slow = vec![0f32; p.x.len()];
        simd::unary(Isa::Portable, p.op, &p.x, &mut slow, simd::Store::Cached);
        for &level in simd_levels() {
            let mut fast = vec![0f32; p.x.len()];
            simd::unary(level, p.op, &p.x, &mut fast, simd::Store::Cached);
            for i in 0..p.x.len() {
                // GELU is evaluated in a cancellation-free form on the SIMD paths (see
                // simd.rs): the bound there is absolute, scaled by |x|.
                let abs = 2e-6 * p.x[i].abs().max(1.0);
                prop_assert!(close(fast[i], slow[i], 2e-6, abs), "{:?}({}) {level} {} portable {}", p.op, p.x[i], fast[i], slow[i]);
            }
        }
    }

    /// Every SIMD level's GEMM agrees with the portable one, through transposed strides,
    /// within the rounding budget of a k-term dot product.
    #[test]
    fn simd_gemm_matches_portable(p in gemm_problem()) {
        let a = Tensor::randn(&[p.m * p.k], 0.0, 1.0, p.seed, DType::F32).unwrap().to_vec::<f32>().unwrap();
        let b = Tensor::randn(&[p.k * p.n], 0.0, 1.0, p.seed ^ 1, DType::F32).unwrap().to_vec::<f32>().unwrap();
        let slow = run_gemm(Isa::Portable, &p, &a, &b);
        let budget = 1e-5 * (p.k as f32 + 1.0);
        for &level in simd_levels() {
            let fast = run_gemm(level, &p, &a, &b);
            for (x, y) in fast.iter().zip(&slow) {
                prop_assert!((x - y).abs() <= budget * 4.0, "{level} {x} portable {y}");
            }
        }
    }

    /// Binary ops on a broadcast rhs (scalar, row and general stride-0 fast paths) equal
    /// the same op on the explicitly materialised operand.
    #[test]
    fn broadcast_fast_paths_match_materialised(p in broadcast_problem()) {
        let rhs_shape: Vec<usize> = p.out_shape.iter().zip(&p.stretched)
            .map(|(&d, &s)| if s { 1 } else { d }).skip(p.dropped).collect();
        let a = Tensor::randn(&p.out_shape, 0.0, 2.0, p.seed, DType::F32).unwrap();
        let b = Tensor::randn(&rhs_shape, 0.5, 2.0, p.seed ^ 7, DType::F32).unwrap();
        let fused = a.binary(&b, p.op).unwrap();
        let explicit = a.binary(&b.broadcast_to(&p.out_shape).unwrap().contiguous().unwrap(), p.op).unwrap();
        let swapped = b.binary(&a, p.op).unwrap();
        let swapped_explicit = b.broadcast_to(&p.out_shape).unwrap().contiguous().unwrap().binary(&a, p.op).unwrap();
        prop_assert_eq!(fused.shape(), &p.out_shape[..]);
        let (f, e) = (fused.to_vec::<f32>().unwrap(), explicit.to_vec::<f32>().unwrap());
        prop_assert!(f.iter().zip(&e).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())));
        let (f, e) = (swapped.to_vec::<f32>().unwrap(), swapped_explicit.to_vec::<f32>().unwrap());
        prop_assert!(f.iter().zip(&e).all(|(x, y)| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())));
    }

    /// Softmax rows are probability distributions, even for large logits.
    #[test]
    fn softmax_rows_sum_to_one(shape in prop::collection::vec(1usize..12, 1..4), scale in prop_oneof![Just(1.0f32), Just(100.0), Just(1e4)], seed in any::<u64>()) {
        let x = Tensor::randn(&shape, 0.0, scale, seed, DType::F32).unwrap();
        let y = x.softmax(-1).unwrap();
        let v = y.to_vec::<f32>().unwrap();
        prop_assert!(v.iter().all(|&p| (0.0..=1.0).contains(&p)));
        for s in y.sum(&[-1], false).unwrap().to_vec::<f32>().unwrap() {
            prop_assert!((s - 1.0).abs() < 1e-5, "row sums to {s}");
        }
        // log_softmax is the log of softmax wherever the probability is representable.
        let l = x.log_softmax(-1).unwrap().to_vec::<f32>().unwrap();
        for (lp, p) in l.iter().zip(&v) {
            if *p > 1e-30 {
                prop_assert!((lp.exp() - p).abs() <= 1e-5 * p.max(1e-3), "exp({lp}) vs {p}");
            }
        }
    }

    /// Permuting then applying the inverse permutation is the identity, on views and copies.
    #[test]
    fn permute_then_inverse_is_identity(p in permute_problem()) {
        let x = Tensor::randn(&p.shape, 0.0, 1.0, p.seed, DType::F32).unwrap();
        let mut inverse = vec![0; p.perm.len()];
        for (i, &d) in p.perm.iter().enumerate() {
            inverse[d] = i;
        }
        let y = x.permute(&p.perm).unwrap();
        let back = y.contiguous().unwrap().permute(&inverse).unwrap();
        prop_assert_eq!(back.shape(), x.shape());
        prop_assert_eq!(back.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        prop_assert_eq!(y.permute(&inverse).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
    }

    /// (A B) C = A (B C) within the rounding budget of the two products.
    #[test]
    fn matmul_is_associative(m in 1usize..20, k in 1usize..20, l in 1usize..20, n in 1usize..20, seed in any::<u64>()) {
        let a = Tensor::randn(&[m, k], 0.0, 1.0, seed, DType::F32).unwrap();
        let b = Tensor::randn(&[k, l], 0.0, 1.0, seed ^ 1, DType::F32).unwrap();
        let c = Tensor::randn(&[l, n], 0.0, 1.0, seed ^ 2, DType::F32).unwrap();
        let left = a.matmul(&b).unwrap().matmul(&c).unwrap().to_vec::<f32>().unwrap();
        let right = a.matmul(&b.matmul(&c).unwrap()).unwrap().to_vec::<f32>().unwrap();
        // |(AB)C - A(BC)| <= ~(k + l) eps |A||B||C| elementwise; with unit normals the
        // magnitude |A||B||C| is at most about sqrt(k l) * 3^3 per entry in practice.
        let bound = 1e-6 * ((k + l) as f32) * ((k * l) as f32).sqrt() * 30.0;
        for (x, y) in left.iter().zip(&right) {
            prop_assert!((x - y).abs() <= bound, "{x} vs {y} (bound {bound})");
        }
    }

    /// Reducing all axes at once equals reducing them one at a time.
    #[test]
    fn reductions_compose(shape in prop::collection::vec(1usize..9, 1..4), seed in any::<u64>()) {
        let x = Tensor::randn(&shape, 0.0, 1.0, seed, DType::F32).unwrap();
        let all = x.sum_all().unwrap().to_scalar_f32().unwrap();
        let mut y = x.clone();
        while y.rank() > 0 {
            y = y.sum(&[0], false).unwrap();
        }
        let n = x.numel() as f32;
        prop_assert!((all - y.to_scalar_f32().unwrap()).abs() <= 1e-5 * n.sqrt() * 4.0);
        let mx = x.max(&[], false).unwrap().to_scalar_f32().unwrap();
        let mut y = x.clone();
        while y.rank() > 0 {
            y = y.max(&[-1], false).unwrap();
        }
        prop_assert_eq!(mx, y.to_scalar_f32().unwrap());
    }
}
