//! Every gradient rule, in one place, written with tensor ops so it runs on any backend.
//! `input_grads(op, y, g)` returns (input, dL/d input) for the inputs that are
//! differentiable, given the op's output `y` and the upstream gradient `g = dL/dy`.

use super::Op;
use crate::error::Result;
use crate::ops::{sdpa_mask, BinaryOp, CmpOp, ReduceOp, UnaryOp};
use crate::Tensor;

type Grads = Vec<(Tensor, Tensor)>;

pub(crate) fn input_grads(op: &Op, y: &Tensor, g: &Tensor) -> Result<Grads> {
    Ok(match op {
        Op::Unary { x, op } => vec![(x.clone(), x.unary_backward(*op, y, g)?)],
        Op::Binary { a, b, op } => binary_grads(*op, a, b, y, g)?,
        Op::Where { cond, a, b } => {
            let zero = g.zeros_like()?;
            vec![(a.clone(), cond.where_cond(g, &zero)?), (b.clone(), cond.where_cond(&zero, g)?)]
        }
        Op::Reduce { x, op, axes } => {
            let keep_shape = keepdim_shape(x.shape(), axes);
            let g = g.reshape(&keep_shape)?;
            let gx = match op {
                ReduceOp::Sum => g.broadcast_to(x.shape())?,
                // amax semantics: the gradient is shared evenly between tied maxima.
                ReduceOp::Max | ReduceOp::Min => {
                    let y = y.reshape(&keep_shape)?;
                    let mask = x.cmp(&y, CmpOp::Eq)?;
                    let axes: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
                    let count = mask.sum(&axes, true)?;
                    mask.mul(&g.div(&count)?)?
                }
            };
            vec![(x.clone(), gx)]
        }
        // A frozen operand (a pretrained weight under LoRA) gets no product at all: its
        // gradient would cost as much as the forward GEMM and a weight-sized buffer.
        Op::Matmul { a, b } => {
            let mut out = Vec::with_capacity(2);
            if a.tracks_grad() {
                out.push((a.clone(), g.matmul(&b.t()?)?.sum_to_shape(a.shape())?));
            }
            if b.tracks_grad() {
                out.push((b.clone(), a.t()?.matmul(g)?.sum_to_shape(b.shape())?));
            }
            out
        }
        // y = x W^T and y = x W are each other's backward (W frozen: no gradient).
        Op::MatmulQt { x, w } => vec![(x.clone(), g.matmul_q(w)?)],
        Op::MatmulQ { x, w } => vec![(x.clone(), g.matmul_qt(w)?)],
        Op::Softmax { x } => vec![(x.clone(), y.softmax_last_backward(g, false)?)],
        Op::LogSoftmax { x } => vec![(x.clone(), y.softmax_last_backward(g, true)?)],
        Op::LayerNorm { x, weight, bias, mean, rstd } => {
            let (gx, gw, gb) = x.layer_norm_backward(weight.as_ref(), bias.is_some(), mean, rstd, g)?;
            let mut out = vec![(x.clone(), gx)];
            out.extend(weight.iter().cloned().zip(gw));
            out.extend(bias.iter().cloned().zip(gb));
            out
        }
        Op::RmsNorm { x, weight, rstd } => {
            let (gx, gw) = x.rms_norm_backward(weight.as_ref(), rstd, g)?;
            let mut out = vec![(x.clone(), gx)];
            out.extend(weight.iter().cloned().zip(gw));
            out
        }
        Op::CrossEntropy { logits, targets, ignore_index } => {
            vec![(logits.clone(), logits.cross_entropy_backward(targets, *ignore_index, g)?)]
        }
        Op::IndexSelect { x, dim, ids } => {
            vec![(x.clone(), x.zeros_like()?.index_add(*dim, ids, g)?)]
        }
        Op::Gather { x, dim, index } => {
            vec![(x.clone(), x.zeros_like()?.scatter_add(*dim, index, g)?)]
        }
        // The rotation is orthogonal: its transpose is the rotation by -theta.
        Op::Rope { x, cos, sin, convention } => vec![(x.clone(), g.rope(cos, &sin.neg()?, *convention)?)],
        Op::Attention { q, k, v, mask, causal, scale } => attention_grads(q, k, v, mask.as_ref(), *causal, *scale, g)?,
        Op::Cast { x, from } => vec![(x.clone(), g.to_dtype(*from)?)],
        Op::ToDevice { x, from } => vec![(x.clone(), g.to_device(*from)?)],
        Op::Reshape { x } => vec![(x.clone(), g.reshape(x.shape())?)],
        Op::Permute { x, dims } => {
            let mut inverse = vec![0; dims.len()];
            for (i, &d) in dims.iter().enumerate() {
                inverse[d] = i;
            }
            vec![(x.clone(), g.permute(&inverse)?)]
        }
        Op::Narrow { x, dim, start } => {
            // Pad the gradient back with zeros on both sides of the slice.
            let (dim, start) = (*dim, *start);
            let full = x.shape()[dim];
            let len = g.shape()[dim];
            let mut parts = Vec::new();
            let zeros_of = |n: usize| {
                let mut s = x.shape().to_vec();
                s[dim] = n;
                g.full_like(&s, 0.0)
            };
            if start > 0 {
                parts.push(zeros_of(start)?);
            }
            parts.push(g.clone());
            if start + len < full {
                parts.push(zeros_of(full - start - len)?);
            }
            let refs: Vec<&Tensor> = parts.iter().collect();
            vec![(x.clone(), Tensor::cat(&refs, dim)?)]
        }
        Op::Broadcast { x } => vec![(x.clone(), g.sum_to_shape(x.shape())?)],
        Op::Copy { x } => vec![(x.clone(), g.clone())],
        // y = x * mask is linear in x: the same mask (same seed, same indices) applies to g.
        Op::Dropout { x, p, seed } => vec![(x.clone(), g.dropout(*p, *seed)?)],
        Op::Concat { xs, dim } => {
            let mut start = 0;
            let mut out = Vec::with_capacity(xs.len());
            for x in xs {
                let len = x.shape()[*dim];
                out.push((x.clone(), g.narrow(*dim, start, len)?));
                start += len;
            }
            out
        }
    })
}

fn keepdim_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect()
}

/// The unary rules written with tensor ops (the GPU path; the CPU fuses them into one
/// pass with `UnaryOp::derivative_f32`, which must agree with these).
pub(crate) fn unary_grad(op: UnaryOp, x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Tensor> {
    let zero = x.scalar_like(0.0)?;
    match op {
        UnaryOp::Neg => g.neg(),
        UnaryOp::Exp => g.mul(y),
        UnaryOp::Log => g.div(x),
        UnaryOp::Sqrt => g.div(y)?.affine(0.5, 0.0),
        // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
        UnaryOp::Rsqrt => g.mul(&y.square()?.mul(y)?)?.affine(-0.5, 0.0),
        UnaryOp::Tanh => g.mul(&y.square()?.affine(-1.0, 1.0)?),
        UnaryOp::Sigmoid => g.mul(&y.mul(&y.affine(-1.0, 1.0)?)?),
        UnaryOp::Relu => g.mul(&x.cmp(&zero, CmpOp::Gt)?),
        UnaryOp::Silu => {
            // d/dx x s(x) = s (1 + x (1 - s))
            let s = x.sigmoid()?;
            let d = s.mul(&x.mul(&s.affine(-1.0, 1.0)?)?.affine(1.0, 1.0)?)?;
            g.mul(&d)
        }
        UnaryOp::GeluTanh => {
            const C: f32 = 0.797_884_6;
            const A: f32 = 0.044715;
            let x2 = x.square()?;
            let u = x.mul(&x2.affine(A, 1.0)?)?.affine(C, 0.0)?;
            let t = u.tanh()?;
            let du = x2.affine(3.0 * A * C, C)?;
            let d = t.affine(0.5, 0.5)?.add(&x.mul(&t.square()?.affine(-1.0, 1.0)?)?.mul(&du)?.affine(0.5, 0.0)?)?;
            g.mul(&d)
        }
        UnaryOp::GeluErf => {
            // d/dx x Phi(x) = Phi(x) + x phi(x); Phi = y / x (1/2 at x = 0).
            let half = x.scalar_like(0.5)?;
            let is_zero = x.cmp(&zero, CmpOp::Eq)?;
            let safe_x = is_zero.where_cond(&x.scalar_like(1.0)?, x)?;
            let cdf = is_zero.where_cond(&half, &y.div(&safe_x)?)?;
            let pdf = x.square()?.affine(-0.5, 0.0)?.exp()?.affine(0.398_942_3, 0.0)?; // 1/sqrt(2 pi)
            g.mul(&cdf.add(&x.mul(&pdf)?)?)
        }
        UnaryOp::Abs => {
            let sign = x.cmp(&zero, CmpOp::Gt)?.sub(&x.cmp(&zero, CmpOp::Lt)?)?;
            g.mul(&sign)
        }
        UnaryOp::Recip => g.mul(&y.square()?).and_then(|t| t.neg()),
        UnaryOp::Square => g.mul(x)?.affine(2.0, 0.0),
        UnaryOp::Powf(e) => g.mul(&x.powf(e - 1.0)?)?.affine(e, 0.0),
        UnaryOp::Clamp { min, max } => {
            let lo = x.scalar_like(min)?;
            let hi = x.scalar_like(max)?;
            g.mul(&x.cmp(&lo, CmpOp::Ge)?.mul(&x.cmp(&hi, CmpOp::Le)?)?)
        }
        UnaryOp::Affine { mul, .. } => g.affine(mul, 0.0),
    }
}

fn binary_grads(op: BinaryOp, a: &Tensor, b: &Tensor, y: &Tensor, g: &Tensor) -> Result<Grads> {
    // Only for the operands that need one: a frozen side (a pretrained bias or scale)
    // costs nothing.
    let mut out = Vec::with_capacity(2);
    let mask = |a: &Tensor, b: &Tensor| {
        let cmp = if op == BinaryOp::Maximum { CmpOp::Ge } else { CmpOp::Le };
        a.cmp(b, cmp)
    };
    if a.tracks_grad() {
        let ga = match op {
            BinaryOp::Add | BinaryOp::Sub => g.clone(),
            BinaryOp::Mul => g.mul(b)?,
            BinaryOp::Div => g.div(b)?,
            // Ties send the gradient to `a`, like PyTorch.
            BinaryOp::Maximum | BinaryOp::Minimum => g.mul(&mask(a, b)?)?,
        };
        out.push((a.clone(), ga));
    }
    if b.tracks_grad() {
        let gb = match op {
            BinaryOp::Add => g.clone(),
            BinaryOp::Sub => g.neg()?,
            BinaryOp::Mul => g.mul(a)?,
            BinaryOp::Div => g.mul(y)?.div(b)?.neg()?,
            BinaryOp::Maximum | BinaryOp::Minimum => g.mul(&mask(a, b)?.affine(-1.0, 1.0)?)?,
        };
        out.push((b.clone(), gb));
    }
    Ok(out)
}

/// Backward of softmax(q k^T * scale + mask) v, recomputing the probabilities.
/// Grouped-query heads: key/value head `h / group` serves query head `h`, so their
/// gradients are summed over each group.
fn attention_grads(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    causal: bool,
    scale: f32,
    g: &Tensor,
) -> Result<Grads> {
    let (b, hq, tq, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
    let (hkv, tk, dv) = (k.shape()[1], k.shape()[2], v.shape()[3]);
    let group = hq / hkv;
    let expand = |t: &Tensor, last: usize| -> Result<Tensor> {
        t.unsqueeze(2)?.broadcast_to(&[b, hkv, group, tk, last])?.reshape(&[b, hq, tk, last])
    };
    let (kx, vx) = (expand(k, d)?, expand(v, dv)?); // (B, Hq, Tk, D), (B, Hq, Tk, Dv)
    let mut s = q.matmul(&kx.t()?)?.affine(scale, 0.0)?; // (B, Hq, Tq, Tk)
    if let Some(m) = sdpa_mask(mask, causal, tq, tk, q)? {
        s = s.add(&m)?;
    }
    let p = s.softmax(-1)?;
    let gvx = p.t()?.matmul(g)?; // (B, Hq, Tk, Dv)
    let gp = g.matmul(&vx.t()?)?; // (B, Hq, Tq, Tk)
    let gs = p.mul(&gp.sub(&gp.mul(&p)?.sum(&[-1], true)?)?)?.affine(scale, 0.0)?;
    let gq = gs.matmul(&kx)?;
    let gkx = gs.t()?.matmul(q)?; // (B, Hq, Tk, D)
    let fold = |t: Tensor, last: usize| -> Result<Tensor> { t.reshape(&[b, hkv, group, tk, last])?.sum(&[2], false) };
    let mut out = vec![(q.clone(), gq), (k.clone(), fold(gkx, d)?), (v.clone(), fold(gvx, dv)?)];
    if let Some(m) = mask {
        out.push((m.clone(), gs.affine(1.0 / scale, 0.0)?.sum_to_shape(m.shape())?));
    }
    Ok(out)
}
