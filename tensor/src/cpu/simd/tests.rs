//! Both ISA paths against the scalar `eval_f32` definitions and against f64, on the
//! awkward lengths (tails around the 8-lane width, pairwise-split sizes) and on special
//! values (NaN, +-inf, +-0, subnormals, overflow/underflow edges, huge magnitudes).

use super::*;

const LENS: &[usize] = &[0, 1, 7, 8, 9, 31, 1000, 3001];
const SPECIALS: &[f32] = &[
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    0.0,
    -0.0,
    1e-40,
    -1e-40,
    1e30,
    -1e30,
    88.72,
    88.73,
    -87.5,
    -103.0,
    -104.5,
    1.0,
    -1.0,
    0.625,
    -0.624,
    9.5,
    -9.5,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    1e-6,
    -3e-4,
];

/// Both ways of storing outputs; the streamed one is given misaligned outputs (see [`out_buf`]).
const STORES: [Store; 2] = [Store::Cached, Store::Stream];

/// An output of `n` floats that starts 4 bytes past a 64-byte boundary when `store` streams,
/// so the aligned-head peeling runs.
fn out_buf(n: usize, store: Store) -> (Vec<f32>, usize) {
    match store {
        Store::Cached => (vec![0.0; n], 0),
        Store::Stream => {
            let v = vec![0.0f32; n + 17];
            let off = (v.as_ptr().align_offset(64) + 1) % 16;
            (v, off)
        }
    }
}

/// Every level this CPU runs, portable included (the others are reported as skipped).
fn isas() -> Vec<crate::cpu::isa::Isa> {
    crate::cpu::isa::levels_to_test("simd kernels")
}

/// Deterministic values in [-scale, scale] (xorshift), no crate needed.
fn data(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Random data with the specials sprinkled in (including in the tail lanes).
fn with_specials(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut v = data(n, seed, scale);
    for (k, &s) in SPECIALS.iter().enumerate() {
        if n > 0 {
            v[(k * 37 + seed as usize) % n] = s;
        }
    }
    v
}

/// erf in f64 to ~1e-16: erf x = 2/sqrt(pi) e^-x^2 sum 2^n x^(2n+1) / (2n+1)!!, a series
/// of positive terms (no cancellation); erfc(6) < 3e-17, so beyond 6 it is +-1.
pub(super) fn erf_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() > 6.0 {
        return x.signum();
    }
    let (mut term, mut sum, mut n) = (x, x, 0.0);
    while term.abs() > 1e-18 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

fn unary_ops() -> Vec<UnaryOp> {
    use UnaryOp::*;
    vec![
        Neg,
        Exp,
        Log,
        Sqrt,
        Rsqrt,
        Tanh,
        Sigmoid,
        Relu,
        Silu,
        GeluTanh,
        GeluErf,
        Abs,
        Recip,
        Square,
        Powf(2.5),
        Powf(-1.0),
        Clamp { min: -0.5, max: 2.0 },
        Affine { mul: -1.5, add: 0.25 },
    ]
}

/// f64 meaning of an op and the (relative, absolute-per-max(1,|x|)) error allowed for it.
fn reference(op: UnaryOp, x: f64) -> Option<(f64, f64, f64)> {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    Some(match op {
        UnaryOp::Exp => (x.exp(), 2e-7, 0.0),
        UnaryOp::Log => (x.ln(), 2e-7, 0.0),
        UnaryOp::Tanh => (x.tanh(), 3e-7, 0.0),
        UnaryOp::Sigmoid => (sig(x), 3e-7, 0.0),
        UnaryOp::Silu => (x * sig(x), 4e-7, 0.0),
        UnaryOp::GeluTanh => {
            let u = 0.797_884_560_802_865_4 * (x + 0.044715 * x * x * x);
            (0.5 * x * (1.0 + u.tanh()), 0.0, 1e-6)
        }
        UnaryOp::GeluErf => (0.5 * x * (1.0 + erf_f64(x / 2f64.sqrt())), 0.0, 1e-6),
        _ => return None,
    })
}

/// got vs want: both NaN, equal (so +-0 match), or within rel/abs tolerance.
fn close(got: f32, want: f64, rel: f64, abs_per: f64, x: f32) -> bool {
    if got.is_nan() || want.is_nan() {
        return got.is_nan() && want.is_nan();
    }
    if (want as f32).is_infinite() || got.is_infinite() {
        return got == want as f32; // overflow of the f32 result must be inf
    }
    let d = (got as f64 - want).abs();
    if d == 0.0 {
        return true;
    }
    // Below the smallest normal, allow a few subnormal steps: relative error is meaningless.
    // Subnormal results (e.g. silu(-103) = x * a subnormal) can be off by a few steps.
    d <= rel * want.abs() + (abs_per + 2e-45) * (x.abs() as f64).max(1.0)
}

#[test]
fn unary_matches_scalar_and_f64() {
    for op in unary_ops() {
        let exact = reference(op, 0.0).is_none();
        for &n in LENS {
            let x = with_specials(n, n as u64 + 1, 12.0);
            for (isa, store) in isas().into_iter().flat_map(|i| STORES.map(|s| (i, s))) {
                let (mut buf, off) = out_buf(n, store);
                let out = &mut buf[off..off + n];
                unary(isa, op, &x, out, store);
                for (i, (&xi, &yi)) in x.iter().zip(out.iter()).enumerate() {
                    let s = op.eval_f32(xi);
                    let ctx = format!("{op:?} {} {store:?} n={n} i={i} x={xi:e}: got {yi:e}", isa.name());
                    if exact || isa == Isa::Portable {
                        assert!((s.is_nan() && yi.is_nan()) || s == yi, "{ctx}, scalar {s:e}");
                    }
                    if let Some((r, rel, abs_per)) = reference(op, xi as f64) {
                        // Scalar vs vector: each within its f64 tolerance, so twice that.
                        assert!(close(yi, s as f64, 2.0 * rel, 2.0 * abs_per, xi), "{ctx}, scalar {s:e}");
                        assert!(close(yi, r, rel, abs_per, xi), "{ctx}, f64 {r:e}");
                    }
                }
            }
        }
    }
}

#[test]
fn binary_forms_match_scalar_exactly() {
    use BinaryOp::*;
    for op in [Add, Sub, Mul, Div, Maximum, Minimum] {
        for &n in LENS {
            let a = with_specials(n, 3, 1e3);
            let b = with_specials(n, 11, 5.0);
            for (isa, store) in isas().into_iter().flat_map(|i| STORES.map(|s| (i, s))) {
                let same = |got: &[f32], want: &dyn Fn(usize) -> f32| {
                    for (i, &g) in got.iter().enumerate() {
                        let w = want(i);
                        assert!(
                            (g.is_nan() && w.is_nan()) || g == w,
                            "{op:?} {} {store:?} n={n} i={i}: {g} vs {w}",
                            isa.name()
                        );
                    }
                };
                let (mut buf, off) = out_buf(n, store);
                let out = &mut buf[off..off + n];
                binary(isa, op, &a, &b, out, store);
                same(out, &|i| op.eval_f32(a[i], b[i]));
                for s in [2.5f32, f32::NAN, f32::NEG_INFINITY] {
                    binary_scalar_rhs(isa, op, &a, s, out, store);
                    same(out, &|i| op.eval_f32(a[i], s));
                    binary_scalar_lhs(isa, op, s, &b, out, store);
                    same(out, &|i| op.eval_f32(s, b[i]));
                }
            }
        }
    }
}

#[test]
fn reductions_and_axpy() {
    for &n in LENS.iter().chain(&[4096, 100_003]) {
        let x = data(n, 5, 10.0);
        let y = data(n, 6, 10.0);
        let ref_sum: f64 = x.iter().map(|&v| v as f64).sum();
        let abs_sum: f64 = x.iter().map(|&v| v.abs() as f64).sum();
        let ref_dot: f64 = x.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64).sum();
        let abs_dot: f64 = x.iter().zip(&y).map(|(&a, &b)| (a as f64 * b as f64).abs()).sum();
        let ref_max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for isa in isas() {
            let s = sum(isa, &x) as f64;
            assert!((s - ref_sum).abs() <= 1e-6 * abs_sum + 1e-30, "sum {} n={n}: {s} vs {ref_sum}", isa.name());
            let d = dot(isa, &x, &y) as f64;
            assert!((d - ref_dot).abs() <= 1e-6 * abs_dot + 1e-30, "dot {} n={n}", isa.name());
            assert_eq!(max(isa, &x), ref_max, "max {} n={n}", isa.name());
            let mut yy = y.clone();
            axpy(isa, -0.75, &x, &mut yy);
            for i in 0..n {
                let r = y[i] as f64 - 0.75 * x[i] as f64;
                assert!((yy[i] as f64 - r).abs() <= 1.2e-7 * (y[i].abs() + 0.75 * x[i].abs()) as f64);
            }
            if n > 0 {
                for pos in [0, n / 2, n - 1] {
                    let mut z = x.clone();
                    z[pos] = f32::NAN;
                    assert!(max(isa, &z).is_nan(), "max NaN {} n={n} pos={pos}", isa.name());
                    assert!(sum(isa, &z).is_nan());
                    z[pos] = f32::INFINITY;
                    assert_eq!(max(isa, &z), f32::INFINITY);
                }
            }
        }
    }
    for isa in isas() {
        assert_eq!(max(isa, &[]), f32::NEG_INFINITY);
        assert_eq!(sum(isa, &[]), 0.0);
        assert_eq!(max(isa, &[f32::NEG_INFINITY; 3]), f32::NEG_INFINITY);
    }
}

#[test]
fn softmax_and_log_softmax_rows() {
    for &n in LENS.iter().chain(&[4096]) {
        for scale in [1.0f32, 30.0, 1e4] {
            let x = data(n, 9, scale);
            let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
            let s: f64 = x.iter().map(|&v| (v as f64 - m).exp()).sum();
            for (isa, store) in isas().into_iter().flat_map(|i| STORES.map(|s| (i, s))) {
                let (mut pb, off) = out_buf(n, store);
                let mut lp = vec![0.0f32; n];
                let p = &mut pb[off..off + n];
                softmax_row(isa, &x, p, store);
                log_softmax_row(isa, &x, &mut lp, store);
                for i in 0..n {
                    let d = x[i] as f64 - m;
                    let (rp, rlp) = (d.exp() / s, d - s.ln());
                    // exp's own error plus the f32 rounding of x - max (relative 6e-8 |x - max|).
                    let tol = (3e-7 + 6e-8 * d.abs()) * rp + 1e-30;
                    assert!(
                        (p[i] as f64 - rp).abs() <= tol,
                        "softmax {} {store:?} n={n} i={i}: {} vs {rp}",
                        isa.name(),
                        p[i]
                    );
                    assert!(
                        (lp[i] as f64 - rlp).abs() <= 3e-7 * rlp.abs().max(1.0),
                        "log_softmax {} n={n} i={i}",
                        isa.name()
                    );
                }
            }
        }
    }
    for isa in isas() {
        let mut out = vec![0.0f32; 9];
        for bad in [f32::NEG_INFINITY, f32::NAN, f32::INFINITY] {
            let mut x = data(9, 1, 1.0);
            if bad == f32::NEG_INFINITY {
                x.fill(bad); // all -inf: NaN, as PyTorch
            } else {
                x[8] = bad;
            }
            softmax_row(isa, &x, &mut out, Store::Cached);
            assert!(out.iter().all(|v| v.is_nan()), "softmax with {bad} {}", isa.name());
            log_softmax_row(isa, &x, &mut out, Store::Cached);
            assert!(out.iter().all(|v| v.is_nan()), "log_softmax with {bad} {}", isa.name());
        }
        // Masked (-inf) entries get exactly 0 / -inf when the row has a finite max.
        let x = [1.0, f32::NEG_INFINITY, 2.0, f32::NEG_INFINITY, 0.5, 0.0, -1.0, 3.0, f32::NEG_INFINITY];
        softmax_row(isa, &x, &mut out, Store::Cached);
        assert!(out[1] == 0.0 && out[8] == 0.0 && (out.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        log_softmax_row(isa, &x, &mut out, Store::Cached);
        assert!(out[1] == f32::NEG_INFINITY && out[8] == f32::NEG_INFINITY);
    }
}

#[test]
fn rms_and_layer_norm_rows() {
    let eps = 1e-5f32;
    for &n in LENS.iter().chain(&[4096]) {
        for (scale, offset) in [(1.0f32, 0.0f32), (1e3, 0.0), (1.0, 100.0)] {
            let x: Vec<f32> = data(n, 21, scale).iter().map(|v| v + offset).collect();
            let w = data(n, 22, 2.0);
            let b = data(n, 23, 1.0);
            let nn = n.max(1) as f64;
            let ms: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / nn;
            let r_rstd = 1.0 / (ms + eps as f64).sqrt();
            let mean: f64 = x.iter().map(|&v| v as f64).sum::<f64>() / nn;
            let var: f64 = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / nn;
            let l_rstd = 1.0 / (var + eps as f64).sqrt();
            for (isa, store) in isas().into_iter().flat_map(|i| STORES.map(|s| (i, s))) {
                let (mut ob, off) = out_buf(n, store);
                let out = &mut ob[off..off + n];
                let rstd = rms_norm_row(isa, &x, Some(&w), eps, out, store);
                assert!((rstd as f64 - r_rstd).abs() <= 1e-6 * r_rstd, "rms rstd {} n={n}", isa.name());
                for i in 0..n {
                    let r = x[i] as f64 * r_rstd * w[i] as f64;
                    assert!((out[i] as f64 - r).abs() <= 2e-6 * r.abs() + 1e-30, "rms {} n={n} i={i}", isa.name());
                }
                let (mu, rs) = layer_norm_row(isa, &x, Some(&w), Some(&b), eps, out, store);
                assert!((mu as f64 - mean).abs() <= 1e-6 * (mean.abs() + scale as f64));
                // The f32 mean is off by up to half an ulp of the offset, which shifts every
                // x - mean: allow that much on top of the relative error.
                let shift = (offset as f64) * 6e-8 * l_rstd;
                assert!((rs as f64 - l_rstd).abs() <= 1e-5 * l_rstd, "ln rstd {} n={n}: {rs} vs {l_rstd}", isa.name());
                for i in 0..n {
                    let z = (x[i] as f64 - mean) * l_rstd;
                    let r = z * w[i] as f64 + b[i] as f64;
                    let tol = (1e-5 * z.abs() + shift) * (w[i].abs() as f64) + 2e-7 * r.abs() + 1e-7;
                    assert!(
                        (out[i] as f64 - r).abs() <= tol,
                        "ln {} n={n} i={i}: {} vs {r}; mean {mu} vs {mean}, rstd {rs} vs {l_rstd}, x {}",
                        isa.name(),
                        out[i],
                        x[i]
                    );
                }
                // Without affine parameters the output is the plain normalised row.
                let mut plain = vec![0.0f32; n];
                layer_norm_row(isa, &x, None, None, eps, &mut plain, store);
                rms_norm_row(isa, &x, None, eps, out, store);
                for i in 0..n {
                    assert_eq!(out[i], x[i] * rstd, "rms no weight");
                    assert_eq!(plain[i], (x[i] - mu) * rs);
                }
            }
        }
    }
}

#[test]
fn adamw_levels_agree_bit_for_bit() {
    let h = AdamWConsts {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.01,
        bc1: 1.0 - 0.9f32.powi(3),
        bc2: 1.0 - 0.999f32.powi(3),
    };
    for &n in LENS {
        let (p0, m0, g) = (data(n, 31, 2.0), data(n, 32, 0.1), with_specials(n, 33, 1.0));
        let v0: Vec<f32> = data(n, 34, 0.01).iter().map(|x| x.abs()).collect();
        let mut want = None;
        for isa in isas().into_iter().rev() {
            let (mut p, mut m, mut v) = (p0.clone(), m0.clone(), v0.clone());
            adamw(isa, &h, &mut p, &mut m, &mut v, &g);
            let got: Vec<u32> =
                p.iter().chain(&m).chain(&v).map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() }).collect();
            // The portable path (first, as isas() ends with it) is the scalar rule itself.
            match &want {
                None => want = Some(got),
                Some(w) => assert!(*w == got, "adamw {} n={n} differs from portable", isa.name()),
            }
        }
    }
}
