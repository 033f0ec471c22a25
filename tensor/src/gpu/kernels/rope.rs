//! Rotary position embedding on the GPU. Shader: `shaders/rope.wgsl`. CPU twin: `cpu/rope.rs`.
//!
//! x: (..., T, D) read in place through its strides (e.g. q viewed (B, H, T, D) from a
//! (B, T, H, D) projection), cos/sin: (T, D/2) through theirs; a contiguous result in x's
//! dtype. Interleaved pairs rotate (x[2i], x[2i+1]), split halves (x[i], x[i + D/2]).

use super::norm::RowView;
use super::{check_view, float_only, launch};
use crate::error::{invalid, Error, Result};
use crate::gpu::pipeline::{dtype_code, KernelKey, Shader};
use crate::gpu::strided::to_u32;
use crate::gpu::GpuStorage;
use crate::ops::RopeConvention;
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader = Shader { name: "rope", source: include_str!("../../../../shaders/rope.wgsl") };

const WG: u32 = 256;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct RopeKey {
    pub dtype: DType,
    pub convention: RopeConvention,
}

impl KernelKey for RopeKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        "rope"
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        let interleaved = self.convention == RopeConvention::Interleaved;
        vec![("DT", dtype_code(self.dtype)), ("INTERLEAVED", interleaved as u32 as f64), ("WG", WG as f64)]
    }
    fn all() -> Vec<Self> {
        let conventions = [RopeConvention::Interleaved, RopeConvention::SplitHalves];
        DType::FLOATS
            .into_iter()
            .flat_map(|dtype| conventions.map(|convention| RopeKey { dtype, convention }))
            .collect()
    }
}

/// WGSL `RopeParams` (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct RopeParams {
    shape: [u32; 4],
    stride: [u32; 4],
    offset: u32,
    col_stride: u32,
    d: u32,
    t: u32,
    numel: u32,
    c_off: u32,
    c_rs: u32,
    c_cs: u32,
    s_off: u32,
    s_rs: u32,
    s_cs: u32,
    _pad: u32,
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![uniform_layout!(RopeParams {
        shape,
        stride,
        offset,
        col_stride,
        d,
        t,
        numel,
        c_off,
        c_rs,
        c_cs,
        s_off,
        s_rs,
        s_cs
    })]
}

/// Rotate feature pairs of x (..., T, D) by the angles in cos/sin (T, D/2).
pub fn rope(
    x: &GpuStorage,
    lx: &Layout,
    cos: &GpuStorage,
    lc: &Layout,
    sin: &GpuStorage,
    ls: &Layout,
    convention: RopeConvention,
) -> Result<GpuStorage> {
    float_only("rope", x.dtype())?;
    let r = lx.rank();
    if r < 2 || !lx.shape()[r - 1].is_multiple_of(2) {
        return Err(invalid("rope", format!("x must be (..., T, D) with even D, got {:?}", lx.shape())));
    }
    let (t, d) = (lx.shape()[r - 2], lx.shape()[r - 1]);
    for (s, l) in [(cos, lc), (sin, ls)] {
        if s.dtype() != x.dtype() {
            return Err(Error::DTypeMismatch { op: "rope", lhs: x.dtype(), rhs: s.dtype() });
        }
        x.same_device("rope", s)?;
        check_view("rope", s.len(), l)?;
        if l.shape() != [t, d / 2] {
            return Err(Error::ShapeMismatch { op: "rope", lhs: vec![t, d / 2], rhs: l.shape().to_vec() });
        }
    }
    let (xs, v) = RowView::of("rope", x, lx)?;
    let numel = lx.numel();
    let u = |n: usize| to_u32("rope", "size or stride", n);
    let p = RopeParams {
        shape: v.shape,
        stride: v.stride,
        offset: v.offset,
        col_stride: v.col_stride,
        d: u(d)?,
        t: u(t.max(1))?,
        numel: u(numel)?,
        c_off: u(lc.offset())?,
        c_rs: u(lc.strides()[0])?,
        c_cs: u(lc.strides()[1])?,
        s_off: u(ls.offset())?,
        s_rs: u(ls.strides()[0])?,
        s_cs: u(ls.strides()[1])?,
        _pad: 0,
    };
    let out = GpuStorage::alloc(x.device(), x.dtype(), numel)?;
    let key = RopeKey { dtype: x.dtype(), convention };
    launch(x.device(), key, &[xs.raw(), cos.raw(), sin.raw(), out.raw()], bytemuck::bytes_of(&p), out.words(), WG)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu;
    use crate::gpu::testing::{assert_close, data, device, values};
    use crate::storage::CpuStorage;

    #[test]
    fn both_conventions_match_cpu_on_strided_views() {
        let Some(dev) = device() else { return };
        let (b, t, h, d) = (2, 5, 3, 6);
        for dtype in DType::FLOATS {
            for convention in [RopeConvention::Interleaved, RopeConvention::SplitHalves] {
                // x viewed (B, H, T, D) from a (B, T, H, D) buffer; cos/sin a column slice
                // (narrow) of wider tables.
                let xs = CpuStorage::from_f32(dtype, data(b * t * h * d, 1, -2.0, 2.0));
                let lx = Layout::contiguous(&[b, t, h, d]).permute(&[0, 2, 1, 3]).unwrap();
                let (c, s) = (data(t * (d / 2 + 1), 2, -1.0, 1.0), data(t * (d / 2 + 1), 3, -1.0, 1.0));
                let lt = Layout::contiguous(&[t, d / 2 + 1]).narrow(1, 1, d / 2).unwrap();
                let (cs, ss) = (CpuStorage::from_f32(dtype, c), CpuStorage::from_f32(dtype, s));
                let want = cpu::rope(&xs, &lx, &cs, &lt, &ss, &lt, convention).unwrap();
                let g = |s: &CpuStorage| GpuStorage::from_cpu(s, &dev).unwrap();
                let got = rope(&g(&xs), &lx, &g(&cs), &lt, &g(&ss), &lt, convention).unwrap().to_cpu().unwrap();
                assert_eq!(got.dtype(), dtype);
                // x a c - x b s: two products and a sum, each rounded; then the storage rounding.
                let eps = if dtype == DType::F32 { 0.0 } else { 2.0 * dtype.epsilon() as f32 };
                assert_close(&format!("{dtype} {convention:?}"), &values(&got), &values(&want), |_, w| {
                    1e-6 + eps * w.abs()
                });
            }
        }
    }
}
