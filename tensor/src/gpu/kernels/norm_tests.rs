//! GPU row kernels against the CPU kernels (forward) and f64 evaluations of the autograd
//! rules (backward): awkward row lengths, strided views, more outer dims than the shader
//! takes, f16/bf16 (even and odd D), and all -inf rows.

use super::*;
use crate::cpu;
use crate::gpu::testing::{assert_close, data, devices, values};
use crate::storage::CpuStorage;

fn up(dev: &std::sync::Arc<crate::gpu::GpuDevice>, s: &CpuStorage) -> GpuStorage {
    GpuStorage::from_cpu(s, dev).unwrap()
}

fn down(s: &GpuStorage) -> Vec<f32> {
    values(&s.to_cpu().unwrap())
}

/// Storage rounding of `dtype` (0 for f32), doubled.
fn out_eps(dtype: DType) -> f32 {
    if dtype == DType::F32 {
        0.0
    } else {
        2.0 * dtype.epsilon() as f32
    }
}

/// (shape, layout) cases: contiguous, a transposed view, a rank-6 view with more than
/// four unmergeable outer dims (copied first), row lengths around the workgroup sizes.
fn layouts() -> Vec<Layout> {
    vec![
        Layout::contiguous(&[5, 7]),
        Layout::contiguous(&[3, 1000]),
        Layout::contiguous(&[1, 1]),
        Layout::contiguous(&[4, 33, 6]).permute(&[0, 2, 1]).unwrap(),
        Layout::contiguous(&[2, 3, 2, 3, 2, 5]).permute(&[4, 0, 3, 1, 2, 5]).unwrap(),
    ]
}

#[test]
fn softmax_matches_cpu() {
    for dev in devices() {
        for l in layouts() {
            for dtype in DType::FLOATS {
                let mut v = data(l.numel(), 3, -6.0, 6.0);
                if l.numel() > 70 {
                    v[..7].iter_mut().for_each(|x| *x = f32::NEG_INFINITY); // some -inf entries
                }
                let x = CpuStorage::from_f32(dtype, v);
                for log in [false, true] {
                    let what = format!("softmax log={log} {dtype} {:?} {:?}", l.shape(), l.strides());
                    let want = values(&cpu::softmax_last(&x, &l, log).unwrap());
                    let got = softmax_last(&up(&dev, &x), &l, log).unwrap();
                    assert_eq!(got.dtype(), dtype);
                    let e = out_eps(dtype);
                    assert_close(&what, &down(&got), &want, |_, w| 2e-6 * (1.0 + w.abs()) + e * w.abs());
                }
            }
        }
    }
}

#[test]
fn softmax_of_all_neg_inf_row_is_nan() {
    for dev in devices() {
        let x = CpuStorage::F32(vec![f32::NEG_INFINITY, f32::NEG_INFINITY, 1.0, 2.0]);
        let l = Layout::contiguous(&[2, 2]);
        for log in [false, true] {
            let got = down(&softmax_last(&up(&dev, &x), &l, log).unwrap());
            let want = values(&cpu::softmax_last(&x, &l, log).unwrap());
            assert_close("all -inf row", &got, &want, |_, w| 1e-6 * (1.0 + w.abs()));
            assert!(got[0].is_nan() && got[1].is_nan());
        }
    }
}

#[test]
fn norms_match_cpu() {
    for dev in devices() {
        for l in layouts() {
            let d = *l.shape().last().unwrap();
            for dtype in DType::FLOATS {
                // A large common offset: the mean must not swallow the spread.
                let x = CpuStorage::from_f32(dtype, data(l.numel(), 5, 99.0, 101.0));
                // The weight as a strided view (every other element of a longer vector).
                let w = CpuStorage::from_f32(dtype, data(2 * d, 6, 0.5, 1.5));
                let lw = Layout::new(vec![d], vec![2], 1);
                let b = CpuStorage::from_f32(dtype, data(d, 7, -1.0, 1.0));
                let lb = Layout::contiguous(&[d]);
                let what = format!("{dtype} {:?} {:?}", l.shape(), l.strides());
                let e = out_eps(dtype);

                let (y, mean, rstd) = cpu::layer_norm(&x, &l, Some((&w, &lw)), Some((&b, &lb)), 1e-5).unwrap();
                let (gw, gb) = (up(&dev, &w), up(&dev, &b));
                let (gy, gmean, grstd) =
                    layer_norm(&up(&dev, &x), &l, Some((&gw, &lw)), Some((&gb, &lb)), 1e-5).unwrap();
                assert_close(&format!("layer_norm {what}"), &down(&gy), &values(&y), |_, w| {
                    2e-5 * (1.0 + w.abs()) + e * w.abs()
                });
                assert_close(&format!("mean {what}"), &down(&gmean), &values(&mean), |_, w| 1e-6 * w.abs());
                assert_close(&format!("rstd {what}"), &down(&grstd), &values(&rstd), |_, w| 2e-5 * w.abs());

                let (y, rstd) = cpu::rms_norm(&x, &l, Some((&w, &lw)), 1e-6).unwrap();
                let (gy, grstd) = rms_norm(&up(&dev, &x), &l, Some((&gw, &lw)), 1e-6).unwrap();
                assert_close(&format!("rms_norm {what}"), &down(&gy), &values(&y), |_, w| {
                    2e-6 * (1.0 + w.abs()) + e * w.abs()
                });
                assert_close(&format!("rms rstd {what}"), &down(&grstd), &values(&rstd), |_, w| 2e-6 * w.abs());
            }
        }
    }
}

/// f64 reference for the norm backward rules of autograd/grad.rs, one row at a time:
/// (gx, gw, gb) given x, g, w, and whether it is layer_norm (else rms_norm).
fn norm_grads_f64(x: &[f32], g: &[f32], w: &[f32], d: usize, eps: f64, layer: bool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut gx = vec![0.0; x.len()];
    let (mut gw, mut gb) = (vec![0.0; d], vec![0.0; d]);
    for r in 0..x.len() / d {
        let xr: Vec<f64> = x[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect();
        let gr: Vec<f64> = g[r * d..(r + 1) * d].iter().map(|&v| v as f64).collect();
        let mean = if layer { xr.iter().sum::<f64>() / d as f64 } else { 0.0 };
        let var = xr.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d as f64;
        let rstd = 1.0 / (var + eps).sqrt();
        let xhat: Vec<f64> = xr.iter().map(|v| (v - mean) * rstd).collect();
        let gh: Vec<f64> = (0..d).map(|c| gr[c] * w[c] as f64).collect();
        let m1 = if layer { gh.iter().sum::<f64>() / d as f64 } else { 0.0 };
        let m2 = (0..d).map(|c| gh[c] * xhat[c]).sum::<f64>() / d as f64;
        for c in 0..d {
            gx[r * d + c] = (gh[c] - m1 - xhat[c] * m2) * rstd;
            gw[c] += gr[c] * xhat[c];
            gb[c] += gr[c];
        }
    }
    (gx, gw, gb)
}

#[test]
fn norm_backward_matches_f64_rules() {
    for dev in devices() {
        // 600 rows: two chunks of the column sums.
        for &(rows, d) in &[(3usize, 5usize), (600, 7), (2, 300)] {
            let x = data(rows * d, 11, -2.0, 2.0);
            let g = data(rows * d, 12, -1.0, 1.0);
            let w = data(d, 13, 0.5, 1.5);
            let l = Layout::contiguous(&[rows, d]);
            let lw = Layout::contiguous(&[d]);
            let (gx_s, gg, gw_s) = (
                up(&dev, &CpuStorage::F32(x.clone())),
                up(&dev, &CpuStorage::F32(g.clone())),
                up(&dev, &CpuStorage::F32(w.clone())),
            );
            let tol = |scale: f32| move |_: usize, w: f32| 2e-5 * (scale + w.abs());

            let (_, mean, rstd) = layer_norm(&gx_s, &l, Some((&gw_s, &lw)), None, 1e-5).unwrap();
            let (gx, gw, gb) =
                layer_norm_backward(&gx_s, &l, Some((&gw_s, &lw)), true, &mean, &rstd, (&gg, &l)).unwrap();
            let (ex, ew, eb) = norm_grads_f64(&x, &g, &w, d, 1e-5, true);
            let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<_>>();
            assert_close(&format!("ln gx {rows}x{d}"), &down(&gx), &f(ex), tol(1.0));
            assert_close(&format!("ln gw {rows}x{d}"), &down(&gw.unwrap()), &f(ew), tol(rows as f32));
            assert_close(&format!("ln gb {rows}x{d}"), &down(&gb.unwrap()), &f(eb), tol(rows as f32));

            let (_, rstd) = rms_norm(&gx_s, &l, Some((&gw_s, &lw)), 1e-5).unwrap();
            let (gx, gw) = rms_norm_backward(&gx_s, &l, Some((&gw_s, &lw)), &rstd, (&gg, &l)).unwrap();
            let (ex, ew, _) = norm_grads_f64(&x, &g, &w, d, 1e-5, false);
            assert_close(&format!("rms gx {rows}x{d}"), &down(&gx), &f(ex), tol(1.0));
            assert_close(&format!("rms gw {rows}x{d}"), &down(&gw.unwrap()), &f(ew), tol(rows as f32));
        }
    }
}

#[test]
fn softmax_backward_matches_f64_rules() {
    for dev in devices() {
        let (rows, d) = (4, 37);
        let x = data(rows * d, 21, -3.0, 3.0);
        let g = data(rows * d, 22, -1.0, 1.0);
        let l = Layout::contiguous(&[rows, d]);
        for dtype in [DType::F32, DType::BF16] {
            for log in [false, true] {
                let xs = up(&dev, &CpuStorage::from_f32(dtype, x.clone()));
                let y = softmax_last(&xs, &l, log).unwrap();
                let yv = down(&y);
                let gs = up(&dev, &CpuStorage::from_f32(dtype, g.clone()));
                let gv = values(&gs.to_cpu().unwrap());
                let mut want = vec![0f32; rows * d];
                for r in 0..rows {
                    let row = r * d..(r + 1) * d;
                    let s: f64 = if log {
                        gv[row.clone()].iter().map(|&v| v as f64).sum()
                    } else {
                        row.clone().map(|i| gv[i] as f64 * yv[i] as f64).sum()
                    };
                    for i in row {
                        let (yi, gi) = (yv[i] as f64, gv[i] as f64);
                        want[i] = if log { gi - yi.exp() * s } else { yi * (gi - s) } as f32;
                    }
                }
                let got = softmax_last_backward(&y, &l, (&gs, &l), log).unwrap();
                let e = out_eps(dtype);
                assert_close(&format!("softmax bwd log={log} {dtype}"), &down(&got), &want, |_, w| {
                    2e-6 * (1.0 + w.abs()) + e * w.abs()
                });
            }
        }
    }
}
