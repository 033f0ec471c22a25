//! Dropout's mask as a random draw, tested by its statistics rather than against a copy of
//! the engine's generator (the conformance table's dropout rows are that copy: a
//! self-consistency check between backends). On every backend: the keep rate is 1 - p
//! within binomial limits, kept values are scaled by exactly 1/(1-p), and whether an
//! element is kept is independent of its neighbours, of the element a row below, and of
//! the same element under the next seed (2x2 chi-square tests, one degree of freedom).
//!
//! Seeds are fixed, so the outcome is deterministic; the limits are wide (about 1 in 10^6
//! for a fair draw) so a fair generator passes whichever seeds are used.

use lamina_tensor::{DType, Tensor};
use lamina_verify::backend::Backend;

/// Elements per mask: enough for the limits below to be tight (a bias of 0.5% fails).
const N: usize = 1 << 18;
const ROW: usize = 512;
/// chi-square(1 dof) beyond which independence is rejected (p ~ 1e-6).
const CHI2_LIMIT: f64 = 24.0;
/// Binomial z-score beyond which the keep rate is rejected.
const Z_LIMIT: f64 = 5.0;

fn mask(backend: Backend, p: f32, seed: u64) -> Vec<bool> {
    let x = Tensor::ones(&[N / ROW, ROW], DType::F32).unwrap().to_device(backend.device()).unwrap();
    let y = x.dropout(p, seed).unwrap().to_vec_f32().unwrap();
    let scale = 1.0 / (1.0 - p);
    for &v in &y {
        assert!(v == 0.0 || v == scale, "{}: p {p}: a kept value is {v}, not 1/(1-p) = {scale}", backend.name());
    }
    y.iter().map(|&v| v != 0.0).collect()
}

/// Pearson's chi-square for the 2x2 table of (a, b) pairs, against independence with the
/// known keep probability `q` on both sides.
fn chi_square(pairs: impl Iterator<Item = (bool, bool)>, q: f64) -> f64 {
    let mut counts = [[0f64; 2]; 2];
    let mut n = 0.0;
    for (a, b) in pairs {
        counts[a as usize][b as usize] += 1.0;
        n += 1.0;
    }
    let prob = |k: usize| if k == 1 { q } else { 1.0 - q };
    let mut chi = 0.0;
    for (i, row) in counts.iter().enumerate() {
        for (j, &seen) in row.iter().enumerate() {
            let expected = n * prob(i) * prob(j);
            chi += (seen - expected).powi(2) / expected;
        }
    }
    chi
}

#[test]
fn keep_rate_is_one_minus_p() {
    for backend in Backend::all() {
        backend.activate();
        for (p, seed) in [(0.1f32, 1u64), (0.3, 2), (0.5, 3), (0.9, 4)] {
            let kept = mask(backend, p, seed).iter().filter(|&&k| k).count() as f64;
            let q = 1.0 - p as f64;
            let z = (kept - N as f64 * q) / (N as f64 * q * (1.0 - q)).sqrt();
            assert!(z.abs() < Z_LIMIT, "{}: p {p}: kept {kept} of {N}, z = {z:.2}", backend.name());
        }
    }
}

#[test]
fn kept_elements_are_independent() {
    for backend in Backend::all() {
        backend.activate();
        let p = 0.3f32;
        let q = 1.0 - p as f64;
        let (a, b) = (mask(backend, p, 7), mask(backend, p, 8));
        let checks = [
            ("neighbours", chi_square(a.windows(2).map(|w| (w[0], w[1])), q)),
            ("two apart", chi_square(a.iter().zip(&a[2..]).map(|(&x, &y)| (x, y)), q)),
            ("a row apart", chi_square(a.iter().zip(&a[ROW..]).map(|(&x, &y)| (x, y)), q)),
            ("next seed", chi_square(a.iter().zip(&b).map(|(&x, &y)| (x, y)), q)),
        ];
        for (what, chi) in checks {
            assert!(chi < CHI2_LIMIT, "{}: {what}: chi-square {chi:.1} (limit {CHI2_LIMIT})", backend.name());
        }
    }
}
