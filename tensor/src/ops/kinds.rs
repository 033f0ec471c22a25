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
            UnaryOp::GeluTanh => {
                const C: f32 = 0.797_884_6; // sqrt(2/pi)
                0.5 * x * (1.0 + (C * (x + 0.044715 * x * x * x)).tanh())
            }
            UnaryOp::GeluErf => 0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2)),
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
                const C: f32 = 0.797_884_6;
                const A: f32 = 0.044715;
                let t = (C * (x + A * x * x * x)).tanh();
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * C * (1.0 + 3.0 * A * x * x)
            }
            UnaryOp::GeluErf => {
                // Phi(x) + x phi(x)
                let cdf = 0.5 * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2));
                cdf + x * (-0.5 * x * x).exp() * 0.398_942_3
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

/// erf in f32 to about 1e-7 absolute: Abramowitz-Stegun 7.1.26 is too coarse (1.5e-7
/// relative near 0 is fine, but 1e-7 absolute everywhere matters for GELU), so this uses
/// the f64 rational approximation from Numerical Recipes' erfc (fractional error < 1.2e-7).
#[inline]
pub fn erf_f32(x: f32) -> f32 {
    let x = x as f64;
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
    let erfc = if x >= 0.0 { ans } else { 2.0 - ans };
    (1.0 - erfc) as f32
}
