//! Reductions: sum / mean / max / min over axes, with or without kept dims.

use super::ReduceOp;
use crate::autograd::Op;
use crate::error::{invalid, Result};
use crate::layout::resolve_axis;
use crate::Tensor;

impl Tensor {
    /// Reduce over `axes` (negative counts from the end; empty means all axes).
    pub fn reduce(&self, op: ReduceOp, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.check_float("reduce")?;
        let mut ax: Vec<usize> = if axes.is_empty() {
            (0..self.rank()).collect()
        } else {
            axes.iter().map(|&a| resolve_axis("reduce", a, self.rank())).collect::<Result<_>>()?
        };
        ax.sort_unstable();
        ax.dedup();
        if op != ReduceOp::Sum && ax.iter().any(|&a| self.shape()[a] == 0) {
            return Err(invalid("reduce", format!("max/min over an empty dim of shape {:?}", self.shape())));
        }
        let out = self.storage().reduce(self.layout(), op, &ax)?;
        let shape: Vec<usize> = self
            .shape()
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| if ax.contains(&i) { keepdim.then_some(1) } else { Some(d) })
            .collect();
        Ok(Tensor::from_kernel(out, &shape, || Op::Reduce { x: self.clone(), op, axes: ax.clone() }, &[self]))
    }

    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axes, keepdim)
    }
    pub fn max(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, axes, keepdim)
    }
    pub fn min(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, axes, keepdim)
    }

    /// Mean over `axes` (NaN over an empty set, as 0/0).
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let s = self.sum(axes, keepdim)?;
        let n = if s.numel() == 0 { 0 } else { self.numel() / s.numel() };
        s.affine(1.0 / n as f32, 0.0)
    }

    /// Sum of all elements, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }

    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }

    /// Sum away the dims that broadcasting added or stretched, giving `shape`
    /// (the adjoint of `broadcast_to`).
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let lead = self
            .rank()
            .checked_sub(shape.len())
            .ok_or_else(|| invalid("sum_to_shape", format!("cannot sum {:?} to {shape:?}", self.shape())))?;
        let axes: Vec<isize> = (0..self.rank())
            .filter(|&i| i < lead || (shape[i - lead] == 1 && self.shape()[i] != 1))
            .map(|i| i as isize)
            .collect();
        let summed = if axes.is_empty() { self.clone() } else { self.sum(&axes, true)? };
        summed.reshape(shape)
    }
}
