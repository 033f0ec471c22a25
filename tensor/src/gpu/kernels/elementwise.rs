//! Elementwise kernels on the GPU: unary maps, binary ops, comparisons and select.
//! Shader: `shaders/elementwise.wgsl`. CPU twin: `cpu/elementwise.rs`.
//!
//! Inputs arrive already broadcast to the output shape (stride-0 views) and are read in
//! place through `StridedParams`; the output is contiguous, in the inputs' dtype. Each op
//! is its own pipeline (the op code is an override constant); op scalars (powf's
//! exponent, clamp bounds, affine mul/add) travel in the parameters, so e.g. every
//! `Powf(e)` shares one pipeline.

use super::{check_view, float_only, launch};
use crate::error::{Error, Result};
use crate::gpu::pipeline::{dtype_code, KernelKey, Shader};
use crate::gpu::{GpuStorage, StridedParams};
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Layout};

pub static SHADER: Shader =
    Shader { name: "elementwise", source: include_str!("../../../../shaders/elementwise.wgsl") };

/// Invocations per workgroup (one output word each).
const WG: u32 = 256;

/// The shader's op code and scalars for a unary op (`unary_op` in the shader).
fn unary_code(op: UnaryOp) -> (u32, f32, f32) {
    match op {
        UnaryOp::Neg => (0, 0.0, 0.0),
        UnaryOp::Exp => (1, 0.0, 0.0),
        UnaryOp::Log => (2, 0.0, 0.0),
        UnaryOp::Sqrt => (3, 0.0, 0.0),
        UnaryOp::Rsqrt => (4, 0.0, 0.0),
        UnaryOp::Tanh => (5, 0.0, 0.0),
        UnaryOp::Sigmoid => (6, 0.0, 0.0),
        UnaryOp::Relu => (7, 0.0, 0.0),
        UnaryOp::Silu => (8, 0.0, 0.0),
        UnaryOp::GeluTanh => (9, 0.0, 0.0),
        UnaryOp::GeluErf => (10, 0.0, 0.0),
        UnaryOp::Abs => (11, 0.0, 0.0),
        UnaryOp::Recip => (12, 0.0, 0.0),
        UnaryOp::Square => (13, 0.0, 0.0),
        UnaryOp::Powf(e) => (14, e, 0.0),
        UnaryOp::Clamp { min, max } => (15, min, max),
        UnaryOp::Affine { mul, add } => (16, mul, add),
    }
}

/// One of each unary op kind (scalars zero): what `UnaryKey::all` enumerates.
const UNARY_KINDS: [UnaryOp; 17] = [
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

fn binary_code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Minimum => 5,
    }
}

fn cmp_code(op: CmpOp) -> u32 {
    match op {
        CmpOp::Eq => 0,
        CmpOp::Ne => 1,
        CmpOp::Lt => 2,
        CmpOp::Le => 3,
        CmpOp::Gt => 4,
        CmpOp::Ge => 5,
    }
}

/// A unary pipeline: the op's kind (its code; scalars are parameters) and the dtype.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct UnaryKey {
    pub op: u32,
    pub dtype: DType,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BinaryKey {
    pub op: BinaryOp,
    pub dtype: DType,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CmpKey {
    pub op: CmpOp,
    pub dtype: DType,
}

/// `where`: the value dtype and the condition's dtype (any dtype).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct WhereKey {
    pub dtype: DType,
    pub cond: DType,
}

fn constants(dtype: DType, cond: DType, op: u32) -> Vec<(&'static str, f64)> {
    vec![("DT", dtype_code(dtype)), ("COND_DT", dtype_code(cond)), ("OP", op as f64), ("WG", WG as f64)]
}

impl KernelKey for UnaryKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        "unary"
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        constants(self.dtype, DType::F32, self.op)
    }
    fn all() -> Vec<Self> {
        let ops = UNARY_KINDS.iter().map(|&op| unary_code(op).0);
        ops.flat_map(|op| DType::FLOATS.map(|dtype| UnaryKey { op, dtype })).collect()
    }
}

impl KernelKey for BinaryKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        "binary"
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        constants(self.dtype, DType::F32, binary_code(self.op))
    }
    fn all() -> Vec<Self> {
        use BinaryOp::*;
        let ops = [Add, Sub, Mul, Div, Maximum, Minimum];
        ops.into_iter().flat_map(|op| DType::FLOATS.map(|dtype| BinaryKey { op, dtype })).collect()
    }
}

impl KernelKey for CmpKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        "compare"
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        constants(self.dtype, DType::F32, cmp_code(self.op))
    }
    fn all() -> Vec<Self> {
        use CmpOp::*;
        let ops = [Eq, Ne, Lt, Le, Gt, Ge];
        ops.into_iter().flat_map(|op| DType::FLOATS.map(|dtype| CmpKey { op, dtype })).collect()
    }
}

impl KernelKey for WhereKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        "select_where"
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        constants(self.dtype, self.cond, 0)
    }
    fn all() -> Vec<Self> {
        DType::FLOATS.into_iter().flat_map(|dtype| DType::ALL.map(|cond| WhereKey { dtype, cond })).collect()
    }
}

/// Elementwise `op` of a strided view; contiguous result in the input dtype.
pub fn unary(s: &GpuStorage, l: &Layout, op: UnaryOp) -> Result<GpuStorage> {
    float_only("unary", s.dtype())?;
    check_view("unary", s.len(), l)?;
    let (code, s0, s1) = unary_code(op);
    let params = StridedParams::new("unary", &[l])?.with_scalars(s0, s1);
    let out = GpuStorage::alloc(s.device(), s.dtype(), l.numel())?;
    let key = UnaryKey { op: code, dtype: s.dtype() };
    launch(s.device(), key, &[out.raw(), s.raw()], params.bytes(), out.words(), WG)?;
    Ok(out)
}

/// Checks shared by the two-input kernels: float dtype, same dtype, same device, in bounds.
fn check_pair(op: &'static str, a: &GpuStorage, la: &Layout, b: &GpuStorage, lb: &Layout) -> Result<()> {
    float_only(op, a.dtype())?;
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: a.dtype(), rhs: b.dtype() });
    }
    a.same_device(op, b)?;
    check_view(op, a.len(), la)?;
    check_view(op, b.len(), lb)
}

/// `a op b` for two views of one (broadcast) shape.
pub fn binary(a: &GpuStorage, la: &Layout, b: &GpuStorage, lb: &Layout, op: BinaryOp) -> Result<GpuStorage> {
    check_pair("binary", a, la, b, lb)?;
    let params = StridedParams::new("binary", &[la, lb])?;
    let out = GpuStorage::alloc(a.device(), a.dtype(), la.numel())?;
    let key = BinaryKey { op, dtype: a.dtype() };
    launch(a.device(), key, &[out.raw(), a.raw(), b.raw()], params.bytes(), out.words(), WG)?;
    Ok(out)
}

/// 1.0 where `a op b` holds, else 0.0, in the inputs' dtype.
pub fn cmp(a: &GpuStorage, la: &Layout, b: &GpuStorage, lb: &Layout, op: CmpOp) -> Result<GpuStorage> {
    check_pair("cmp", a, la, b, lb)?;
    let params = StridedParams::new("cmp", &[la, lb])?;
    let out = GpuStorage::alloc(a.device(), a.dtype(), la.numel())?;
    let key = CmpKey { op, dtype: a.dtype() };
    launch(a.device(), key, &[out.raw(), a.raw(), b.raw()], params.bytes(), out.words(), WG)?;
    Ok(out)
}

/// `c != 0 ? a : b` elementwise (all three already broadcast to one shape; `c` any dtype).
pub fn where_cond(
    c: &GpuStorage,
    lc: &Layout,
    a: &GpuStorage,
    la: &Layout,
    b: &GpuStorage,
    lb: &Layout,
) -> Result<GpuStorage> {
    check_pair("where", a, la, b, lb)?;
    a.same_device("where", c)?;
    check_view("where", c.len(), lc)?;
    let params = StridedParams::new("where", &[la, lb, lc])?;
    let out = GpuStorage::alloc(a.device(), a.dtype(), la.numel())?;
    let key = WhereKey { dtype: a.dtype(), cond: c.dtype() };
    launch(a.device(), key, &[out.raw(), a.raw(), b.raw(), c.raw()], params.bytes(), out.words(), WG)?;
    Ok(out)
}

#[cfg(test)]
#[path = "elementwise_tests.rs"]
mod tests;
