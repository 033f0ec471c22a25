//! The tensor operations users call. Each op validates its inputs (returning an `Error`
//! that names the op, shapes and dtypes), dispatches to the backend owning the storage,
//! and records itself on the autograd tape.

mod catalog;
mod elementwise;
pub mod kinds;
mod matmul;
mod nn;
mod nn_backward;
mod reduce;
mod shape;

pub use catalog::OpName;
pub use kinds::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
pub(crate) use nn::sdpa_mask;
pub use nn::{rope_tables, scaled_dot_product_attention, RopeConvention};
