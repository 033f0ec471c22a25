//! Elementwise kernels on the GPU: unary maps, binary ops, comparisons and select.
//! Shader: `shaders/elementwise.wgsl`. CPU twin: `cpu/elementwise.rs`.
//!
//! Inputs arrive already broadcast to the output shape (stride-0 views) and are read in
//! place through `StridedParams`; the output is contiguous, in the inputs' dtype. Each op
//! is its own pipeline (the op code, `OpCode::code`, is an override constant; the shader
//! names the codes through the generated `UNARY_*`... constants); op scalars (powf's
//! exponent, clamp bounds, affine mul/add) travel in the parameters, so e.g. every
//! `Powf(e)` shares one pipeline.

use super::{check_view, float_only, launch};
use crate::error::{Error, Result};
use crate::gpu::pipeline::{dtype_code, KernelKey, Shader};
use crate::gpu::{GpuStorage, StridedParams};
use crate::ops::kinds::OpCode;
use crate::ops::{BinaryOp, CmpOp, UnaryOp};
use crate::{DType, Layout};

pub static SHADER: Shader =
    Shader { name: "elementwise", source: include_str!("../../../../shaders/elementwise.wgsl") };

/// Invocations per workgroup (one output word each).
const WG: u32 = 256;

/// A unary pipeline: the op's kind (its code, `OpCode::code`; scalars are parameters) and
/// the dtype.
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
        let ops = UnaryOp::KINDS.iter().map(|op| op.code());
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
        constants(self.dtype, DType::F32, self.op.code())
    }
    fn all() -> Vec<Self> {
        BinaryOp::ALL.into_iter().flat_map(|op| DType::FLOATS.map(|dtype| BinaryKey { op, dtype })).collect()
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
        constants(self.dtype, DType::F32, self.op.code())
    }
    fn all() -> Vec<Self> {
        CmpOp::ALL.into_iter().flat_map(|op| DType::FLOATS.map(|dtype| CmpKey { op, dtype })).collect()
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
    let (s0, s1) = op.scalars();
    let params = StridedParams::new("unary", &[l])?.with_scalars(s0, s1);
    let out = GpuStorage::alloc(s.device(), s.dtype(), l.numel())?;
    let key = UnaryKey { op: op.code(), dtype: s.dtype() };
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
