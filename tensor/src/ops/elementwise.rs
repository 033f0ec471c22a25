//! Unary, binary (broadcasting), comparison, select and cast ops.

use super::{BinaryOp, CmpOp, UnaryOp};
use crate::autograd::Op;
use crate::error::Result;
use crate::layout::broadcast_shapes;
use crate::{DType, Tensor};

impl Tensor {
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        self.check_float("unary")?;
        let out = self.storage().unary(self.layout(), op)?;
        Ok(Tensor::from_kernel(out, self.shape(), || Op::Unary { x: self.clone(), op }, &[self]))
    }

    pub fn neg(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Neg)
    }
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Exp)
    }
    pub fn log(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Log)
    }
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sqrt)
    }
    pub fn rsqrt(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Rsqrt)
    }
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Tanh)
    }
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Sigmoid)
    }
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Relu)
    }
    pub fn silu(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Silu)
    }
    /// GELU, tanh approximation (GPT-2).
    pub fn gelu_tanh(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluTanh)
    }
    /// GELU, exact erf form.
    pub fn gelu_erf(&self) -> Result<Tensor> {
        self.unary(UnaryOp::GeluErf)
    }
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Abs)
    }
    pub fn recip(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Recip)
    }
    pub fn square(&self) -> Result<Tensor> {
        self.unary(UnaryOp::Square)
    }
    pub fn powf(&self, e: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Powf(e))
    }
    pub fn clamp(&self, min: f32, max: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Clamp { min, max })
    }
    /// x * mul + add.
    pub fn affine(&self, mul: f32, add: f32) -> Result<Tensor> {
        self.unary(UnaryOp::Affine { mul, add })
    }
    pub fn scale(&self, s: f32) -> Result<Tensor> {
        self.affine(s, 0.0)
    }

    /// Broadcast both operands to their common shape (recorded views).
    fn broadcast_pair(&self, op: &'static str, other: &Tensor) -> Result<(Tensor, Tensor)> {
        self.check_same_dtype(op, other)?;
        let shape = broadcast_shapes(op, self.shape(), other.shape())?;
        Ok((self.broadcast_to(&shape)?, other.broadcast_to(&shape)?))
    }

    pub fn binary(&self, other: &Tensor, op: BinaryOp) -> Result<Tensor> {
        self.check_float("binary")?;
        let (a, b) = self.broadcast_pair("binary", other)?;
        let out = a.storage().binary(a.layout(), (&b.storage(), b.layout()), op)?;
        // What each rule reads (grad.rs): add/sub neither operand, div only b, mul, max and
        // min both. Operands it does not read are recorded as data-free links.
        let record = || {
            let (ra, rb) = match op {
                BinaryOp::Add | BinaryOp::Sub => (a.graph_link(), b.graph_link()),
                BinaryOp::Div => (a.graph_link(), b.clone()),
                BinaryOp::Mul | BinaryOp::Maximum | BinaryOp::Minimum => (a.clone(), b.clone()),
            };
            Op::Binary { a: ra, b: rb, op }
        };
        Ok(Tensor::from_kernel(out, a.shape(), record, &[&a, &b]))
    }

    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Add)
    }
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Sub)
    }
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Mul)
    }
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Div)
    }
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Maximum)
    }
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.binary(other, BinaryOp::Minimum)
    }

    /// 1.0 where the comparison holds, 0.0 elsewhere (not differentiable). A scalar
    /// `other` of another float dtype is converted to this one's.
    pub fn cmp(&self, other: &Tensor, op: CmpOp) -> Result<Tensor> {
        self.check_float("cmp")?;
        let other = if other.numel() == 1 && other.dtype() != self.dtype() && other.dtype().is_float() {
            other.to_dtype(self.dtype())?
        } else {
            other.clone()
        };
        // Detached operands: the broadcast views record nothing, and the mask has no history.
        let (a, b) = self.detach().broadcast_pair("cmp", &other.detach())?;
        let out = a.storage().cmp(a.layout(), (&b.storage(), b.layout()), op)?;
        Ok(Tensor::from_storage(out, crate::Layout::contiguous(a.shape()), None))
    }

    /// Elementwise select: where `self` (the condition) is nonzero take `a`, else `b`.
    /// All three broadcast together; `a` and `b` are differentiable.
    pub fn where_cond(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.check_float("where")?;
        a.check_same_dtype("where", b)?;
        a.check_same_device("where", self)?;
        let cond = if self.dtype() != a.dtype() { self.to_dtype(a.dtype())?.detach() } else { self.detach() };
        let shape = broadcast_shapes("where", &broadcast_shapes("where", cond.shape(), a.shape())?, b.shape())?;
        let (c, a, b) = (cond.broadcast_to(&shape)?, a.broadcast_to(&shape)?, b.broadcast_to(&shape)?);
        let out = c.storage().where_cond(c.layout(), (&a.storage(), a.layout()), (&b.storage(), b.layout()))?;
        Ok(Tensor::from_kernel(out, &shape, || Op::Where { cond: c.clone(), a: a.clone(), b: b.clone() }, &[&a, &b]))
    }

    /// Replace elements where `mask` is nonzero by `value`.
    pub fn masked_fill(&self, mask: &Tensor, value: f32) -> Result<Tensor> {
        let fill = self.scalar_like(value)?;
        mask.where_cond(&fill, self)
    }

    /// Convert to another dtype (rounding to nearest; float to int truncates toward zero
    /// and saturates, NaN becomes 0).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let out = self.storage().cast(self.layout(), dtype)?;
        let from = self.dtype();
        let track = from.is_float() && dtype.is_float();
        let op = || Op::Cast { x: self.graph_link(), from };
        Ok(if track {
            Tensor::from_kernel(out, self.shape(), op, &[self])
        } else {
            Tensor::from_storage(out, crate::Layout::contiguous(self.shape()), None)
        })
    }
}
