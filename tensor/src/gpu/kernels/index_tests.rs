//! GPU index kernels against `cpu::index` bit for bit: copies of every dtype (odd element
//! counts for the 16-bit packing), strided sources and destinations, repeated ids in the
//! scatter-adds (summation order matters), and out-of-range ids as errors.

use super::*;
use crate::cpu;
use crate::gpu::testing::{data, device};

fn up(dev: &std::sync::Arc<crate::gpu::GpuDevice>, s: &CpuStorage) -> GpuStorage {
    GpuStorage::from_cpu(s, dev).unwrap()
}

/// Bit-exact equality (any NaN matches any NaN).
fn assert_same(what: &str, got: &CpuStorage, want: &CpuStorage) {
    assert_eq!(got.dtype(), want.dtype(), "{what}");
    let (g, w) = (
        got.cast(&Layout::contiguous(&[got.len()]), DType::F32),
        want.cast(&Layout::contiguous(&[want.len()]), DType::F32),
    );
    let (g, w) = (g.as_f32_slice().unwrap(), w.as_f32_slice().unwrap());
    assert_eq!(g.len(), w.len(), "{what}: lengths");
    for (i, (a, b)) in g.iter().zip(w).enumerate() {
        assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()), "{what}[{i}]: gpu {a} cpu {b}");
    }
}

fn storage(dtype: DType, n: usize, seed: u64) -> CpuStorage {
    let v = data(n, seed, -50.0, 50.0);
    match dtype {
        DType::I32 => CpuStorage::I32(v.iter().map(|&x| (x * 1e6) as i32).collect()),
        DType::U32 => CpuStorage::U32(v.iter().map(|&x| (x * 1e6) as i32 as u32).collect()),
        d => CpuStorage::from_f32(d, v),
    }
}

#[test]
fn copies_match_cpu_for_every_dtype() {
    let Some(dev) = device() else { return };
    // x viewed (3, 5, 7) from a (5, 3, 7) buffer.
    let lx = Layout::contiguous(&[5, 3, 7]).permute(&[1, 0, 2]).unwrap();
    for dtype in DType::ALL {
        let x = storage(dtype, 105, 1);
        let gx = up(&dev, &x);
        for (dim, ids) in [(0, vec![2i64, 0, 2]), (1, vec![4, 4, 1, 0, 3]), (2, vec![6])] {
            let want = cpu::index_select(&x, &lx, dim, &ids).unwrap();
            let got = index_select(&gx, &lx, dim, &ids).unwrap().to_cpu().unwrap();
            assert_same(&format!("index_select {dtype} dim {dim}"), &got, &want);
        }
        // gather along dim 1 with an index smaller than x in the other dims.
        let li = Layout::contiguous(&[2, 3, 5]);
        let index: Vec<i64> = (0..30).map(|i| (i * 7 % 5) as i64).collect();
        let want = cpu::gather(&x, &lx, 1, &index, &li).unwrap();
        let got = gather(&gx, &lx, 1, &index, &li).unwrap().to_cpu().unwrap();
        assert_same(&format!("gather {dtype}"), &got, &want);
        // concat of three parts along dim 1, one strided, one empty, odd slab sizes.
        let (a, b) = (storage(dtype, 3 * 2 * 7, 2), storage(dtype, 3 * 7, 3));
        let (la, lb, le) =
            (Layout::contiguous(&[3, 2, 7]), Layout::contiguous(&[3, 1, 7]), Layout::contiguous(&[3, 0, 7]));
        let parts = [(&a, &la), (&x, &lx), (&b, &lb), (&b, &le)];
        let want = cpu::concat(&parts, 1).unwrap();
        let (ga, gb) = (up(&dev, &a), up(&dev, &b));
        let got = concat(&[(&ga, &la), (&gx, &lx), (&gb, &lb), (&gb, &le)], 1).unwrap().to_cpu().unwrap();
        assert_same(&format!("concat {dtype}"), &got, &want);
    }
}

#[test]
fn scatter_adds_match_cpu_bit_for_bit() {
    let Some(dev) = device() else { return };
    for dtype in DType::FLOATS {
        // index_add along dim 1 of a (2, 6, 3) destination viewed from a (6, 2, 3) buffer,
        // with repeated ids.
        let ld = Layout::contiguous(&[6, 2, 3]).permute(&[1, 0, 2]).unwrap();
        let dest = storage(dtype, 36, 4);
        let ids = vec![5i64, 0, 5, 5, 2, 0, 1];
        let src = storage(dtype, 2 * ids.len() * 3, 5);
        let ls = Layout::contiguous(&[2, ids.len(), 3]);
        let want = cpu::index_add(&dest, &ld, 1, &ids, &src, &ls).unwrap();
        let got = index_add(&up(&dev, &dest), &ld, 1, &ids, &up(&dev, &src), &ls).unwrap().to_cpu().unwrap();
        assert_same(&format!("index_add {dtype}"), &got, &want);

        // scatter_add along dim 0 and dim 2 with an index smaller than dest.
        let ld = Layout::contiguous(&[4, 3, 5]);
        let dest = storage(dtype, 60, 6);
        for dim in [0, 2] {
            let li = Layout::contiguous(&[3, 2, 4]);
            let size = ld.shape()[dim];
            let index: Vec<i64> = (0..24).map(|i| ((i * 5 + i / 3) % size) as i64).collect();
            // src as a transposed view.
            let src = storage(dtype, 24, 7);
            let ls = Layout::contiguous(&[4, 2, 3]).permute(&[2, 1, 0]).unwrap();
            let want = cpu::scatter_add(&dest, &ld, dim, &index, &li, &src, &ls).unwrap();
            let got =
                scatter_add(&up(&dev, &dest), &ld, dim, &index, &li, &up(&dev, &src), &ls).unwrap().to_cpu().unwrap();
            assert_same(&format!("scatter_add {dtype} dim {dim}"), &got, &want);
        }
    }
}

#[test]
fn embedding_gradient_with_skewed_ids() {
    let Some(dev) = device() else { return };
    // Embedding backward: (V, D) zeros += rows of g at ids, most ids the same token.
    let (v, d, n) = (50, 16, 300);
    let ids: Vec<i64> = (0..n).map(|i| if i % 4 == 0 { (i % v) as i64 } else { 7 }).collect();
    let dest = CpuStorage::F32(vec![0.0; v * d]);
    let src = CpuStorage::F32(data(n * d, 8, -1.0, 1.0));
    let (ld, ls) = (Layout::contiguous(&[v, d]), Layout::contiguous(&[n, d]));
    let want = cpu::index_add(&dest, &ld, 0, &ids, &src, &ls).unwrap();
    let got = index_add(&up(&dev, &dest), &ld, 0, &ids, &up(&dev, &src), &ls).unwrap().to_cpu().unwrap();
    assert_same("embedding grad", &got, &want);
}

#[test]
fn bad_ids_are_errors() {
    let Some(dev) = device() else { return };
    let x = up(&dev, &CpuStorage::F32(vec![1.0; 6]));
    let l = Layout::contiguous(&[2, 3]);
    assert!(matches!(index_select(&x, &l, 1, &[3]), Err(Error::IndexOutOfRange { .. })));
    assert!(matches!(index_select(&x, &l, 0, &[-1]), Err(Error::IndexOutOfRange { .. })));
    assert!(matches!(gather(&x, &l, 0, &[0, 2], &Layout::contiguous(&[1, 2])), Err(Error::IndexOutOfRange { .. })));
}
