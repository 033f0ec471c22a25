//! Row kernels over the last dim on the GPU: softmax / log_softmax, layer_norm, rms_norm,
//! forward and backward (the fused cross-entropy is in `cross_entropy.rs`). Shader:
//! `shaders/norm.wgsl`. CPU twins: `cpu/norm.rs` (forward), the rules in
//! `autograd/grad.rs` (backward).
//!
//! Inputs are read in place as a (rows, D) view (`RowView`: outer dims merged into at
//! most four); the upstream gradient of a backward kernel is made contiguous first.
//! Outputs are contiguous in the input dtype (stored directly when each output word
//! belongs to one invocation, else computed as f32 and cast); mean/rstd are f32 per row.

use super::{cast, check_view, float_only};
use crate::error::{invalid, Error, Result};
use crate::gpu::pipeline::{dtype_code, KernelKey, RowReduce, Shader};
use crate::gpu::strided::{collapse, to_u32};
use crate::gpu::GpuStorage;
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader = Shader { name: "norm", source: include_str!("../../../../shaders/norm.wgsl") };

/// Rows per chunk of the first weight-gradient pass (the shader's ROWS_PER_CHUNK).
const ROWS_PER_CHUNK: usize = 256;
/// Invocations per workgroup of the column-sum kernel.
const COL_WG: u32 = 64;

/// A (rows, D) view of a layout: its outer dims merged, padded in front to four.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowView {
    pub shape: [u32; 4],
    pub stride: [u32; 4],
    pub offset: u32,
    pub col_stride: u32,
    pub d: usize,
    pub rows: usize,
}

impl RowView {
    /// `None` when more than four outer dims remain after merging.
    pub(crate) fn new(op: &'static str, l: &Layout) -> Result<Option<RowView>> {
        let r = l.rank();
        let d = if r == 0 { 1 } else { l.shape()[r - 1] };
        let col_stride = if r == 0 { 1 } else { l.strides()[r - 1] };
        let outer = r.saturating_sub(1);
        let (shape, strides) = collapse(&l.shape()[..outer], &[&l.strides()[..outer]]);
        if shape.len() > 4 {
            return Ok(None);
        }
        let mut v = RowView {
            shape: [1; 4],
            stride: [0; 4],
            offset: to_u32(op, "offset", l.offset())?,
            col_stride: to_u32(op, "stride", col_stride)?,
            d,
            rows: l.shape()[..outer].iter().product(),
        };
        let lead = 4 - shape.len();
        for (i, &n) in shape.iter().enumerate() {
            v.shape[lead + i] = to_u32(op, "dim", n)?;
            v.stride[lead + i] = to_u32(op, "stride", strides[0][i])?;
        }
        to_u32(op, "storage extent", l.storage_extent())?;
        Ok(Some(v))
    }

    /// The row view of `s` under `l`, copying to a contiguous buffer when the outer dims
    /// do not fit (returns the storage to bind with it).
    pub(crate) fn of(op: &'static str, s: &GpuStorage, l: &Layout) -> Result<(GpuStorage, RowView)> {
        check_view(op, s.len(), l)?;
        match RowView::new(op, l)? {
            Some(v) => Ok((s.clone(), v)),
            None => {
                let c = cast(s, l, s.dtype())?;
                let v = RowView::new(op, &Layout::contiguous(l.shape()))?.expect("contiguous merges");
                Ok((c, v))
            }
        }
    }

    /// Whether a (rows, D) output of `dtype` can be stored directly: each word must hold
    /// elements of one row (D even) or there is a single row.
    fn direct(&self, dtype: DType) -> bool {
        dtype == DType::F32 || self.d.is_multiple_of(2) || self.rows <= 1
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum NormKernel {
    Softmax {
        log: bool,
    },
    SoftmaxBwd {
        log: bool,
    },
    LayerNorm {
        weight: bool,
        bias: bool,
    },
    LayerNormBwd {
        weight: bool,
    },
    RmsNorm {
        weight: bool,
    },
    RmsNormBwd {
        weight: bool,
    },
    /// Column sums for weight/bias gradients; `mode` as the shader's MODE.
    ParamGrad {
        mode: u32,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct NormKey {
    pub kernel: NormKernel,
    /// Dtype of x (and weight, bias).
    pub dtype: DType,
    /// Dtype of the upstream gradient.
    pub grad: DType,
    pub out: DType,
    pub wg: u32,
    pub reduce: RowReduce,
}

impl KernelKey for NormKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        match self.kernel {
            NormKernel::Softmax { .. } => "softmax_fwd",
            NormKernel::SoftmaxBwd { .. } => "softmax_bwd",
            NormKernel::LayerNorm { .. } => "layer_norm_fwd",
            NormKernel::LayerNormBwd { .. } => "layer_norm_bwd",
            NormKernel::RmsNorm { .. } => "rms_norm_fwd",
            NormKernel::RmsNormBwd { .. } => "rms_norm_bwd",
            NormKernel::ParamGrad { .. } => "norm_param_grad",
        }
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        let b = |x: bool| x as u32 as f64;
        let mut c = vec![
            ("DT", dtype_code(self.dtype)),
            ("DT_G", dtype_code(self.grad)),
            ("OUT_DT", dtype_code(self.out)),
            ("WG", self.wg as f64),
        ];
        match self.kernel {
            NormKernel::Softmax { log } | NormKernel::SoftmaxBwd { log } => c.push(("LOG", b(log))),
            NormKernel::LayerNorm { weight, bias } => c.extend([("HAS_W", b(weight)), ("HAS_B", b(bias))]),
            NormKernel::LayerNormBwd { weight }
            | NormKernel::RmsNorm { weight }
            | NormKernel::RmsNormBwd { weight } => c.push(("HAS_W", b(weight))),
            NormKernel::ParamGrad { mode } => {
                c.extend([("MODE", mode as f64), ("ROWS_PER_CHUNK", ROWS_PER_CHUNK as f64)])
            }
        }
        c
    }
    fn row_reduce(&self) -> Option<RowReduce> {
        Some(self.reduce)
    }
    fn all() -> Vec<Self> {
        let mut v = Vec::new();
        for dtype in DType::FLOATS {
            let mut kernels = vec![];
            for x in [false, true] {
                kernels.extend([
                    NormKernel::Softmax { log: x },
                    NormKernel::SoftmaxBwd { log: x },
                    NormKernel::LayerNormBwd { weight: x },
                    NormKernel::RmsNorm { weight: x },
                    NormKernel::RmsNormBwd { weight: x },
                ]);
                kernels.extend([false, true].map(|bias| NormKernel::LayerNorm { weight: x, bias }));
            }
            for kernel in kernels {
                for out in super::matmul::out_dtypes(dtype) {
                    for wg in ROW_WGS {
                        for reduce in RowReduce::ALL {
                            v.push(NormKey { kernel, dtype, grad: dtype, out, wg, reduce });
                        }
                    }
                }
            }
            for mode in 0..3 {
                for reduce in RowReduce::ALL {
                    let kernel = NormKernel::ParamGrad { mode };
                    v.push(NormKey { kernel, dtype, grad: dtype, out: DType::F32, wg: COL_WG, reduce });
                }
            }
        }
        for reduce in RowReduce::ALL {
            let (kernel, f32) = (NormKernel::ParamGrad { mode: 2 }, DType::F32);
            v.push(NormKey { kernel, dtype: f32, grad: f32, out: f32, wg: COL_WG, reduce });
        }
        v
    }
}

/// Row-kernel workgroup sizes: short rows get fewer idle invocations.
const ROW_WGS: [u32; 2] = [64, 256];

fn row_wg(d: usize) -> u32 {
    if d <= 512 {
        ROW_WGS[0]
    } else {
        ROW_WGS[1]
    }
}

/// WGSL `NormParams` (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct NormParams {
    shape: [u32; 4],
    stride: [u32; 4],
    offset: u32,
    col_stride: u32,
    d: u32,
    rows: u32,
    eps: f32,
    w_off: u32,
    w_st: u32,
    b_off: u32,
    b_st: u32,
    g_off: u32,
    _pad: [u32; 2],
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![uniform_layout!(NormParams {
        shape,
        stride,
        offset,
        col_stride,
        d,
        rows,
        eps,
        w_off,
        w_st,
        b_off,
        b_st,
        g_off
    })]
}

impl NormParams {
    fn new(v: &RowView, eps: f32) -> Result<NormParams> {
        Ok(NormParams {
            shape: v.shape,
            stride: v.stride,
            offset: v.offset,
            col_stride: v.col_stride,
            d: to_u32("norm", "row length", v.d)?,
            rows: to_u32("norm", "rows", v.rows)?,
            eps,
            w_off: 0,
            w_st: 0,
            b_off: 0,
            b_st: 0,
            g_off: 0,
            _pad: [0; 2],
        })
    }
}

/// A (D,) parameter: its storage, offset and stride after checks.
fn param(
    op: &'static str,
    x: &GpuStorage,
    d: usize,
    p: Option<(&GpuStorage, &Layout)>,
) -> Result<Option<(GpuStorage, u32, u32)>> {
    let Some((s, l)) = p else { return Ok(None) };
    if s.dtype() != x.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: x.dtype(), rhs: s.dtype() });
    }
    x.same_device(op, s)?;
    check_view(op, s.len(), l)?;
    if l.shape() != [d] {
        return Err(Error::ShapeMismatch { op, lhs: vec![d], rhs: l.shape().to_vec() });
    }
    Ok(Some((s.clone(), to_u32(op, "offset", l.offset())?, to_u32(op, "stride", l.strides()[0])?)))
}

/// The seven buffers of a norm.wgsl dispatch, dummies filled in: read-only slots default
/// to x, read-write ones to the output (a buffer may be bound twice in the same mode).
struct Bindings<'a> {
    out: &'a GpuStorage,
    x: &'a GpuStorage,
    g: Option<&'a GpuStorage>,
    w: Option<&'a GpuStorage>,
    b: Option<&'a GpuStorage>,
    mean: Option<&'a GpuStorage>,
    rstd: Option<&'a GpuStorage>,
}

impl<'a> Bindings<'a> {
    fn buffers(&self) -> [&'a wgpu::Buffer; 7] {
        let r = |o: Option<&'a GpuStorage>| o.unwrap_or(self.x).raw();
        let rw = |o: Option<&'a GpuStorage>| o.unwrap_or(self.out).raw();
        [self.out.raw(), self.x.raw(), r(self.g), r(self.w), r(self.b), rw(self.mean), rw(self.rstd)]
    }
}

/// Record one row kernel over `rows` rows (a workgroup each).
fn run_rows(key: NormKey, p: &NormParams, b: &Bindings, rows: usize) -> Result<()> {
    if rows == 0 {
        return Ok(());
    }
    let dev = b.x.device();
    let pipeline = dev.pipeline(key)?;
    dev.dispatch(&pipeline, &b.buffers(), bytemuck::bytes_of(p), dev.grid(rows as u64)?)
}

/// Output storage for a (rows, D) result: the dtype the shader stores, and the cast back.
fn row_output(x: &GpuStorage, v: &RowView) -> Result<(GpuStorage, DType)> {
    let out_dt = if v.direct(x.dtype()) { x.dtype() } else { DType::F32 };
    Ok((GpuStorage::alloc(x.device(), out_dt, v.rows * v.d)?, out_dt))
}

fn finish(out: GpuStorage, dtype: DType) -> Result<GpuStorage> {
    if out.dtype() == dtype {
        Ok(out)
    } else {
        let n = out.len();
        cast(&out, &Layout::contiguous(&[n]), dtype)
    }
}

/// softmax (or log_softmax) over the last dim.
pub fn softmax_last(s: &GpuStorage, l: &Layout, log: bool) -> Result<GpuStorage> {
    float_only("softmax", s.dtype())?;
    let (x, v) = RowView::of("softmax", s, l)?;
    let (out, out_dt) = row_output(&x, &v)?;
    let key = NormKey {
        kernel: NormKernel::Softmax { log },
        dtype: x.dtype(),
        grad: x.dtype(),
        out: out_dt,
        wg: row_wg(v.d),
        reduce: x.device().row_reduce(),
    };
    let b = Bindings { out: &out, x: &x, g: None, w: None, b: None, mean: None, rstd: None };
    run_rows(key, &NormParams::new(&v, 0.0)?, &b, if v.d == 0 { 0 } else { v.rows })?;
    finish(out, s.dtype())
}

/// Returns (y, mean, rstd); mean and rstd are f32, one per row.
pub fn layer_norm(
    x: &GpuStorage,
    lx: &Layout,
    w: Option<(&GpuStorage, &Layout)>,
    b: Option<(&GpuStorage, &Layout)>,
    eps: f32,
) -> Result<(GpuStorage, GpuStorage, GpuStorage)> {
    float_only("layer_norm", x.dtype())?;
    let (xs, v) = RowView::of("layer_norm", x, lx)?;
    let rows = if v.d == 0 { 0 } else { v.rows };
    let (wp, bp) = (param("layer_norm", x, v.d, w)?, param("layer_norm", x, v.d, b)?);
    let (out, out_dt) = row_output(&xs, &v)?;
    let dev = x.device();
    let (mean, rstd) = (GpuStorage::alloc(dev, DType::F32, rows)?, GpuStorage::alloc(dev, DType::F32, rows)?);
    let mut p = NormParams::new(&v, eps)?;
    if let Some((_, off, st)) = &wp {
        (p.w_off, p.w_st) = (*off, *st);
    }
    if let Some((_, off, st)) = &bp {
        (p.b_off, p.b_st) = (*off, *st);
    }
    let kernel = NormKernel::LayerNorm { weight: wp.is_some(), bias: bp.is_some() };
    let key = NormKey {
        kernel,
        dtype: x.dtype(),
        grad: x.dtype(),
        out: out_dt,
        wg: row_wg(v.d),
        reduce: x.device().row_reduce(),
    };
    let binds = Bindings {
        out: &out,
        x: &xs,
        g: None,
        w: wp.as_ref().map(|t| &t.0),
        b: bp.as_ref().map(|t| &t.0),
        mean: Some(&mean),
        rstd: Some(&rstd),
    };
    run_rows(key, &p, &binds, rows)?;
    Ok((finish(out, x.dtype())?, mean, rstd))
}

/// Returns (y, rstd), rstd f32, one per row.
pub fn rms_norm(
    x: &GpuStorage,
    lx: &Layout,
    w: Option<(&GpuStorage, &Layout)>,
    eps: f32,
) -> Result<(GpuStorage, GpuStorage)> {
    float_only("rms_norm", x.dtype())?;
    let (xs, v) = RowView::of("rms_norm", x, lx)?;
    let rows = if v.d == 0 { 0 } else { v.rows };
    let wp = param("rms_norm", x, v.d, w)?;
    let (out, out_dt) = row_output(&xs, &v)?;
    let rstd = GpuStorage::alloc(x.device(), DType::F32, rows)?;
    let mut p = NormParams::new(&v, eps)?;
    if let Some((_, off, st)) = &wp {
        (p.w_off, p.w_st) = (*off, *st);
    }
    let key = NormKey {
        kernel: NormKernel::RmsNorm { weight: wp.is_some() },
        dtype: x.dtype(),
        grad: x.dtype(),
        out: out_dt,
        wg: row_wg(v.d),
        reduce: x.device().row_reduce(),
    };
    let binds =
        Bindings { out: &out, x: &xs, g: None, w: wp.as_ref().map(|t| &t.0), b: None, mean: None, rstd: Some(&rstd) };
    run_rows(key, &p, &binds, rows)?;
    Ok((finish(out, x.dtype())?, rstd))
}

/// The upstream gradient as a contiguous buffer of the rows' shape: (storage, offset).
fn contiguous_grad(op: &'static str, x_shape: &[usize], g: (&GpuStorage, &Layout)) -> Result<(GpuStorage, u32)> {
    let (s, l) = g;
    if l.shape() != x_shape {
        return Err(Error::ShapeMismatch { op, lhs: x_shape.to_vec(), rhs: l.shape().to_vec() });
    }
    check_view(op, s.len(), l)?;
    float_only(op, s.dtype())?;
    // A 16-bit view at an odd offset is still readable: the shader indexes elements.
    if l.is_contiguous() {
        Ok((s.clone(), to_u32(op, "offset", l.offset())?))
    } else {
        Ok((cast(s, l, s.dtype())?, 0))
    }
}

/// Gradient of softmax / log_softmax over the last dim from its output y and the
/// upstream gradient g: softmax gx = y (g - sum(g y)), log_softmax gx = g - exp(y) sum(g).
pub fn softmax_last_backward(y: &GpuStorage, ly: &Layout, g: (&GpuStorage, &Layout), log: bool) -> Result<GpuStorage> {
    float_only("softmax_backward", y.dtype())?;
    let (ys, v) = RowView::of("softmax_backward", y, ly)?;
    let (gs, g_off) = contiguous_grad("softmax_backward", ly.shape(), g)?;
    let (out, out_dt) = row_output(&ys, &v)?;
    let mut p = NormParams::new(&v, 0.0)?;
    p.g_off = g_off;
    let key = NormKey {
        kernel: NormKernel::SoftmaxBwd { log },
        dtype: y.dtype(),
        grad: gs.dtype(),
        out: out_dt,
        wg: row_wg(v.d),
        reduce: y.device().row_reduce(),
    };
    let binds = Bindings { out: &out, x: &ys, g: Some(&gs), w: None, b: None, mean: None, rstd: None };
    run_rows(key, &p, &binds, if v.d == 0 { 0 } else { v.rows })?;
    finish(out, y.dtype())
}

/// Gradients of layer_norm from the forward's mean/rstd: (gx, gweight, gbias); gweight
/// when `w` is given, gbias when `bias` is true. All in x's dtype.
pub fn layer_norm_backward(
    x: &GpuStorage,
    lx: &Layout,
    w: Option<(&GpuStorage, &Layout)>,
    bias: bool,
    mean: &GpuStorage,
    rstd: &GpuStorage,
    g: (&GpuStorage, &Layout),
) -> Result<(GpuStorage, Option<GpuStorage>, Option<GpuStorage>)> {
    norm_backward("layer_norm_backward", x, lx, w, bias, Some(mean), rstd, g)
}

/// Gradients of rms_norm from the forward's rstd: (gx, gweight when `w` is given).
pub fn rms_norm_backward(
    x: &GpuStorage,
    lx: &Layout,
    w: Option<(&GpuStorage, &Layout)>,
    rstd: &GpuStorage,
    g: (&GpuStorage, &Layout),
) -> Result<(GpuStorage, Option<GpuStorage>)> {
    let (gx, gw, _) = norm_backward("rms_norm_backward", x, lx, w, false, None, rstd, g)?;
    Ok((gx, gw))
}

/// Shared by both norms: `mean` is `Some` for layer_norm.
#[allow(clippy::too_many_arguments)]
fn norm_backward(
    op: &'static str,
    x: &GpuStorage,
    lx: &Layout,
    w: Option<(&GpuStorage, &Layout)>,
    bias: bool,
    mean: Option<&GpuStorage>,
    rstd: &GpuStorage,
    g: (&GpuStorage, &Layout),
) -> Result<(GpuStorage, Option<GpuStorage>, Option<GpuStorage>)> {
    float_only(op, x.dtype())?;
    let (xs, v) = RowView::of(op, x, lx)?;
    let rows = if v.d == 0 { 0 } else { v.rows };
    for s in mean.into_iter().chain([rstd]) {
        if s.dtype() != DType::F32 || s.len() < rows {
            return Err(invalid(op, format!("row statistics must be f32 with {rows} values, got {s:?}")));
        }
    }
    let wp = param(op, x, v.d, w)?;
    let (gs, g_off) = contiguous_grad(op, lx.shape(), g)?;
    let (out, out_dt) = row_output(&xs, &v)?;
    let mut p = NormParams::new(&v, 0.0)?;
    p.g_off = g_off;
    if let Some((_, off, st)) = &wp {
        (p.w_off, p.w_st) = (*off, *st);
    }
    let weight = wp.is_some();
    let kernel = if mean.is_some() { NormKernel::LayerNormBwd { weight } } else { NormKernel::RmsNormBwd { weight } };
    let key = NormKey {
        kernel,
        dtype: x.dtype(),
        grad: gs.dtype(),
        out: out_dt,
        wg: row_wg(v.d),
        reduce: x.device().row_reduce(),
    };
    let binds =
        Bindings { out: &out, x: &xs, g: Some(&gs), w: wp.as_ref().map(|t| &t.0), b: None, mean, rstd: Some(rstd) };
    run_rows(key, &p, &binds, rows)?;
    let gx = finish(out, x.dtype())?;
    // Weight: sum over rows of g * xhat; bias: sum of g.
    let column_sums = |mode: u32| -> Result<GpuStorage> {
        let sums = column_sum(mode, &xs, &v, &gs, &p, mean, rstd)?;
        finish(sums, x.dtype())
    };
    let gw = if weight { Some(column_sums(if mean.is_some() { 0 } else { 1 })?) } else { None };
    let gb = if bias { Some(column_sums(2)?) } else { None };
    Ok((gx, gw, gb))
}

/// f32 (D) column sums of the MODE term over all rows, in a fixed order: chunks of
/// ROWS_PER_CHUNK rows summed in order, then the chunk sums in order.
fn column_sum(
    mode: u32,
    x: &GpuStorage,
    v: &RowView,
    g: &GpuStorage,
    p: &NormParams,
    mean: Option<&GpuStorage>,
    rstd: &GpuStorage,
) -> Result<GpuStorage> {
    let dev = x.device();
    let chunks = v.rows.div_ceil(ROWS_PER_CHUNK).max(1);
    let partial = GpuStorage::zeros(dev, DType::F32, chunks * v.d)?;
    if v.d == 0 || v.rows == 0 {
        return Ok(partial);
    }
    let max = dev.summary().max_compute_workgroups_per_dimension as usize;
    if chunks > max {
        return Err(invalid("norm_backward", format!("{} rows exceed the column-sum grid", v.rows)));
    }
    let cols = v.d.div_ceil(COL_WG as usize) as u32;
    let key = NormKey {
        kernel: NormKernel::ParamGrad { mode },
        dtype: x.dtype(),
        grad: g.dtype(),
        out: DType::F32,
        wg: COL_WG,
        reduce: dev.row_reduce(),
    };
    let binds = Bindings { out: &partial, x, g: Some(g), w: None, b: None, mean, rstd: Some(rstd) };
    dev.dispatch(&*dev.pipeline(key)?, &binds.buffers(), bytemuck::bytes_of(p), [cols, chunks as u32, 1])?;
    if chunks == 1 {
        return Ok(partial);
    }
    let sums = GpuStorage::alloc(dev, DType::F32, v.d)?;
    let mut p2 = *p;
    p2.rows = chunks as u32;
    p2.g_off = 0;
    let key = NormKey {
        kernel: NormKernel::ParamGrad { mode: 2 },
        dtype: DType::F32,
        grad: DType::F32,
        out: DType::F32,
        wg: COL_WG,
        reduce: dev.row_reduce(),
    };
    let binds = Bindings { out: &sums, x: &partial, g: Some(&partial), w: None, b: None, mean: None, rstd: None };
    dev.dispatch(&*dev.pipeline(key)?, &binds.buffers(), bytemuck::bytes_of(&p2), [cols, 1, 1])?;
    Ok(sums)
}

#[cfg(test)]
#[path = "norm_tests.rs"]
mod tests;
