//! Elementwise reference ops and dtype rounding, in f64.

use crate::tensor::{broadcast_shape, RefTensor};
use lamina_tensor::{BinaryOp, CmpOp, DType, UnaryOp};

/// erf(x) to about 1e-15: erf x = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1 3 5 ... (2n+1)).
/// Every term is positive, so there is no cancellation; beyond |x| = 6 erf is +-1 in f64.
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let z = x.abs();
    if z > 6.0 {
        return x.signum();
    }
    let (mut term, mut sum, mut n) = (z, z, 0.0);
    while term > sum * 1e-17 {
        n += 1.0;
        term *= 2.0 * z * z / (2.0 * n + 1.0);
        sum += term;
    }
    let v = 2.0 / std::f64::consts::PI.sqrt() * (-z * z).exp() * sum;
    v.min(1.0) * x.signum()
}

/// erfc(x) to about 1e-15 relative, also deep in the tail where 1 - erf(x) has cancelled
/// to nothing (erfc 5.66 = 1.2e-15): for x >= 2 the continued fraction
/// erfc x = e^{-x^2} / sqrt(pi) * 1 / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...)))),
/// evaluated bottom-up from a fixed depth (it converges fastest for large x; 200 levels
/// reach f64 precision at x = 2); below 2, 1 - erf(x), where erf <= 0.996.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() || x < 2.0 {
        return 1.0 - erf(x);
    }
    let mut tail = x;
    for k in (1..=200).rev() {
        tail = x + (k as f64 / 2.0) / tail;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / tail
}

fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// The definition of each unary op (NaN in, NaN out, for every op).
pub fn unary_f64(op: UnaryOp, x: f64) -> f64 {
    match op {
        UnaryOp::Neg => -x,
        UnaryOp::Exp => x.exp(),
        UnaryOp::Log => x.ln(),
        UnaryOp::Sqrt => x.sqrt(),
        UnaryOp::Rsqrt => 1.0 / x.sqrt(),
        UnaryOp::Tanh => x.tanh(),
        UnaryOp::Sigmoid => sigmoid(x),
        UnaryOp::Relu => {
            if x.is_nan() || x > 0.0 {
                x
            } else {
                0.0
            }
        }
        UnaryOp::Silu => x * sigmoid(x),
        UnaryOp::GeluTanh => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
        }
        // x Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2: for x << 0, 1 + erf cancels even in f64.
        UnaryOp::GeluErf => 0.5 * x * erfc(-x / std::f64::consts::SQRT_2),
        UnaryOp::Abs => x.abs(),
        UnaryOp::Recip => 1.0 / x,
        UnaryOp::Square => x * x,
        UnaryOp::Powf(e) => x.powf(e as f64),
        UnaryOp::Clamp { min, max } => {
            if x.is_nan() {
                x
            } else {
                x.max(min as f64).min(max as f64)
            }
        }
        UnaryOp::Affine { mul, add } => x * mul as f64 + add as f64,
    }
}

pub fn unary(op: UnaryOp, x: &RefTensor) -> RefTensor {
    x.map(|v| unary_f64(op, v))
}

/// max/min propagate NaN from either side (unlike f64::max).
fn binary_f64(op: BinaryOp, a: f64, b: f64) -> f64 {
    match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Maximum | BinaryOp::Minimum if a.is_nan() || b.is_nan() => f64::NAN,
        BinaryOp::Maximum => a.max(b),
        BinaryOp::Minimum => a.min(b),
    }
}

fn zip_broadcast(a: &RefTensor, b: &RefTensor, f: impl Fn(f64, f64) -> f64) -> RefTensor {
    let shape = broadcast_shape(&a.shape, &b.shape).expect("shapes do not broadcast");
    RefTensor::from_fn(&shape, |i| f(a.at_broadcast(i), b.at_broadcast(i)))
}

pub fn binary(op: BinaryOp, a: &RefTensor, b: &RefTensor) -> RefTensor {
    zip_broadcast(a, b, |x, y| binary_f64(op, x, y))
}

/// 1.0 where the comparison holds (IEEE: every comparison with NaN is false but `Ne`).
pub fn cmp(op: CmpOp, a: &RefTensor, b: &RefTensor) -> RefTensor {
    zip_broadcast(a, b, |x, y| {
        let t = match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
        };
        if t {
            1.0
        } else {
            0.0
        }
    })
}

/// cond != 0 ? a : b, all three broadcast together.
pub fn where_cond(cond: &RefTensor, a: &RefTensor, b: &RefTensor) -> RefTensor {
    let shape = broadcast_shape(&broadcast_shape(&cond.shape, &a.shape).unwrap(), &b.shape).unwrap();
    RefTensor::from_fn(&shape, |i| if cond.at_broadcast(i) != 0.0 { a.at_broadcast(i) } else { b.at_broadcast(i) })
}

/// mask != 0 ? value : x (mask and x broadcast together).
pub fn masked_fill(x: &RefTensor, mask: &RefTensor, value: f64) -> RefTensor {
    where_cond(mask, &RefTensor::scalar(value), x)
}

/// Round to the nearest value of a binary float format with `p` significant bits and
/// normal exponents `emin..=emax` (ties to even, gradual underflow, overflow to inf).
fn round_format(x: f64, p: i32, emin: i32, emax: i32) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    let a = x.abs();
    let e = ((((a.to_bits() >> 52) & 0x7ff) as i32) - 1023).max(emin);
    let ulp = 2f64.powi(e - (p - 1));
    let q = a / ulp; // exact: scaling by a power of two
    let (f, frac) = (q.floor(), q - q.floor());
    let r = if frac > 0.5 || (frac == 0.5 && f % 2.0 == 1.0) { f + 1.0 } else { f } * ulp;
    let max = (2.0 - 2f64.powi(1 - p)) * 2f64.powi(emax);
    (if r > max { f64::INFINITY } else { r }).copysign(x)
}

/// The value `x` becomes when stored as `dtype` (integers: truncation toward zero,
/// saturating, NaN to 0 — Rust `as` semantics).
pub fn round_to(dtype: DType, x: f64) -> f64 {
    match dtype {
        DType::F32 => round_format(x, 24, -126, 127),
        DType::F16 => round_format(x, 11, -14, 15),
        DType::BF16 => round_format(x, 8, -126, 127),
        DType::I32 => {
            if x.is_nan() {
                0.0
            } else {
                x.trunc().clamp(i32::MIN as f64, i32::MAX as f64)
            }
        }
        DType::U32 => {
            if x.is_nan() {
                0.0
            } else {
                x.trunc().clamp(0.0, u32::MAX as f64)
            }
        }
    }
}

pub fn cast(x: &RefTensor, to: DType) -> RefTensor {
    x.map(|v| round_to(to, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values from Python's math.erfc (C libm).
    #[test]
    fn erfc_matches_libm_into_the_tail() {
        let libm = [
            (0.5, 0.4795001221869535),
            (2.0, 0.004677734981047265),
            (3.0, 2.2090496998585438e-05),
            (5.0, 1.5374597944280351e-12),
            (5.66, 1.2000300753748425e-15),
            (10.0, 2.088487583762545e-45),
            (26.0, 5.663192408856143e-296),
        ];
        for (x, want) in libm {
            assert!((erfc(x) / want - 1.0).abs() < 1e-14, "erfc({x}) = {}, libm {want}", erfc(x));
        }
    }

    #[test]
    fn rounding_matches_known_values() {
        assert_eq!(round_to(DType::BF16, 1.0 + 1.0 / 256.0), 1.0); // tie to even
        assert_eq!(round_to(DType::BF16, 1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(round_to(DType::F16, 65504.0), 65504.0);
        assert_eq!(round_to(DType::F16, 65520.0), f64::INFINITY);
        assert_eq!(round_to(DType::F16, 2f64.powi(-25)), 0.0); // tie to even (0)
        assert_eq!(round_to(DType::F16, 1.5 * 2f64.powi(-25)), 2f64.powi(-24));
        assert_eq!(round_to(DType::F32, 0.1), 0.1f32 as f64);
        assert_eq!(round_to(DType::I32, -2.7), -2.0);
        assert!((erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-15);
        assert!((erf(-2.0) + 0.995_322_265_018_952_7).abs() < 1e-15);
    }
}
