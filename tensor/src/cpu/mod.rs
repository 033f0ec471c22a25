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

use crate::error::{invalid, Error, Result};
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

/// `n` f32 outputs written by `write`, which must store every element before it reads any
/// (every kernel that produces its whole output does).
///
/// Why not `vec![0.0; n]`: zeroing is one more full pass of memory writes over the output
/// (a memset of a recycled block under a caching allocator, page faults on a fresh one),
/// which for a memory-bound op is a third to a half of its traffic.
pub(crate) fn write_output(n: usize, write: impl FnOnce(&mut [f32])) -> Result<Vec<f32>> {
    let mut v: Vec<f32> = Vec::new();
    v.try_reserve_exact(n).map_err(|_| invalid("alloc", format!("cannot allocate {n} f32 outputs")))?;
    // SAFETY: the capacity holds n f32s; f32 has no invalid bit patterns, and `write` stores
    // every element before reading any (its contract), so no uninitialised value is read;
    // the length is set only after all n are written. If `write` panics, `v` is dropped
    // with length 0.
    unsafe {
        write(std::slice::from_raw_parts_mut(v.as_mut_ptr(), n));
        v.set_len(n);
    }
    Ok(v)
}

/// Number of rows per parallel task so each task has about `PAR_CHUNK` elements.
pub(crate) fn rows_per_task(row_len: usize) -> usize {
    (PAR_CHUNK / row_len.max(1)).max(1)
}
