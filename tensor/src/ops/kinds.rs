//! The op families, named once. Each backend implements every variant (a new variant
//! breaks the build wherever it is not handled), the f64 reference in `tests/support`
//! defines what each one means, and `autograd/grad.rs` holds its gradient rule.

/// Elementwise functions of one tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Sqrt,
    /// 1 / sqrt(x)
    Rsqrt,
    Tanh,
    /// 1 / (1 + exp(-x))
    Sigmoid,
    Relu,
    /// x * sigmoid(x)
    Silu,
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), GPT-2's form.
    GeluTanh,
    /// 0.5 x (1 + erf(x / sqrt 2)), the exact form.
    GeluErf,
    Abs,
    /// 1 / x
    Recip,
    /// x * x
    Square,
    /// x ^ e (NaN for negative x and non-integer e, as `powf`).
    Powf(f32),
    /// min(max(x, min), max)
    Clamp {
        min: f32,
        max: f32,
    },
    /// x * mul + add
    Affine {
        mul: f32,
        add: f32,
    },
}

/// Elementwise functions of two tensors (broadcast to a common shape first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
}

/// Elementwise comparisons; the result is 1.0 where true, 0.0 where false, in the
/// inputs' dtype (masks are ordinary tensors so `where_cond` and `mul` can use them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Reductions over a set of axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
}

/// The code a kernel receives for an op of a family: its position in the family's list
/// (`UnaryOp::KINDS`, `BinaryOp::ALL`...). The GPU's shaders name these codes through a
/// WGSL `const` block generated from the same lists (`gpu/codes.rs`), so no code is written
/// twice.
pub trait OpCode: Copy + std::fmt::Debug + 'static {
    /// The family's prefix in WGSL (`UNARY` gives `UNARY_GELU_TANH`).
    const FAMILY: &'static str;
    /// One op of each kind, in code order.
    fn kinds() -> &'static [Self];
    /// Whether `self` and `other` are the same kind (scalars ignored).
    fn same_kind(self, other: Self) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }
    /// The op's code. Every kind is in `kinds()` (a test checks), so the search succeeds.
    fn code(self) -> u32 {
        Self::kinds().iter().position(|&k| k.same_kind(self)).unwrap_or(usize::MAX) as u32
    }
    /// The kind's name in WGSL: the variant's name in upper snake case, after the family.
    fn wgsl_name(self) -> String {
        let debug = format!("{self:?}");
        let variant = debug.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or("");
        let mut name = format!("{}_", Self::FAMILY);
        for (i, c) in variant.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_uppercase());
        }
        name
    }
}

impl UnaryOp {
    /// Every kind of unary op (scalars zero), in code order.
    pub const KINDS: [UnaryOp; 17] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Silu,
        UnaryOp::GeluTanh,
        UnaryOp::GeluErf,
        UnaryOp::Abs,
        UnaryOp::Recip,
        UnaryOp::Square,
        UnaryOp::Powf(0.0),
        UnaryOp::Clamp { min: 0.0, max: 0.0 },
        UnaryOp::Affine { mul: 0.0, add: 0.0 },
    ];

    /// The op's scalars (powf's exponent, clamp's bounds, affine's mul and add), zero where
    /// it has none: kernels receive them beside the code.
    pub fn scalars(self) -> (f32, f32) {
        match self {
            UnaryOp::Powf(e) => (e, 0.0),
            UnaryOp::Clamp { min, max } => (min, max),
            UnaryOp::Affine { mul, add } => (mul, add),
            _ => (0.0, 0.0),
        }
    }
}

impl OpCode for UnaryOp {
    const FAMILY: &'static str = "UNARY";
    fn kinds() -> &'static [Self] {
        &Self::KINDS
    }
}

impl BinaryOp {
    pub const ALL: [BinaryOp; 6] =
        [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Minimum];
}

impl OpCode for BinaryOp {
    const FAMILY: &'static str = "BINARY";
    fn kinds() -> &'static [Self] {
        &Self::ALL
    }
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];
}

impl OpCode for CmpOp {
    const FAMILY: &'static str = "CMP";
    fn kinds() -> &'static [Self] {
        &Self::ALL
    }
}

impl ReduceOp {
    pub const ALL: [ReduceOp; 3] = [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min];
}

impl OpCode for ReduceOp {
    const FAMILY: &'static str = "REDUCE";
    fn kinds() -> &'static [Self] {
        &Self::ALL
    }
}

impl UnaryOp {
    /// Evaluate on one f32: the scalar definition every kernel must agree with.
    #[inline]
    pub fn eval_f32(self, x: f32) -> f32 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Rsqrt => 1.0 / x.sqrt(),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Sigmoid => sigmoid(x),
            // NaN passes through (x > 0 is false for NaN, so test it explicitly).
            UnaryOp::Relu => {
                if x > 0.0 || x.is_nan() {
                    x
                } else {
                    0.0
                }
            }
            UnaryOp::Silu => x * sigmoid(x),
            // 0.5 x (1 + tanh(u)) = x sigmoid(2u): the same function without 1 + tanh
            // cancelling for negative x (as the SIMD and GPU kernels compute it).
            UnaryOp::GeluTanh => x * sigmoid(2.0 * gelu_tanh_inner(x)),
            UnaryOp::GeluErf => x * normal_cdf_f32(x),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Recip => 1.0 / x,
            UnaryOp::Square => x * x,
            UnaryOp::Powf(e) => x.powf(e),
            UnaryOp::Clamp { min, max } => {
                if x.is_nan() {
                    x
                } else {
                    x.max(min).min(max)
                }
            }
            UnaryOp::Affine { mul, add } => x * mul + add,
        }
    }
}

impl UnaryOp {
    /// d f(x) / dx at x, given y = f(x) (several derivatives are cheapest from y). The CPU's
    /// fused backward uses this; the gradient rule in `autograd/grad.rs` is the same math
    /// written with tensor ops (the GPU path).
    #[inline]
    pub fn derivative_f32(self, x: f32, y: f32) -> f32 {
        match self {
            UnaryOp::Neg => -1.0,
            UnaryOp::Exp => y,
            UnaryOp::Log => 1.0 / x,
            UnaryOp::Sqrt => 0.5 / y,
            UnaryOp::Rsqrt => -0.5 * y * y * y,
            UnaryOp::Tanh => 1.0 - y * y,
            UnaryOp::Sigmoid => y * (1.0 - y),
            UnaryOp::Relu => f32::from(x > 0.0),
            UnaryOp::Silu => {
                let s = sigmoid(x);
                s * (1.0 + x * (1.0 - s))
            }
            UnaryOp::GeluTanh => {
                // With s = sigmoid(2u) = 0.5 (1 + tanh u): 1 - tanh^2 u = 4 s (1 - s).
                let s = sigmoid(2.0 * gelu_tanh_inner(x));
                s + 2.0 * x * s * (1.0 - s) * GELU_C * (1.0 + 3.0 * GELU_A * x * x)
            }
            UnaryOp::GeluErf => {
                // Phi(x) + x phi(x)
                normal_cdf_f32(x) + x * (-0.5 * x * x).exp() * 0.398_942_3
            }
            UnaryOp::Abs => f32::from(x > 0.0) - f32::from(x < 0.0),
            UnaryOp::Recip => -y * y,
            UnaryOp::Square => 2.0 * x,
            UnaryOp::Powf(e) => e * x.powf(e - 1.0),
            UnaryOp::Clamp { min, max } => f32::from(x >= min && x <= max),
            UnaryOp::Affine { mul, .. } => mul,
        }
    }
}

impl BinaryOp {
    #[inline]
    pub fn eval_f32(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Maximum => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.max(b)
                }
            }
            BinaryOp::Minimum => {
                if a.is_nan() || b.is_nan() {
                    f32::NAN
                } else {
                    a.min(b)
                }
            }
        }
    }
}

impl CmpOp {
    #[inline]
    pub fn eval_f32(self, a: f32, b: f32) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
        }
    }
}

#[inline]
pub fn sigmoid(x: f32) -> f32 {
    // Split by sign so exp never overflows: both branches stay in (0, 1].
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

const GELU_C: f32 = 0.797_884_6; // sqrt(2/pi)
const GELU_A: f32 = 0.044715;

/// u = sqrt(2/pi) (x + 0.044715 x^3), the argument of GPT-2's tanh GELU.
#[inline]
fn gelu_tanh_inner(x: f32) -> f32 {
    GELU_C * (x + GELU_A * x * x * x)
}

/// erf in f32 to about 1e-7 absolute: Abramowitz-Stegun 7.1.26 is too coarse (1.5e-7
/// relative near 0 is fine, but 1e-7 absolute everywhere matters for GELU), so this uses
/// the f64 rational approximation from Numerical Recipes' erfc (fractional error < 1.2e-7).
#[inline]
pub fn erf_f32(x: f32) -> f32 {
    let erfc = erfc_f64(x as f64);
    (1.0 - erfc) as f32
}

/// Phi(x) = 0.5 erfc(-x / sqrt 2), the standard normal CDF, from erfc directly: written as
/// 0.5 (1 + erf(x / sqrt 2)) it cancels for negative x (at x = -4, 1 + erf is 6e-8 from
/// an erf rounded near -1: GELU's tail would lose every digit).
pub fn normal_cdf_f32(x: f32) -> f32 {
    (0.5 * erfc_f64(-(x as f64) * std::f64::consts::FRAC_1_SQRT_2)) as f32
}

/// erfc(x), Numerical Recipes' erfcc (fractional error < 1.2e-7 everywhere), in f64.
fn erfc_f64(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let ans = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        ans
    } else {
        2.0 - ans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each family's list holds every kind once. A variant missing from a list would have
    /// no code: `every_kind`'s exhaustive match fails to compile until it is listed here.
    #[test]
    fn every_kind_is_listed_once() {
        fn check<T: OpCode>(every_kind: impl Fn(T) -> u32) {
            for (i, &k) in T::kinds().iter().enumerate() {
                assert_eq!(k.code(), i as u32, "{k:?}");
                assert_eq!(every_kind(k), i as u32, "{k:?} is out of order in its list");
            }
        }
        check(|op: UnaryOp| match op {
            UnaryOp::Neg => 0,
            UnaryOp::Exp => 1,
            UnaryOp::Log => 2,
            UnaryOp::Sqrt => 3,
            UnaryOp::Rsqrt => 4,
            UnaryOp::Tanh => 5,
            UnaryOp::Sigmoid => 6,
            UnaryOp::Relu => 7,
            UnaryOp::Silu => 8,
            UnaryOp::GeluTanh => 9,
            UnaryOp::GeluErf => 10,
            UnaryOp::Abs => 11,
            UnaryOp::Recip => 12,
            UnaryOp::Square => 13,
            UnaryOp::Powf(_) => 14,
            UnaryOp::Clamp { .. } => 15,
            UnaryOp::Affine { .. } => 16,
        });
        check(|op: BinaryOp| op as u32);
        check(|op: CmpOp| op as u32);
        check(|op: ReduceOp| op as u32);
    }

    #[test]
    fn wgsl_names() {
        assert_eq!(UnaryOp::GeluTanh.wgsl_name(), "UNARY_GELU_TANH");
        assert_eq!(UnaryOp::Clamp { min: 1.0, max: 2.0 }.wgsl_name(), "UNARY_CLAMP");
        assert_eq!(BinaryOp::Maximum.wgsl_name(), "BINARY_MAXIMUM");
        assert_eq!(UnaryOp::Powf(3.0).code(), 14);
    }
}
