//! Rows of the conformance table that other harnesses run too: `lamina kernel check`
//! puts a user's kernel through exactly the cases the built-in one passes
//! (`tests/conformance.rs` takes its matmul rows from here).

use crate::Problem;

fn s(v: &[usize]) -> Vec<usize> {
    v.to_vec()
}

/// Matmul: 65x33x17, batched, broadcast batch, transposed operands (read in place),
/// matrix-vector, 1x1, and empty m or k; then products bigger than the CPU GEMM's blocks
/// (KC = 256, MC = 72), so the blocking seams are crossed.
pub fn matmul_cases() -> Vec<Problem> {
    let mut c = Vec::new();
    for (a, b, ta, tb) in [
        (s(&[65, 33]), s(&[33, 17]), false, false),
        (s(&[65, 33]), s(&[33, 17]), true, false),
        (s(&[65, 33]), s(&[33, 17]), false, true),
        (s(&[65, 33]), s(&[33, 17]), true, true),
        (s(&[3, 17, 9]), s(&[3, 9, 33]), false, false),
        (s(&[2, 1, 5, 7]), s(&[3, 7, 6]), false, true),
        (s(&[4, 64]), s(&[64, 40]), false, false),
        (s(&[33, 17]), s(&[17, 1]), false, false),
        (s(&[1, 1]), s(&[1, 1]), false, false),
        (s(&[7, 0]), s(&[0, 5]), false, false),
        (s(&[0, 7]), s(&[7, 5]), false, false),
        (s(&[75, 260]), s(&[260, 35]), false, false),
        (s(&[75, 260]), s(&[260, 35]), false, true),
        (s(&[1, 300]), s(&[300, 65]), false, false),
    ] {
        c.push(Problem::Matmul { a, b, ta, tb });
    }
    c
}
