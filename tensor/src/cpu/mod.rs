//! The CPU backend: rayon-parallel kernels over host memory with run-time SIMD dispatch.
//!
//! Floating kernels compute in f32: f16/bf16 inputs are widened on load and the result is
//! rounded back to the input dtype. Layouts may be strided; kernels read them through
//! `CpuStorage::f32_view`, which borrows contiguous f32 data and gathers everything else.

mod backend;
pub mod gemm;
pub mod isa;
pub mod parallel;
pub mod qmatmul;
pub mod simd;

mod attention;
mod elementwise;
mod index;
mod matmul;
mod norm;
mod reduce;
mod rope;

pub use attention::attention;
pub use elementwise::{binary, cmp, dropout, unary, unary_backward, where_cond};
pub use index::{concat, gather, index_add, index_select, scatter_add};
pub use matmul::matmul;
pub use norm::{cross_entropy, cross_entropy_backward, layer_norm, rms_norm, softmax_last};
pub use reduce::reduce;
pub use rope::rope;

use crate::error::{Error, Result};
use crate::DType;

/// Rows handed to one rayon task: big enough to amortise scheduling, small enough to
/// balance two to dozens of threads.
pub(crate) const PAR_CHUNK: usize = 1 << 14;

pub(crate) fn float_only(op: &'static str, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::UnsupportedDType { op, dtype })
    }
}

/// Number of rows per parallel task so each task has about `PAR_CHUNK` elements.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    (PAR_CHUNK / row_len.max(1)).max(1)
}
