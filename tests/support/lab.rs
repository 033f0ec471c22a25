//! The kernel lab's harness (`lamina kernel check`): one case of an op's conformance rows
//! run against the f64 reference with the verdict's evidence (error statistics, the
//! tolerance, the first element outside it), and a proptest run over random problems that
//! shrinks a failure to the smallest case it can find. Whatever kernel the backend runs is
//! what is checked: the CLI puts the user's kernel in place first.

use crate::check::{judge, run_values, tolerance_on};
use crate::{unravel, Backend, Comparison, InputLayout, Problem, Tol};
use lamina_tensor::DType;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// One element outside the tolerance.
#[derive(Clone, Debug, PartialEq)]
pub struct Diff {
    /// Its index in the output (row-major, every dim).
    pub index: Vec<usize>,
    pub got: f64,
    pub want: f64,
    /// The error allowed there: the tolerance's max_rel times the output's scale.
    pub allowed: f64,
}

/// One case, run and judged.
#[derive(Clone, Debug)]
pub struct CaseReport {
    pub label: String,
    pub dtype: DType,
    pub layout: InputLayout,
    pub tol: Tol,
    /// The error statistics, or why there are none (an error, a panic, a wrong shape).
    pub outcome: Result<Comparison, String>,
    /// On failure, the first element outside the tolerance (row-major order).
    pub first: Option<Diff>,
}

impl CaseReport {
    pub fn passed(&self) -> bool {
        self.outcome.as_ref().is_ok_and(|c| c.passes(self.tol))
    }
}

/// Run `p` on `backend` in `dt` with inputs laid out as `layout` (drawn with `salt`)
/// and judge it by the conformance tolerance of that backend.
pub fn check_case(backend: Backend, p: &Problem, dt: DType, layout: InputLayout, salt: u64) -> CaseReport {
    let xs = p.draw(dt, salt);
    let expected = p.reference(&xs, dt);
    let tol = tolerance_on(backend, p.op(), p.out_dtype(dt));
    let (outcome, first) = match run_values(backend, p, &xs, &expected, dt, layout) {
        Err(why) => (Err(why), None),
        Ok(actual) => {
            let (c, want) = judge(p, &xs, dt, &actual, &expected);
            let first = (!c.passes(tol))
                .then(|| first_difference(&actual.data, &want, &expected.shape, tol.max_rel * c.scale))
                .flatten();
            (Ok(c), first)
        }
    };
    CaseReport { label: p.label(), dtype: dt, layout, tol, outcome, first }
}

/// The first element (row-major, of an output of `shape`) whose error exceeds `allowed`,
/// or where exactly one side is NaN, or an infinity differs; if none does (a failure of the
/// NMSE alone), the element with the largest error.
pub fn first_difference(actual: &[f64], expected: &[f64], shape: &[usize], allowed: f64) -> Option<Diff> {
    let at = |i: usize| Diff { index: unravel(i, shape), got: actual[i], want: expected[i], allowed };
    let pairs = || actual.iter().zip(expected);
    let outside = |(a, b): (&f64, &f64)| {
        a.is_nan() != b.is_nan() || ((a.is_infinite() || b.is_infinite()) && a != b) || (a - b).abs() > allowed
    };
    if let Some(i) = pairs().position(outside) {
        return Some(at(i));
    }
    let err = |(a, b): (&f64, &f64)| if (a - b).is_finite() { (a - b).abs() } else { 0.0 };
    let worst = pairs().enumerate().max_by(|x, y| err(x.1).total_cmp(&err(y.1)))?;
    Some(at(worst.0))
}

/// How a property run ended.
#[derive(Debug)]
pub enum PropertyOutcome {
    /// Every one of this many random cases passed.
    Passed(u32),
    /// A case failed; this is the smallest failing case proptest shrank it to.
    Failed(Box<CaseReport>),
    /// proptest gave up (too many rejected cases, or an internal error).
    Aborted(String),
}

/// `cases` random problems from `problems`, in each of `dtypes` and both layouts, on
/// `backend`; deterministic for a given `seed`. A failure is shrunk (smaller shapes,
/// fewer batch dims, contiguous inputs, f32) before it is reported.
pub fn property(
    backend: Backend,
    problems: impl Strategy<Value = Problem>,
    dtypes: &[DType],
    cases: u32,
    seed: u64,
) -> PropertyOutcome {
    let strategy = (problems, proptest::sample::select(dtypes.to_vec()), proptest::bool::weighted(0.5), 0u64..1 << 32);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &key));
    let layout = |strided: bool| if strided { InputLayout::Strided } else { InputLayout::Contiguous };
    let result = runner.run(&strategy, |(p, dt, strided, salt)| {
        let r = check_case(backend, &p, dt, layout(strided), salt);
        if r.passed() {
            Ok(())
        } else {
            Err(TestCaseError::fail(r.label))
        }
    });
    match result {
        Ok(()) => PropertyOutcome::Passed(cases),
        Err(TestError::Fail(_, (p, dt, strided, salt))) => {
            PropertyOutcome::Failed(Box::new(check_case(backend, &p, dt, layout(strided), salt)))
        }
        Err(TestError::Abort(why)) => PropertyOutcome::Aborted(why.to_string()),
    }
}
