//! Layers over weights that stay in quantized ggml blocks (frozen): a projection whose
//! product runs on the packed blocks (`Tensor::matmul_qt`), and an embedding table that
//! dequantizes only the rows it looks up. `Proj` and `Table` let one model
//! implementation hold float or quantized weights.

use crate::nn::Linear;
use lamina_tensor::quant::QMatrix;
use lamina_tensor::{DType, Device, Result, Tensor};

/// y = x W^T + b with W in quantized blocks.
#[derive(Clone)]
pub struct QLinear {
    pub weight: QMatrix, // (out, in)
    pub bias: Option<Tensor>,
}

impl QLinear {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.matmul_qt(&self.weight)?; // (..., out)
        if let Some(b) = &self.bias {
            y = y.add(b)?;
        }
        Ok(y)
    }
}

/// A projection of a pretrained model: float weights (trainable, any device) or quantized
/// blocks (frozen, CPU).
#[derive(Clone)]
pub enum Proj {
    Float(Linear),
    Quant(QLinear),
}

impl Proj {
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Proj::Float(l) => l.forward(x),
            Proj::Quant(q) => q.forward(x),
        }
    }

    /// (out, in).
    pub fn shape(&self) -> [usize; 2] {
        match self {
            Proj::Float(l) => [l.weight.shape()[0], l.weight.shape()[1]],
            Proj::Quant(q) => q.weight.shape(),
        }
    }

    /// Bytes the weight occupies.
    pub fn weight_bytes(&self) -> usize {
        match self {
            Proj::Float(l) => l.weight.numel() * l.weight.dtype().size_in_bytes(),
            Proj::Quant(q) => q.weight.n_bytes(),
        }
    }
}

/// An embedding table (num, dim): float, or quantized with rows decoded on lookup.
#[derive(Clone)]
pub enum Table {
    Float(Tensor),
    Quant(QMatrix),
}

impl Table {
    /// Rows for `ids`: (len, dim) on `device`.
    pub fn lookup(&self, ids: &[u32], device: Device) -> Result<Tensor> {
        match self {
            Table::Float(t) => t.embedding(&Tensor::from_slice(ids, &[ids.len()])?.to_device(device)?),
            Table::Quant(q) => {
                let dim = q.cols();
                let mut out = vec![0f32; ids.len() * dim];
                for (row, &id) in out.chunks_mut(dim.max(1)).zip(ids) {
                    q.dequantize_row_into(id as usize, row)?;
                }
                Tensor::from_f32s(out, &[ids.len(), dim], DType::F32)?.to_device(device)
            }
        }
    }

    /// The same weights as an output projection (a tied head).
    pub fn as_proj(&self) -> Proj {
        match self {
            Table::Float(t) => Proj::Float(Linear { weight: t.clone(), bias: None }),
            Table::Quant(q) => Proj::Quant(QLinear { weight: q.clone(), bias: None }),
        }
    }
}
