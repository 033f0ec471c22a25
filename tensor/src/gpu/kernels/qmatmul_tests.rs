//! The quantized GPU kernels against the host: the shader's decoders against
//! `quant::dequantize_row` (every format, value for value), and the products against f64
//! products with the host-dequantized weights (x stays f32 on the GPU, so only f32
//! summation error is allowed). Weights are random blocks: random quants and scales, f16
//! headers of either sign, so every bit of every format is exercised.

use super::*;
use crate::gpu::testing::{assert_close, data, device, random_qmatrix};
use crate::quant::QMatrix;
use crate::storage::CpuStorage;

fn up(dev: &std::sync::Arc<crate::gpu::GpuDevice>, v: Vec<f32>) -> GpuStorage {
    GpuStorage::from_cpu(&CpuStorage::F32(v), dev).unwrap()
}

fn down(s: &GpuStorage) -> Vec<f32> {
    crate::gpu::testing::values(&s.to_cpu().unwrap())
}

/// Columns for a format: three blocks (so block seams are crossed).
fn cols_for(ty: GgmlType) -> usize {
    3 * ty.block_size()
}

/// f64 reference of y (m, n) = x (m, k) B with B (k, n) given by `b(kk, nn)`, and the
/// scale sum_k |x||B| per output that bounds f32 summation error.
fn reference(x: &[f32], m: usize, k: usize, n: usize, b: impl Fn(usize, usize) -> f32) -> (Vec<f32>, Vec<f32>) {
    let (mut y, mut s) = (vec![0f32; m * n], vec![0f32; m * n]);
    for i in 0..m {
        for j in 0..n {
            let (mut acc, mut abs) = (0f64, 0f64);
            for kk in 0..k {
                let t = x[i * k + kk] as f64 * b(kk, j) as f64;
                acc += t;
                abs += t.abs();
            }
            y[i * n + j] = acc as f32;
            s[i * n + j] = abs as f32;
        }
    }
    (y, s)
}

/// f32 sums of up to 768 terms in any order: within 2e-6 of sum |terms| (measured 2e-7).
const SUM_TOL: f32 = 2e-6;

#[test]
fn shader_decoders_match_the_host() {
    let Some(dev) = device() else { return };
    for (i, &ty) in FORMATS.iter().enumerate() {
        let w = random_qmatrix(ty, 5, cols_for(ty), 10 + i as u64);
        let gpu = down(&dequantize(&w.gpu_copy(&dev).unwrap()).unwrap());
        let host = w.dequantize().unwrap().to_vec_f32().unwrap();
        // The same f32 operations: equal, unless a driver fuses q * d + m into an FMA
        // (then within an ulp of the block's magnitude).
        assert_close(&format!("{ty} dequantize"), &gpu, &host, |_, c| 2.0 * f32::EPSILON * c.abs().max(1e-3));
        assert_eq!(w.gpu_bytes(dev.ordinal()), Some(w.n_bytes().next_multiple_of(4) as u64), "{ty} stays quantized");
    }
}

#[test]
fn matvec_and_tiles_match_f64() {
    let Some(dev) = device() else { return };
    // m = 1 (matvec), m = 6 (matvec, 4 x rows per workgroup, the second group partial),
    // m = 9 (small tiles), m > 64 with rows > 64 (large tiles, edges); odd row counts so
    // neither the 8-row workgroups nor the tiles divide them.
    for (i, &ty) in FORMATS.iter().enumerate() {
        let k = cols_for(ty);
        for (m, rows) in [(1, 37), (6, 37), (9, 37), (70, 67)] {
            let w = random_qmatrix(ty, rows, k, 20 + i as u64);
            let wd = w.dequantize().unwrap().to_vec_f32().unwrap(); // (rows, k)
            let x = data(m * k, 30 + m as u64, -1.0, 1.0);
            let (want, scale) = reference(&x, m, k, rows, |kk, j| wd[j * k + kk]);
            let y = qmatmul_t(&w.gpu_copy(&dev).unwrap(), &up(&dev, x.clone()), &Layout::contiguous(&[m, k]), m);
            let got = down(&y.unwrap());
            assert_close(&format!("{ty} x W^T m={m} rows={rows}"), &got, &want, |j, _| SUM_TOL * scale[j] + 1e-30);

            // The gradient product: g (m, rows) W.
            let g = data(m * rows, 40 + m as u64, -1.0, 1.0);
            let (want, scale) = reference(&g, m, rows, k, |r, c| wd[r * k + c]);
            let y = qmatmul_n(&w.gpu_copy(&dev).unwrap(), &up(&dev, g), &Layout::contiguous(&[m, rows]), m);
            assert_close(&format!("{ty} g W m={m}"), &down(&y.unwrap()), &want, |j, _| SUM_TOL * scale[j] + 1e-30);
        }
    }
}

#[test]
fn views_offsets_and_float_weights() {
    let Some(dev) = device() else { return };
    let (m, k, rows) = (3, 64, 9);
    let w = random_qmatrix(GgmlType::Q4_1, rows, k, 50);
    let wd = w.dequantize().unwrap().to_vec_f32().unwrap();
    let gw = w.gpu_copy(&dev).unwrap();
    // x stored (k, m + 1) and viewed transposed and narrowed: strided, copied first.
    let stored = data(k * (m + 1), 51, -1.0, 1.0);
    let view = Layout::contiguous(&[k, m + 1]).permute(&[1, 0]).unwrap().narrow(0, 1, m).unwrap();
    let x: Vec<f32> =
        (0..m).flat_map(|i| (0..k).map(move |kk| (i, kk))).map(|(i, kk)| stored[kk * (m + 1) + i + 1]).collect();
    let (want, scale) = reference(&x, m, k, rows, |kk, j| wd[j * k + kk]);
    let got = down(&qmatmul_t(&gw, &up(&dev, stored), &view, m).unwrap());
    assert_close("strided x", &got, &want, |j, _| SUM_TOL * scale[j] + 1e-30);
    // Contiguous rows at an odd offset (the matrix-vector kernel needs a multiple of 4),
    // and at offset 4 (read in place).
    for off in [1, 4] {
        let mut buf = vec![7.0f32; off];
        buf.extend_from_slice(&x[..k]);
        let l = Layout::new(vec![1, k], vec![k, 1], off);
        let got = down(&qmatmul_t(&gw, &up(&dev, buf), &l, 1).unwrap());
        assert_close(&format!("offset {off}"), &got, &want[..rows], |j, _| SUM_TOL * scale[j] + 1e-30);
    }
    // Float matrices go through the f32 matmul, exactly as the CPU.
    let t = crate::Tensor::from_vec(data(rows * 7, 52, -1.0, 1.0), &[rows, 7]).unwrap();
    let wf = QMatrix::from_tensor(&t, GgmlType::F16).unwrap();
    let wfd = wf.dequantize().unwrap().to_vec_f32().unwrap();
    let x = data(2 * 7, 53, -1.0, 1.0);
    let (want, scale) = reference(&x, 2, 7, rows, |kk, j| wfd[j * 7 + kk]);
    let got = down(&qmatmul_t(&wf.gpu_copy(&dev).unwrap(), &up(&dev, x), &Layout::contiguous(&[2, 7]), 2).unwrap());
    assert_close("F16 weights", &got, &want, |j, _| SUM_TOL * scale[j] + 1e-30);
    assert_eq!(wf.gpu_bytes(dev.ordinal()), Some((rows * 7 * 4) as u64), "float weights are uploaded as f32");
}

#[test]
fn empty_products_and_limits() {
    let Some(dev) = device() else { return };
    let w = random_qmatrix(GgmlType::Q8_0, 6, 64, 60);
    let gw = w.gpu_copy(&dev).unwrap();
    let y = qmatmul_t(&gw, &up(&dev, vec![]), &Layout::contiguous(&[0, 64]), 0).unwrap();
    assert_eq!(y.len(), 0);
    // Zero columns: every output is an empty sum.
    let w0 = QMatrix::new(GgmlType::Q8_0, 3, 0, Vec::<u8>::new()).unwrap();
    let y = qmatmul_t(&w0.gpu_copy(&dev).unwrap(), &up(&dev, vec![0.0; 4]), &Layout::contiguous(&[2, 0]), 2);
    assert_eq!(down(&y.unwrap()), vec![0.0; 6]);
    // f16 activations are the op's job to cast; the kernel refuses them.
    let h = GpuStorage::from_cpu(&CpuStorage::from_f32(DType::F16, vec![0.0; 64]), &dev).unwrap();
    assert!(qmatmul_t(&gw, &h, &Layout::contiguous(&[1, 64]), 1).is_err());
}

#[test]
fn matrices_over_the_binding_limit_are_refused() {
    let Some(dev) = device() else { return };
    let max = dev.summary().max_storage_buffer_binding_size;
    if max > 1 << 30 {
        let why = format!("the binding limit ({max} bytes) is too large to exceed cheaply in a test");
        crate::skip_or_fail("LAMINA_REQUIRE_GPU_FULL", &why);
        return;
    }
    // Q8_0 rows of 32 elements (34 bytes) just past the limit; zeroed pages, never touched.
    let rows = (max / 34 + 1) as usize;
    let owner: crate::quant::SharedBytes = std::sync::Arc::new(vec![0u8; rows * 34]);
    let w = QMatrix::from_shared(GgmlType::Q8_0, rows, 32, owner, 0..rows * 34).unwrap();
    let err = w.gpu_copy(&dev).err().expect("over the limit").to_string();
    assert!(err.contains("max_storage_buffer_binding_size"), "{err}");
    assert_eq!(w.gpu_bytes(dev.ordinal()), None);
}
