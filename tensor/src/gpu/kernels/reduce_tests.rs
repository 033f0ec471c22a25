//! GPU reductions against `cpu::reduce`: every axis subset of an awkward 3-D shape, both
//! strategies (long contiguous rows -> tree, short or strided rows -> serial), strided
//! inputs, f16/bf16, NaN propagation and empty rows.

use super::*;
use crate::cpu;
use crate::gpu::testing::{assert_close, data, devices, storage, storage_tol, values};
use crate::gpu::GpuStorage;

/// Sums are compared against the sum of |terms| (tree and sequential orders differ).
fn check(dev: &std::sync::Arc<crate::gpu::GpuDevice>, x: &[f32], dtype: DType, l: &Layout, axes: &[usize]) {
    let cs = storage(dtype, x.to_vec());
    let gs = GpuStorage::from_cpu(&cs, dev).unwrap();
    let abs = storage(DType::F32, values(&cs).iter().map(|v| v.abs()).collect());
    let abs_sum = values(&cpu::reduce(&abs, l, ReduceOp::Sum, axes).unwrap());
    for op in ReduceOp::ALL {
        let want = values(&cpu::reduce(&cs, l, op, axes).unwrap());
        let got = values(&reduce(&gs, l, op, axes).unwrap().to_cpu().unwrap());
        let st = storage_tol(dtype);
        assert_close(
            &format!("{op:?} {dtype} {:?}/{:?} axes {axes:?}", l.shape(), l.strides()),
            &got,
            &want,
            |i, c| match op {
                ReduceOp::Sum => 4e-6 * abs_sum[i] + st * c.abs(),
                _ => 0.0,
            },
        );
    }
}

#[test]
fn every_axis_subset_of_an_awkward_shape() {
    for dev in devices() {
        let shape = [5usize, 7, 11];
        let x = data(385, 11, -2.0, 2.0);
        let contiguous = Layout::contiguous(&shape);
        let permuted = Layout::contiguous(&[11, 5, 7]).permute(&[1, 2, 0]).unwrap();
        let subsets: [&[usize]; 7] = [&[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2], &[0, 1, 2]];
        for l in [&contiguous, &permuted] {
            for axes in subsets {
                check(&dev, &x, DType::F32, l, axes);
            }
        }
    }
}

#[test]
fn long_rows_short_rows_and_half_dtypes() {
    for dev in devices() {
        let x = data(3 * 1000, 12, -1.0, 1.0);
        for dtype in DType::FLOATS {
            // Long contiguous rows: tree strategy, odd row count (half-packed output padding).
            check(&dev, &x, dtype, &Layout::contiguous(&[3, 1000]), &[1]);
            // Long strided rows, few of them: tree over a stride-1000... no: stride 3 rows.
            check(&dev, &x, dtype, &Layout::contiguous(&[1000, 3]), &[0]);
            // Everything into one value.
            check(&dev, &x, dtype, &Layout::contiguous(&[3000]), &[0]);
            // Many short rows: serial strategy.
            check(&dev, &x, dtype, &Layout::contiguous(&[375, 8]), &[1]);
        }
    }
}

#[test]
fn nan_propagates_and_empty_rows_give_the_identity() {
    for dev in devices() {
        let mut x = data(4 * 300, 13, -1.0, 1.0);
        x[5] = f32::NAN; // row 0
        x[2 * 300 + 299] = f32::NAN; // row 2, last element
        x[300 + 7] = f32::INFINITY;
        check(&dev, &x, DType::F32, &Layout::contiguous(&[4, 300]), &[1]);
        check(&dev, &x[..40], DType::F32, &Layout::contiguous(&[4, 10]), &[1]);
        // Rows of length zero.
        check(&dev, &[0.0], DType::F32, &Layout::contiguous(&[3, 0]), &[1]);
    }
}
