//! Fused cross-entropy on the GPU, forward and backward. Shader: `shaders/cross_entropy.wgsl`.
//! CPU twins: `cpu::cross_entropy` (forward, in `cpu/norm.rs`) and the CrossEntropy rule in
//! `autograd/grad.rs` (backward).
//!
//! logits: (N, C) of any layout; targets: N ids (host values, as the CPU kernel takes
//! them; checked to lie in 0..C unless equal to `ignore_index`). The loss stays on the
//! device (a one-element f32 storage), so a training step needs no readback.

use super::{check_view, float_only};
use crate::error::{Error, Result};
use crate::gpu::pipeline::{dtype_code, KernelKey, RowReduce, Shader};
use crate::gpu::strided::to_u32;
use crate::gpu::GpuStorage;
use crate::storage::CpuStorage;
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader =
    Shader { name: "cross_entropy", source: include_str!("../../../../shaders/cross_entropy.wgsl") };

const WG: u32 = 256;

/// What an ignored target is uploaded as (valid targets are >= 0, so it is unambiguous).
const IGNORED: i32 = -1;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum CePass {
    /// Per-row logsumexp and loss.
    Rows,
    /// Mean over non-ignored rows (one workgroup).
    Finalize,
    /// Gradient of the mean loss w.r.t. the logits.
    Backward,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CrossEntropyKey {
    pub pass: CePass,
    /// Dtype of the logits (and of their gradient).
    pub dtype: DType,
    pub reduce: RowReduce,
}

impl KernelKey for CrossEntropyKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        match self.pass {
            CePass::Rows => "ce_rows",
            CePass::Finalize => "ce_finalize",
            CePass::Backward => "ce_backward",
        }
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        vec![("DT", dtype_code(self.dtype)), ("WG", WG as f64)]
    }
    fn row_reduce(&self) -> Option<RowReduce> {
        Some(self.reduce)
    }
    fn all() -> Vec<Self> {
        let mut v = Vec::new();
        for dtype in DType::FLOATS {
            for pass in [CePass::Rows, CePass::Finalize, CePass::Backward] {
                v.extend(RowReduce::ALL.map(|reduce| CrossEntropyKey { pass, dtype, reduce }));
            }
        }
        v
    }
}

/// WGSL `CeParams` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct CeParams {
    n: u32,
    c: u32,
    z_off: u32,
    z_rs: u32,
    z_cs: u32,
    ignore_index: i32,
    _pad: [u32; 2],
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![uniform_layout!(CeParams { n, c, z_off, z_rs, z_cs, ignore_index })]
}

/// The forward passes' products: per-row logsumexp, per-row loss, [mean loss, count].
struct Forward {
    lse: GpuStorage,
    stats: GpuStorage,
    targets: GpuStorage,
    params: CeParams,
}

/// Check shapes and ids, upload the targets, run ce_rows and ce_finalize.
fn forward(logits: &GpuStorage, l: &Layout, targets: &[i64], ignore_index: i64) -> Result<Forward> {
    float_only("cross_entropy", logits.dtype())?;
    check_view("cross_entropy", logits.len(), l)?;
    if l.rank() != 2 || l.shape()[0] != targets.len() {
        return Err(Error::ShapeMismatch { op: "cross_entropy", lhs: l.shape().to_vec(), rhs: vec![targets.len()] });
    }
    let (n, c) = (l.shape()[0], l.shape()[1]);
    let mut ids = Vec::with_capacity(n);
    for &t in targets {
        if t == ignore_index {
            ids.push(IGNORED);
        } else if t < 0 || t as usize >= c {
            return Err(Error::IndexOutOfRange { op: "cross_entropy", index: t, size: c });
        } else {
            ids.push(t as i32);
        }
    }
    let dev = logits.device();
    let u = |v: usize| to_u32("cross_entropy", "size or stride", v);
    let params = CeParams {
        n: u(n)?,
        c: u(c)?,
        z_off: u(l.offset())?,
        z_rs: u(l.strides()[0])?,
        z_cs: u(l.strides()[1])?,
        ignore_index: IGNORED,
        _pad: [0; 2],
    };
    let targets = GpuStorage::from_cpu(&CpuStorage::I32(ids), dev)?;
    let lse = GpuStorage::alloc(dev, DType::F32, n)?;
    let loss = GpuStorage::alloc(dev, DType::F32, n)?;
    let stats = GpuStorage::alloc(dev, DType::F32, 2)?;
    let key = |pass| CrossEntropyKey { pass, dtype: logits.dtype(), reduce: logits.device().row_reduce() };
    // Slots: z, targets, lse, loss, stats, g, gz (the forward's g and gz are dummies).
    let buffers = [logits.raw(), targets.raw(), lse.raw(), loss.raw(), stats.raw(), logits.raw(), stats.raw()];
    if n > 0 {
        dev.dispatch(&*dev.pipeline(key(CePass::Rows))?, &buffers, bytemuck::bytes_of(&params), dev.grid(n as u64)?)?;
    }
    dev.dispatch(&*dev.pipeline(key(CePass::Finalize))?, &buffers, bytemuck::bytes_of(&params), [1, 1, 1])?;
    Ok(Forward { lse, stats, targets, params })
}

/// Mean over non-ignored rows of logsumexp(z) - z[target]: a one-element f32 storage,
/// NaN when every row is ignored (0/0, as PyTorch).
pub fn cross_entropy(logits: &GpuStorage, l: &Layout, targets: &[i64], ignore_index: i64) -> Result<GpuStorage> {
    let f = forward(logits, l, targets, ignore_index)?;
    // The first element of stats is the loss: a one-word copy keeps the result 1 element.
    let out = GpuStorage::alloc(logits.device(), DType::F32, 1)?;
    logits.device().copy_buffer(f.stats.raw(), 0, out.raw(), 0, 4);
    Ok(out)
}

/// d(mean loss)/d(logits) times the upstream gradient `g` (a one-element f32 storage):
/// (softmax(z) - onehot(target)) * g / max(count, 1), zero rows for ignored targets; a
/// contiguous (N, C) storage in the logits' dtype.
pub fn cross_entropy_backward(
    logits: &GpuStorage,
    l: &Layout,
    targets: &[i64],
    ignore_index: i64,
    g: &GpuStorage,
) -> Result<GpuStorage> {
    if g.dtype() != DType::F32 || g.is_empty() {
        return Err(Error::UnsupportedDType { op: "cross_entropy_backward", dtype: g.dtype() });
    }
    let f = forward(logits, l, targets, ignore_index)?;
    let dev = logits.device();
    let (n, c) = (l.shape()[0], l.shape()[1]);
    let gz = GpuStorage::alloc(dev, logits.dtype(), n * c)?;
    let key = CrossEntropyKey { pass: CePass::Backward, dtype: logits.dtype(), reduce: logits.device().row_reduce() };
    // Slots: z, targets, lse, loss (dummy: stats), stats, g, gz.
    let buffers = [logits.raw(), f.targets.raw(), f.lse.raw(), f.stats.raw(), f.stats.raw(), g.raw(), gz.raw()];
    let groups = gz.words().div_ceil(WG as usize) as u64;
    if groups > 0 {
        dev.dispatch(&*dev.pipeline(key)?, &buffers, bytemuck::bytes_of(&f.params), dev.grid(groups)?)?;
    }
    Ok(gz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu;
    use crate::gpu::testing::{assert_close, data, devices, values};

    fn logits(dtype: DType, n: usize, c: usize) -> CpuStorage {
        CpuStorage::from_f32(dtype, data(n * c, 9, -4.0, 4.0))
    }

    /// The CPU backward rule, written out: (softmax - onehot) * valid * g / max(count, 1).
    fn cpu_grad(z: &CpuStorage, l: &Layout, t: &[i64], ignore: i64, g: f32) -> Vec<f32> {
        let (n, c) = (l.shape()[0], l.shape()[1]);
        let p = values(
            &cpu::softmax_last(&CpuStorage::F32(z.f32_view(l).into_owned()), &Layout::contiguous(&[n, c]), false)
                .unwrap(),
        );
        let count = t.iter().filter(|&&x| x != ignore).count().max(1) as f32;
        (0..n * c)
            .map(|e| {
                let (r, col) = (e / c, e % c);
                if t[r] == ignore {
                    0.0
                } else {
                    (p[e] - if t[r] as usize == col { 1.0 } else { 0.0 }) * (g / count)
                }
            })
            .collect()
    }

    #[test]
    fn forward_and_backward_match_cpu() {
        for dev in devices() {
            for (dtype, n, c, transposed) in [
                (DType::F32, 7, 33, false),
                (DType::F32, 5, 600, false),
                (DType::F32, 6, 9, true),
                (DType::F16, 4, 7, false),
                (DType::BF16, 3, 65, false),
            ] {
                let what = format!("{dtype} {n}x{c} transposed={transposed}");
                let z = logits(dtype, n, c);
                // A transposed view: stored (C, N).
                let l = if transposed {
                    Layout::contiguous(&[c, n]).permute(&[1, 0]).unwrap()
                } else {
                    Layout::contiguous(&[n, c])
                };
                let t: Vec<i64> = (0..n).map(|i| if i == 1 { -100 } else { ((i * 7 + 3) % c) as i64 }).collect();
                let want = cpu::cross_entropy(&z, &l, &t, -100).unwrap();
                let gz = GpuStorage::from_cpu(&z, &dev).unwrap();
                let got = values(&cross_entropy(&gz, &l, &t, -100).unwrap().to_cpu().unwrap());
                assert_close(&what, &got, &[want], |_, w| 2e-6 * (1.0 + w.abs()));
                let g = GpuStorage::from_cpu(&CpuStorage::F32(vec![0.75]), &dev).unwrap();
                let grad = cross_entropy_backward(&gz, &l, &t, -100, &g).unwrap().to_cpu().unwrap();
                assert_eq!(grad.dtype(), dtype);
                let out_eps = if dtype == DType::F32 { 0.0 } else { 2.0 * dtype.epsilon() as f32 };
                assert_close(&what, &values(&grad), &cpu_grad(&z, &l, &t, -100, 0.75), |_, w| 1e-6 + out_eps * w.abs());
            }
        }
    }

    #[test]
    fn all_ignored_is_nan_and_bad_ids_are_errors() {
        for dev in devices() {
            let z = GpuStorage::from_cpu(&logits(DType::F32, 2, 3), &dev).unwrap();
            let l = Layout::contiguous(&[2, 3]);
            let loss = values(&cross_entropy(&z, &l, &[-1, -1], -1).unwrap().to_cpu().unwrap());
            assert!(loss[0].is_nan());
            assert!(matches!(cross_entropy(&z, &l, &[0, 3], -1), Err(Error::IndexOutOfRange { .. })));
        }
    }
}
