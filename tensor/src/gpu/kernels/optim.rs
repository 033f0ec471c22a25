//! Fused in-place AdamW update on the GPU. Shader: `shaders/optim.wgsl`.
//! CPU twin: `crate::optim::adamw_step` (same hyperparameters, same expression order:
//! where the device does not fuse multiply-adds, as lavapipe, results are bit-identical).

use super::index::pad8;
use super::{check_view, float_only, launch};
use crate::error::{invalid, Error, Result};
use crate::gpu::pipeline::{dtype_code, KernelKey, Shader};
use crate::gpu::strided::{collapse, to_u32};
use crate::gpu::GpuStorage;
use crate::optim::AdamWStep;
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader = Shader { name: "optim", source: include_str!("../../../../shaders/optim.wgsl") };

const WG: u32 = 256;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AdamWKey {
    /// Dtype of the gradient (param and moments are f32).
    pub grad: DType,
    /// The gradient is contiguous (else read through its strides).
    pub contiguous: bool,
}

impl KernelKey for AdamWKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        "adamw"
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        vec![("DT_G", dtype_code(self.grad)), ("G_CONTIG", self.contiguous as u32 as f64), ("WG", WG as f64)]
    }
    fn all() -> Vec<Self> {
        DType::FLOATS
            .into_iter()
            .flat_map(|grad| [true, false].map(|contiguous| AdamWKey { grad, contiguous }))
            .collect()
    }
}

/// WGSL `AdamWParams` (128 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AdamWParams {
    g_shape: [[u32; 4]; 2],
    g_stride: [[u32; 4]; 2],
    n: u32,
    g_off: u32,
    p_off: u32,
    m_off: u32,
    v_off: u32,
    lr: f32,
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    eps: f32,
    weight_decay: f32,
    bc1: f32,
    bc2: f32,
    _pad: [u32; 2],
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![uniform_layout!(AdamWParams {
        g_shape,
        g_stride,
        n,
        g_off,
        p_off,
        m_off,
        v_off,
        lr,
        beta1,
        beta2,
        one_minus_beta1,
        one_minus_beta2,
        eps,
        weight_decay,
        bc1,
        bc2
    })]
}

/// param <- param - lr * (m_hat / (sqrt(v_hat) + eps) + wd * param), updating m and v in
/// place. `param`, `m`, `v`: f32 storages of the same length (the whole buffer is the
/// tensor); `grad`: a view of that many elements, any float dtype and layout.
pub fn adamw_step(
    param: &GpuStorage,
    grad: (&GpuStorage, &Layout),
    m: &GpuStorage,
    v: &GpuStorage,
    h: AdamWStep,
) -> Result<()> {
    let n = param.len();
    for s in [param, m, v] {
        if s.dtype() != DType::F32 {
            return Err(Error::UnsupportedDType { op: "adamw", dtype: s.dtype() });
        }
        if s.len() != n {
            return Err(Error::ShapeMismatch { op: "adamw", lhs: vec![n], rhs: vec![s.len()] });
        }
        param.same_device("adamw", s)?;
    }
    let (g, lg) = grad;
    float_only("adamw", g.dtype())?;
    param.same_device("adamw", g)?;
    check_view("adamw", g.len(), lg)?;
    if lg.numel() != n {
        return Err(Error::ShapeMismatch { op: "adamw", lhs: vec![n], rhs: lg.shape().to_vec() });
    }
    if h.step == 0 {
        return Err(invalid("adamw", "step counts from 1"));
    }
    // Exactly the CPU's f32 arithmetic for the bias corrections.
    let bc1 = 1.0 - h.beta1.powi(h.step.min(i32::MAX as u64) as i32);
    let bc2 = 1.0 - h.beta2.powi(h.step.min(i32::MAX as u64) as i32);
    let (shape, strides) = collapse(lg.shape(), &[lg.strides()]);
    let contiguous = shape.len() <= 1 && strides[0].first().is_none_or(|&s| s == 1);
    let (g_shape, g_stride, _) = pad8("adamw", &shape, &strides[0])?;
    let p = AdamWParams {
        g_shape,
        g_stride,
        n: to_u32("adamw", "element count", n)?,
        g_off: to_u32("adamw", "offset", lg.offset())?,
        p_off: 0,
        m_off: 0,
        v_off: 0,
        lr: h.lr,
        beta1: h.beta1,
        beta2: h.beta2,
        one_minus_beta1: 1.0 - h.beta1,
        one_minus_beta2: 1.0 - h.beta2,
        eps: h.eps,
        weight_decay: h.weight_decay,
        bc1,
        bc2,
        _pad: [0; 2],
    };
    let key = AdamWKey { grad: g.dtype(), contiguous };
    launch(param.device(), key, &[param.raw(), g.raw(), m.raw(), v.raw()], bytemuck::bytes_of(&p), n, WG)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::testing::{data, device, values};
    use crate::storage::CpuStorage;
    use crate::Tensor;

    /// Three steps on the GPU and through `crate::optim::adamw_step` on the CPU: the f32
    /// results agree bit for bit on devices without fused multiply-add (lavapipe), and to
    /// a few ulps elsewhere.
    #[test]
    fn matches_cpu_adamw() {
        let Some(dev) = device() else { return };
        let n = 1000;
        let h0 = AdamWStep { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, step: 1 };
        let p0 = data(n, 1, -1.0, 1.0);
        let (cp, cm, cv) = (
            Tensor::from_f32s(p0.clone(), &[n], DType::F32).unwrap(),
            Tensor::zeros(&[n], DType::F32).unwrap(),
            Tensor::zeros(&[n], DType::F32).unwrap(),
        );
        let up = |v: Vec<f32>| GpuStorage::from_cpu(&CpuStorage::F32(v), &dev).unwrap();
        let (gp, gm, gv) = (up(p0), up(vec![0.0; n]), up(vec![0.0; n]));
        for step in 1..=3u64 {
            let h = AdamWStep { step, ..h0 };
            // The gradient as a transposed (25, 40) view of a (40, 25) buffer.
            let gdata = data(n, 10 + step, -1.0, 1.0);
            let lg = Layout::contiguous(&[40, 25]).permute(&[1, 0]).unwrap();
            let ct =
                Tensor::from_f32s(gdata.clone(), &[40, 25], DType::F32).unwrap().t().unwrap().reshape(&[n]).unwrap();
            crate::optim::adamw_step(&cp, &ct, &cm, &cv, h).unwrap();
            adamw_step(&gp, (&up(gdata), &lg), &gm, &gv, h).unwrap();
        }
        for (what, g, c) in [("param", &gp, &cp), ("m", &gm, &cm), ("v", &gv, &cv)] {
            let (g, c) = (values(&g.to_cpu().unwrap()), c.to_vec_f32().unwrap());
            for i in 0..n {
                assert!(
                    (g[i] - c[i]).abs() <= 4.0 * f32::EPSILON * c[i].abs(),
                    "{what}[{i}]: gpu {} cpu {}",
                    g[i],
                    c[i]
                );
            }
        }
    }
}
