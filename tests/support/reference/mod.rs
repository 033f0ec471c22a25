//! The f64 reference: what every op means. Plain loops over multi-indices, written from
//! the op's definition and never from the engine's code (the engine's enums are used only
//! as names). Slow on purpose: the tests use small shapes.
//!
//! - `elementwise`: unary/binary maps, comparisons, select, dtype rounding and casts.
//! - `reduce`: sum/mean/max/min over axes, softmax and log-softmax along a dim.
//! - `linalg`: batched broadcasting matmul and scaled-dot-product attention.
//! - `nn`: layer/RMS norm, cross-entropy, RoPE (and its tables), dropout.
//! - `index`: embedding, index_select, gather, index_add, scatter_add, views, concat.
//! - `quant`: ggml block formats decoded in f64 (for `matmul_qt`), and random blocks.

mod elementwise;
mod index;
mod linalg;
mod nn;
pub mod quant;
mod reduce;

pub use elementwise::{binary, cast, cmp, erf, erfc, masked_fill, round_to, unary, where_cond};
pub use index::{
    broadcast_to, concat, contiguous, embedding, gather, index_add, index_select, narrow, permute, reshape, scatter_add,
};
pub use linalg::{attention, matmul, transpose_last};
pub use nn::{cross_entropy, dropout, engine_dropout_uniform, layer_norm, rms_norm, rope, rope_tables};
pub use reduce::{log_softmax, reduce, softmax, Reduction};

/// Resolve a possibly negative axis against a rank (panics when out of range: the tests
/// only build valid problems).
pub fn axis(a: isize, rank: usize) -> usize {
    let r = if a < 0 { a + rank as isize } else { a };
    assert!(r >= 0 && (r as usize) < rank, "axis {a} out of range for rank {rank}");
    r as usize
}
