//! Batched matrix multiplication with broadcast batch dims, and products with a quantized
//! weight matrix (`QMatrix`).

use crate::autograd::Op;
use crate::error::{invalid, Error, Result};
use crate::layout::broadcast_shapes;
use crate::quant::QMatrix;
use crate::{DType, Tensor};

impl Tensor {
    /// (..., m, k) @ (..., k, n) -> (..., m, n). Batch dims broadcast; transposed views
    /// (`t()`) are read in place, without a copy.
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        self.check_float("matmul")?;
        self.check_same_dtype("matmul", other)?;
        if self.rank() < 2 || other.rank() < 2 {
            return Err(invalid(
                "matmul",
                format!("operands need rank >= 2, got {:?} and {:?}", self.shape(), other.shape()),
            ));
        }
        let (ra, rb) = (self.rank(), other.rank());
        let (m, k) = (self.shape()[ra - 2], self.shape()[ra - 1]);
        let (k2, n) = (other.shape()[rb - 2], other.shape()[rb - 1]);
        if k != k2 {
            return Err(Error::ShapeMismatch { op: "matmul", lhs: self.shape().to_vec(), rhs: other.shape().to_vec() });
        }
        let batch = broadcast_shapes("matmul", &self.shape()[..ra - 2], &other.shape()[..rb - 2])?;
        let with = |x: usize, y: usize| -> Vec<usize> { batch.iter().copied().chain([x, y]).collect() };
        let a = self.broadcast_to(&with(m, k))?;
        let b = other.broadcast_to(&with(k, n))?;
        let out = a.storage().matmul(a.layout(), (&b.storage(), b.layout()))?;
        // dA = g B^T reads B, dB = A^T g reads A: an operand is kept only when the other one
        // gets a gradient (under LoRA, the input of a frozen projection is not kept).
        let record = || Op::Matmul {
            a: if b.tracks_grad() { a.clone() } else { a.graph_link() },
            b: if a.tracks_grad() { b.clone() } else { b.graph_link() },
        };
        Ok(Tensor::from_kernel(out, &with(m, n), record, &[&a, &b]))
    }
}

impl Tensor {
    /// x (..., cols) @ W^T -> (..., rows) with a quantized weight `w` (rows, cols): a
    /// linear layer on GGUF weights. On the CPU, activations are rounded to 8 bits per
    /// group of 32 for the integer kernels (llama.cpp's scheme); on a GPU the blocks are
    /// dequantized in the shader and x stays f32 (the weights are uploaded to x's GPU on
    /// first use: `QMatrix::to_device`). Float weights are used exactly. f16/bf16 `x` is
    /// computed in f32 and rounded back. Gradients flow to `x` (W is frozen).
    pub fn matmul_qt(&self, w: &QMatrix) -> Result<Tensor> {
        let (x, m) = self.quant_operand("matmul_qt", w, w.cols())?;
        let y = x.storage().qmatmul_t(x.layout(), w, m)?;
        let op = || Op::MatmulQt { x: x.graph_link(), w: w.clone() };
        let y = Tensor::from_kernel(y, &with_last(x.shape(), w.rows()), op, &[&x]);
        y.to_dtype(self.dtype())
    }

    /// x (..., rows) @ W -> (..., cols) with a quantized weight `w` (rows, cols): the
    /// backward of [`Tensor::matmul_qt`] (W dequantized in slabs, no activation rounding).
    /// Gradients flow to `x`.
    pub fn matmul_q(&self, w: &QMatrix) -> Result<Tensor> {
        let (x, m) = self.quant_operand("matmul_q", w, w.rows())?;
        let y = x.storage().qmatmul_n(x.layout(), w, m)?;
        let op = || Op::MatmulQ { x: x.graph_link(), w: w.clone() };
        let y = Tensor::from_kernel(y, &with_last(x.shape(), w.cols()), op, &[&x]);
        y.to_dtype(self.dtype())
    }

    /// Checks `self` (..., k) for a product with `w` and returns it as f32 (a recorded
    /// cast when it is f16/bf16) with its row count m = prod(...).
    fn quant_operand(&self, op: &'static str, w: &QMatrix, k: usize) -> Result<(Tensor, usize)> {
        self.check_float(op)?;
        if self.shape().last() != Some(&k) {
            return Err(Error::ShapeMismatch { op, lhs: self.shape().to_vec(), rhs: w.shape().to_vec() });
        }
        let m = self.shape()[..self.rank() - 1].iter().product();
        Ok((self.to_dtype(DType::F32)?, m))
    }
}

/// `shape` with its last dim replaced by `n`.
fn with_last(shape: &[usize], n: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    *s.last_mut().expect("rank >= 1") = n;
    s
}
