//! `QMatrix` and `Tensor::matmul_qt` / `matmul_q` end to end: construction errors, shapes,
//! dtypes, views, and gradients (finite differences on the exact float-weight path; the
//! quantized path against the f64 product with the dequantized weights).

use super::{GgmlType, QMatrix};
use crate::{DType, Error, Tensor};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, 0.0, 1.0, seed, DType::F32).unwrap()
}

fn q(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> QMatrix {
    QMatrix::from_tensor(&randn(&[rows, cols], seed), ty).unwrap()
}

#[test]
fn qmatrix_checks_sizes_and_types() {
    // 64 Q4_1 columns = 2 blocks of 20 bytes.
    assert!(QMatrix::new(GgmlType::Q4_1, 3, 64, vec![0u8; 120]).is_ok());
    let wrong_bytes = QMatrix::new(GgmlType::Q4_1, 3, 64, vec![0u8; 119]).unwrap_err();
    assert!(wrong_bytes.to_string().contains("takes 120 bytes"), "{wrong_bytes}");
    let partial_block = QMatrix::new(GgmlType::Q4_1, 3, 48, vec![0u8; 90]).unwrap_err();
    assert!(partial_block.to_string().contains("not a whole number"), "{partial_block}");
    assert!(QMatrix::new(GgmlType::Q4K, 1, 128, vec![0u8; 72]).is_err());
    assert!(QMatrix::new(GgmlType::Q8_1, 1, 32, vec![0u8; 36]).is_err()); // no decoder
    assert!(QMatrix::from_tensor(&randn(&[2, 3, 32], 1), GgmlType::Q8_0).is_err());
    assert!(QMatrix::from_tensor(&randn(&[2, 40], 1), GgmlType::Q8_0).is_err());
    assert!(QMatrix::from_tensor(&randn(&[2, 256], 1), GgmlType::Q3K).is_err()); // no quantizer
    let ints = Tensor::from_vec(vec![1i32; 64], &[2, 32]).unwrap();
    assert!(matches!(QMatrix::from_tensor(&ints, GgmlType::Q8_0), Err(Error::UnsupportedDType { .. })));
}

#[test]
fn qmatrix_accessors_and_roundtrip() {
    let t = randn(&[5, 64], 2);
    let w = QMatrix::from_tensor(&t, GgmlType::Q8_0).unwrap();
    assert_eq!((w.rows(), w.cols(), w.shape(), w.ggml_type()), (5, 64, [5, 64], GgmlType::Q8_0));
    assert_eq!((w.row_bytes(), w.n_bytes(), w.data().len()), (68, 340, 340));
    let d = w.dequantize().unwrap();
    assert_eq!(d.shape(), &[5, 64]);
    let (a, b) = (t.to_vec_f32().unwrap(), d.to_vec_f32().unwrap());
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 0.03), "Q8_0 round trip");
    let mut row = vec![0f32; 64];
    w.dequantize_row_into(4, &mut row).unwrap();
    assert_eq!(row, b[256..]);
    assert!(w.dequantize_row_into(5, &mut row).is_err());
    // A transposed view quantizes its logical (row-major) values.
    let wt = QMatrix::from_tensor(&randn(&[64, 5], 3).t().unwrap(), GgmlType::F32).unwrap();
    assert_eq!(wt.dequantize().unwrap().to_vec_f32().unwrap(), randn(&[64, 5], 3).t().unwrap().to_vec_f32().unwrap());
}

#[test]
fn matmul_qt_shapes_views_and_dtypes() {
    let w = q(GgmlType::Q4_1, 6, 64, 4);
    let wd = w.dequantize().unwrap();
    let x = randn(&[2, 3, 64], 5);
    let y = x.matmul_qt(&w).unwrap();
    assert_eq!(y.shape(), &[2, 3, 6]);
    let want = x.matmul(&wd.t().unwrap()).unwrap();
    let close = |a: &Tensor, b: &Tensor, tol: f32| {
        let (a, b) = (a.to_vec_f32().unwrap(), b.to_vec_f32().unwrap());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        a.iter().zip(&b).all(|(p, q)| (p - q).abs() <= tol * scale)
    };
    assert!(close(&y, &want, 0.02));
    // Rank 1, a strided view, and an empty batch.
    assert_eq!(x.narrow(1, 0, 1).unwrap().reshape(&[2, 64]).unwrap().matmul_qt(&w).unwrap().shape(), &[2, 6]);
    let xt = randn(&[64, 3], 6).t().unwrap();
    assert!(close(&xt.matmul_qt(&w).unwrap(), &xt.matmul(&wd.t().unwrap()).unwrap(), 0.02));
    assert_eq!(randn(&[64], 7).matmul_qt(&w).unwrap().shape(), &[6]);
    assert_eq!(Tensor::zeros(&[0, 64], DType::F32).unwrap().matmul_qt(&w).unwrap().shape(), &[0, 6]);
    // f16 in, f16 out.
    let yh = x.to_dtype(DType::F16).unwrap().matmul_qt(&w).unwrap();
    assert_eq!(yh.dtype(), DType::F16);
    assert!(close(&yh, &want, 0.02));
    // matmul_q: x (..., rows) @ W.
    let g = randn(&[4, 6], 8);
    assert!(close(&g.matmul_q(&w).unwrap(), &g.matmul(&wd).unwrap(), 1e-5));
}

#[test]
fn matmul_qt_errors() {
    let w = q(GgmlType::Q8_0, 6, 64, 4);
    let bad_cols = randn(&[3, 32], 1).matmul_qt(&w).unwrap_err();
    assert_eq!(bad_cols, Error::ShapeMismatch { op: "matmul_qt", lhs: vec![3, 32], rhs: vec![6, 64] });
    assert!(matches!(Tensor::scalar(1.0).matmul_qt(&w), Err(Error::ShapeMismatch { .. })));
    let ints = Tensor::from_vec(vec![1i32; 64], &[1, 64]).unwrap();
    assert!(matches!(ints.matmul_qt(&w), Err(Error::UnsupportedDType { op: "matmul_qt", .. })));
    assert!(matches!(randn(&[2, 64], 1).matmul_q(&w), Err(Error::ShapeMismatch { op: "matmul_q", .. })));
}

/// Finite differences of L = sum(c * (x W^T)) on float weights, where the forward is exact.
#[test]
fn matmul_qt_gradient_finite_differences() {
    for ty in [GgmlType::F32, GgmlType::F16] {
        let w = q(ty, 5, 7, 9);
        let x0 = randn(&[3, 7], 10).to_vec_f32().unwrap();
        let c = randn(&[3, 5], 11);
        let loss = |x: &[f32]| -> f64 {
            let y = Tensor::from_vec(x.to_vec(), &[3, 7]).unwrap().matmul_qt(&w).unwrap();
            y.mul(&c).unwrap().to_vec_f64().unwrap().iter().sum()
        };
        let x = Tensor::from_vec(x0.clone(), &[3, 7]).unwrap().requires_grad_();
        x.matmul_qt(&w).unwrap().mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
        let grad = x.grad().unwrap().to_vec_f32().unwrap();
        let h = 1e-2f32;
        for i in 0..x0.len() {
            let (mut p, mut m) = (x0.clone(), x0.clone());
            p[i] += h;
            m[i] -= h;
            let fd = (loss(&p) - loss(&m)) / (2.0 * h as f64);
            assert!((fd - grad[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()), "{ty} x[{i}]: fd {fd} vs {}", grad[i]);
        }
    }
}

/// On quantized weights the forward rounds x, so finite differences are steps; the gradient
/// must be the exact g @ W_dequantized instead (W gets none).
#[test]
fn matmul_qt_gradient_on_quantized_weights() {
    let w = q(GgmlType::Q4_1, 12, 64, 12);
    let wd = w.dequantize().unwrap();
    let x = randn(&[2, 3, 64], 13).requires_grad_();
    let g = randn(&[2, 3, 12], 14);
    x.matmul_qt(&w).unwrap().backward_with(&g).unwrap();
    let want = g.reshape(&[6, 12]).unwrap().matmul(&wd).unwrap().to_vec_f64().unwrap();
    let got = x.grad().unwrap();
    assert_eq!(got.shape(), &[2, 3, 64]);
    for (a, b) in got.to_vec_f64().unwrap().iter().zip(&want) {
        assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
    // Through a cast: f16 x gets an f16 gradient.
    let xh = randn(&[2, 64], 15).to_dtype(DType::F16).unwrap().requires_grad_();
    xh.matmul_qt(&w).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(xh.grad().unwrap().dtype(), DType::F16);
}

#[test]
fn shared_bytes_are_used_in_place() {
    let owned = q(GgmlType::Q4_1, 3, 64, 9);
    // The blocks inside a larger buffer (as in a memory-mapped file), after a header.
    let mut file = vec![0xAB_u8; 10];
    file.extend_from_slice(owned.data());
    let n = file.len();
    let owner: super::SharedBytes = std::sync::Arc::new(file);
    let shared = QMatrix::from_shared(GgmlType::Q4_1, 3, 64, owner.clone(), 10..n).unwrap();
    assert_eq!(shared.data(), owned.data());
    let x = randn(&[2, 64], 4);
    assert_eq!(x.matmul_qt(&shared).unwrap().to_vec_f32().unwrap(), x.matmul_qt(&owned).unwrap().to_vec_f32().unwrap());
    assert!(QMatrix::from_shared(GgmlType::Q4_1, 3, 64, owner.clone(), 10..n + 1).is_err(), "past the end");
    assert!(QMatrix::from_shared(GgmlType::Q4_1, 3, 64, owner, 11..n).is_err(), "wrong length");
}
