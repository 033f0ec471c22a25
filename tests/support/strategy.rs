//! Proptest strategies for problems that more than one harness draws: the property tests
//! (`tests/properties.rs`) and `lamina kernel check`'s property run.

use crate::Problem;
use proptest::prelude::*;

/// A random matmul: 0 or 1 batch dims of 1 to 3, m and k of 1 to 23, n of 0 to 23 (odd
/// sizes around every tile edge), either operand transposed (read in place). Shrinks
/// towards one batch-free 1x1x0 product.
pub fn matmul_problem() -> impl Strategy<Value = Problem> {
    (prop::collection::vec(1usize..4, 0..2), 1usize..24, 1usize..24, 0usize..24, any::<bool>(), any::<bool>()).prop_map(
        |(batch, m, k, n, ta, tb)| {
            let a: Vec<usize> = batch.iter().copied().chain([m, k]).collect();
            let b: Vec<usize> = batch.iter().copied().chain([k, n]).collect();
            Problem::Matmul { a, b, ta, tb }
        },
    )
}
