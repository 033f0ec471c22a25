//! Batched matrix multiplication with broadcast batch dims.

use crate::autograd::Op;
use crate::error::{invalid, mixed, Error, Result};
use crate::layout::broadcast_shapes;
use crate::storage::Storage;
use crate::Tensor;
use crate::{cpu, gpu};

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
        let out = match (&*a.storage(), &*b.storage()) {
            (Storage::Cpu(x), Storage::Cpu(y)) => Storage::Cpu(cpu::matmul(x, a.layout(), y, b.layout())?),
            (Storage::Gpu(x), Storage::Gpu(y)) => Storage::Gpu(gpu::kernels::matmul(x, a.layout(), y, b.layout())?),
            _ => return Err(mixed("matmul", &a, &b)),
        };
        Ok(Tensor::from_kernel(out, &with(m, n), || Op::Matmul { a: a.clone(), b: b.clone() }, &[&a, &b]))
    }
}
