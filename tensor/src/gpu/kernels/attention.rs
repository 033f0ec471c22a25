//! Fused scaled-dot-product attention forward on the GPU. Shader: `shaders/attention.wgsl`.
//! CPU twin: `cpu/attention.rs` (same contract and numerics).
//!
//! q: (B, Hq, Tq, D), k: (B, Hkv, Tk, D), v: (B, Hkv, Tk, Dv), mask broadcast to
//! (B, Hq, Tq, Tk), all read through their strides; grouped-query heads (query head h reads
//! kv head h / (Hq / Hkv)); causal masking aligns the last query with the last key.
//! Prefill shapes use the tiled online-softmax kernel (K/V tiles shared by a block of
//! queries in workgroup memory); decode (Tq == 1), and heads too wide for the tiles, use
//! the row kernel (one workgroup per query, keys split across invocations).

use crate::error::{invalid, Error, Result};
use crate::gpu::kernels::matmul::out_dtypes;
use crate::gpu::kernels::{cast, check_view, float_only};
use crate::gpu::pipeline::{dtype_code, KernelKey, RowReduce, Shader};
use crate::gpu::strided::to_u32;
use crate::gpu::GpuStorage;
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader = Shader { name: "attention", source: include_str!("../../../../shaders/attention.wgsl") };

/// Output dims one invocation owns (the shader's DV_PER).
const DV_PER: usize = 32;
/// Invocations of a tiled workgroup.
const TILED_WG: u32 = 64;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AttentionKernel {
    /// `attention_tiled`: `tpr` invocations per query row, 64 / tpr rows per workgroup,
    /// `bkv` keys per tile, tiles sized for head dims up to `dmax`.
    Tiled { tpr: u32, bkv: u32, dmax: u32 },
    /// `attention_row`: `wg` invocations per query row; the query staged for D <= `dmax`.
    Row { wg: u32, dmax: u32 },
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct AttentionKey {
    pub dtype: DType,
    pub out: DType,
    pub kernel: AttentionKernel,
    /// `attention_row`'s softmax reductions (the tiled kernel has none: always Workgroup).
    pub reduce: RowReduce,
}

impl KernelKey for AttentionKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        match self.kernel {
            AttentionKernel::Tiled { .. } => "attention_tiled",
            AttentionKernel::Row { .. } => "attention_row",
        }
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        let mut c = vec![("DT", dtype_code(self.dtype)), ("OUT_DT", dtype_code(self.out))];
        match self.kernel {
            AttentionKernel::Tiled { tpr, bkv, dmax } => c.extend([
                ("TPR", tpr as f64),
                ("BQ", (TILED_WG / tpr) as f64),
                ("BKV", bkv as f64),
                ("DMAX", dmax as f64),
            ]),
            AttentionKernel::Row { wg, dmax } => c.extend([("WG", wg as f64), ("DMAX", dmax as f64)]),
        }
        c
    }
    fn row_reduce(&self) -> Option<RowReduce> {
        Some(self.reduce)
    }
    fn all() -> Vec<Self> {
        // Every tiled shape that fits lavapipe's 32 KiB of workgroup memory.
        let mut kernels = Vec::new();
        for dmax in [32, 64, 128, 256] {
            for tpr in [2, 4, 8] {
                for bkv in [8, 16, 32] {
                    if tiled_bytes(tpr, bkv, dmax) <= 32 << 10 {
                        kernels.push(AttentionKernel::Tiled { tpr, bkv, dmax });
                    }
                }
            }
        }
        for dmax in [32, 64, 128, 256, 512, 1024] {
            for wg in [64, 128, 256] {
                kernels.push(AttentionKernel::Row { wg, dmax });
            }
        }
        let mut v = Vec::new();
        for dtype in DType::FLOATS {
            for out in out_dtypes(dtype) {
                for &kernel in &kernels {
                    match kernel {
                        AttentionKernel::Tiled { .. } => {
                            v.push(AttentionKey { dtype, out, kernel, reduce: RowReduce::Workgroup })
                        }
                        AttentionKernel::Row { .. } => {
                            v.extend(RowReduce::ALL.map(|reduce| AttentionKey { dtype, out, kernel, reduce }))
                        }
                    }
                }
            }
        }
        v
    }
}

/// Head-dim bound of the workgroup tiles: a power of two >= 32.
fn dmax_for(d: usize) -> u32 {
    d.max(32).next_power_of_two() as u32
}

/// The tiled kernel for head dims (d, dv) within `budget` bytes of workgroup memory, or
/// `None` when the heads are too wide (> 256) for it.
fn tiled_kernel(d: usize, dv: usize, budget: u32) -> Option<AttentionKernel> {
    let tpr = [2u32, 4, 8].into_iter().find(|&t| dv <= DV_PER * t as usize)?;
    if d > 256 {
        return None;
    }
    let dmax = dmax_for(d.max(dv));
    let bkv = [32u32, 16, 8].into_iter().find(|&b| tiled_bytes(tpr, b, dmax) <= budget)?;
    Some(AttentionKernel::Tiled { tpr, bkv, dmax })
}

/// Workgroup memory of a tiled kernel: qs (BQ x DMAX), ks and vs (BKV x DMAX each) and the
/// scores (BQ x BKV), all f32.
fn tiled_bytes(tpr: u32, bkv: u32, dmax: u32) -> u32 {
    let bq = TILED_WG / tpr;
    4 * (bq * dmax + 2 * bkv * dmax + bq * bkv)
}

/// The row kernel: enough invocations that each owns at most DV_PER output dims.
fn row_kernel(d: usize, dv: usize) -> Result<AttentionKernel> {
    let wg = [64u32, 128, 256].into_iter().find(|&w| dv <= DV_PER * w as usize);
    match wg {
        Some(wg) => Ok(AttentionKernel::Row { wg, dmax: dmax_for(d) }),
        None => Err(invalid("attention", format!("value head dim {dv} exceeds the GPU kernel's {}", DV_PER * 256))),
    }
}

/// WGSL `AttentionParams` (128 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AttentionParams {
    b: u32,
    hq: u32,
    hkv: u32,
    tq: u32,
    tk: u32,
    d: u32,
    dv: u32,
    causal: u32,
    scale: f32,
    has_mask: u32,
    _pad: [u32; 2],
    q_st: [u32; 4],
    k_st: [u32; 4],
    v_st: [u32; 4],
    m_st: [u32; 4],
    offs: [u32; 4],
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![uniform_layout!(AttentionParams {
        b,
        hq,
        hkv,
        tq,
        tk,
        d,
        dv,
        causal,
        scale,
        has_mask,
        q_st,
        k_st,
        v_st,
        m_st,
        offs
    })]
}

fn strides4(l: &Layout) -> Result<[u32; 4]> {
    let s = l.strides();
    let u = |i: usize| to_u32("attention", "stride", s[i]);
    Ok([u(0)?, u(1)?, u(2)?, u(3)?])
}

/// softmax(q k^T * scale + mask) v per (batch, head); see the module doc for shapes.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: (&GpuStorage, &Layout),
    k: (&GpuStorage, &Layout),
    v: (&GpuStorage, &Layout),
    mask: Option<(&GpuStorage, &Layout)>,
    causal: bool,
    scale: f32,
) -> Result<GpuStorage> {
    let dtype = q.0.dtype();
    float_only("attention", dtype)?;
    let bad = || Error::ShapeMismatch { op: "attention", lhs: q.1.shape().to_vec(), rhs: k.1.shape().to_vec() };
    if q.1.rank() != 4 || k.1.rank() != 4 || v.1.rank() != 4 {
        return Err(bad());
    }
    let (b, hq, tq, d) = (q.1.shape()[0], q.1.shape()[1], q.1.shape()[2], q.1.shape()[3]);
    let (hkv, tk, dv) = (k.1.shape()[1], k.1.shape()[2], v.1.shape()[3]);
    if k.1.shape()[0] != b || k.1.shape()[3] != d || hkv == 0 || hq % hkv != 0 || v.1.shape()[..3] != k.1.shape()[..3] {
        return Err(bad());
    }
    if causal && tq > tk {
        return Err(invalid("attention", format!("causal attention needs Tq <= Tk, got {tq} > {tk}")));
    }
    let mut operands = vec![q, k, v];
    operands.extend(mask);
    for (s, l) in &operands {
        if s.dtype() != dtype {
            return Err(Error::DTypeMismatch { op: "attention", lhs: dtype, rhs: s.dtype() });
        }
        q.0.same_device("attention", s)?;
        check_view("attention", s.len(), l)?;
    }
    if let Some((_, lm)) = mask {
        if lm.shape() != [b, hq, tq, tk] {
            return Err(Error::ShapeMismatch { op: "attention", lhs: vec![b, hq, tq, tk], rhs: lm.shape().to_vec() });
        }
    }
    let dev = q.0.device();
    let numel = b * hq * tq * dv;
    if tk == 0 {
        // No keys: every output is an empty sum (the CPU kernel's zeros).
        return GpuStorage::zeros(dev, dtype, numel);
    }
    let out_dt = if dtype == DType::F32 || dv.is_multiple_of(2) { dtype } else { DType::F32 };
    let out = GpuStorage::alloc(dev, out_dt, numel)?;
    if numel == 0 {
        return Ok(out);
    }
    let u = |x: usize| to_u32("attention", "size", x);
    let p = AttentionParams {
        b: u(b)?,
        hq: u(hq)?,
        hkv: u(hkv)?,
        tq: u(tq)?,
        tk: u(tk)?,
        d: u(d)?,
        dv: u(dv)?,
        causal: causal as u32,
        scale,
        has_mask: mask.is_some() as u32,
        _pad: [0; 2],
        q_st: strides4(q.1)?,
        k_st: strides4(k.1)?,
        v_st: strides4(v.1)?,
        m_st: match mask {
            Some((_, l)) => strides4(l)?,
            None => [0; 4],
        },
        offs: [u(q.1.offset())?, u(k.1.offset())?, u(v.1.offset())?, u(mask.map_or(0, |(_, l)| l.offset()))?],
    };
    let budget = dev.summary().max_compute_workgroup_storage_size;
    let kernel = match tiled_kernel(d, dv, budget) {
        Some(t) if tq > 1 => t,
        _ => row_kernel(d, dv)?,
    };
    let blocks = match kernel {
        AttentionKernel::Tiled { tpr, .. } => tq.div_ceil((TILED_WG / tpr) as usize),
        AttentionKernel::Row { .. } => tq,
    };
    let max = dev.summary().max_compute_workgroups_per_dimension as usize;
    if blocks > max || b * hq > max {
        return Err(invalid(
            "attention",
            format!("{b} x {hq} heads of {tq} queries exceed the device's workgroup grid"),
        ));
    }
    let reduce = match kernel {
        AttentionKernel::Tiled { .. } => RowReduce::Workgroup,
        AttentionKernel::Row { .. } => dev.row_reduce(),
    };
    let key = AttentionKey { dtype, out: out_dt, kernel, reduce };
    let pipeline = dev.pipeline(key)?;
    let mask_buf = mask.map_or(q.0.raw(), |(s, _)| s.raw());
    let buffers = [q.0.raw(), k.0.raw(), v.0.raw(), mask_buf, out.raw()];
    dev.dispatch(&pipeline, &buffers, bytemuck::bytes_of(&p), [blocks as u32, (b * hq) as u32, 1])?;
    if out_dt == dtype {
        Ok(out)
    } else {
        cast(&out, &Layout::contiguous(&[numel]), dtype)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu;
    use crate::gpu::testing::{assert_close, data, device, devices, values};
    use crate::storage::CpuStorage;

    struct Case {
        b: usize,
        hq: usize,
        hkv: usize,
        tq: usize,
        tk: usize,
        d: usize,
        dv: usize,
        causal: bool,
        mask: bool,
    }

    /// q, k, v (and the mask) as contiguous tensors, or when `strided` q read through a
    /// transposed (B, T, H, D) layout and k, v as views into a longer KV cache; GPU vs CPU
    /// with an absolute tolerance (outputs are convex combinations of v rows in [-1, 1]).
    fn check(c: &Case, dtype: DType, strided: bool) {
        let Some(dev) = device() else { return };
        check_on(&dev, c, dtype, strided);
    }

    fn check_on(dev: &std::sync::Arc<crate::gpu::GpuDevice>, c: &Case, dtype: DType, strided: bool) {
        let what = format!(
            "b{} hq{} hkv{} tq{} tk{} d{} dv{} causal={} mask={} {dtype} strided={strided} ({})",
            c.b,
            c.hq,
            c.hkv,
            c.tq,
            c.tk,
            c.d,
            c.dv,
            c.causal,
            c.mask,
            dev.kernel_paths()
        );
        let qv = data(c.b * c.hq * c.tq * c.d, 1, -1.0, 1.0);
        let lq = if strided {
            Layout::contiguous(&[c.b, c.tq, c.hq, c.d]).permute(&[0, 2, 1, 3]).unwrap()
        } else {
            Layout::contiguous(&[c.b, c.hq, c.tq, c.d])
        };
        // Strided: k and v are the first Tk positions of a longer KV cache (a narrow view).
        let cap = if strided { c.tk + 3 } else { c.tk };
        let kv = data(c.b * c.hkv * cap * c.d, 2, -1.0, 1.0);
        let vv = data(c.b * c.hkv * cap * c.dv, 3, -1.0, 1.0);
        let lk = Layout::contiguous(&[c.b, c.hkv, cap, c.d]).narrow(2, 0, c.tk).unwrap();
        let lv = Layout::contiguous(&[c.b, c.hkv, cap, c.dv]).narrow(2, 0, c.tk).unwrap();
        // A (Tq, Tk) mask broadcast over batch and heads, with some -inf entries.
        let mv: Vec<f32> =
            data(c.tq * c.tk, 4, -2.0, 2.0).iter().map(|&x| if x > 1.5 { f32::NEG_INFINITY } else { x }).collect();
        let lm = Layout::contiguous(&[c.tq, c.tk]).broadcast_to(&[c.b, c.hq, c.tq, c.tk]).unwrap();
        let cs = |v: &[f32]| CpuStorage::from_f32(dtype, v.to_vec());
        let (cq, ck, cv, cm) = (cs(&qv), cs(&kv), cs(&vv), cs(&mv));
        let scale = 1.0 / (c.d as f32).sqrt();
        let cmask = c.mask.then_some((&cm, &lm));
        let want = cpu::attention((&cq, &lq), (&ck, &lk), (&cv, &lv), cmask, c.causal, scale).unwrap();
        let g = |s: &CpuStorage| GpuStorage::from_cpu(s, dev).unwrap();
        let (gq, gk, gv, gm) = (g(&cq), g(&ck), g(&cv), g(&cm));
        let gmask = c.mask.then_some((&gm, &lm));
        let got = attention((&gq, &lq), (&gk, &lk), (&gv, &lv), gmask, c.causal, scale).unwrap().to_cpu().unwrap();
        let tol = if dtype == DType::F32 { 2e-6 } else { 2.0 * dtype.epsilon() as f32 };
        assert_close(&what, &values(&got), &values(&want), |_, w| tol * (1.0 + w.abs()));
    }

    #[test]
    fn prefill_matches_cpu() {
        let cases = [
            Case { b: 1, hq: 1, hkv: 1, tq: 5, tk: 5, d: 8, dv: 8, causal: true, mask: false },
            Case { b: 2, hq: 4, hkv: 2, tq: 33, tk: 33, d: 16, dv: 16, causal: true, mask: false },
            Case { b: 1, hq: 2, hkv: 1, tq: 17, tk: 40, d: 64, dv: 64, causal: true, mask: true },
            Case { b: 1, hq: 3, hkv: 3, tq: 20, tk: 37, d: 12, dv: 7, causal: false, mask: true },
            Case { b: 1, hq: 2, hkv: 2, tq: 9, tk: 9, d: 128, dv: 128, causal: true, mask: false },
            Case { b: 1, hq: 1, hkv: 1, tq: 10, tk: 12, d: 200, dv: 130, causal: false, mask: false },
        ];
        for c in &cases {
            check(c, DType::F32, false);
        }
        check(&cases[1], DType::F32, true);
    }

    #[test]
    fn decode_and_wide_heads_match_cpu() {
        let cases = [
            Case { b: 2, hq: 4, hkv: 1, tq: 1, tk: 70, d: 16, dv: 16, causal: true, mask: false },
            Case { b: 1, hq: 2, hkv: 2, tq: 1, tk: 130, d: 64, dv: 64, causal: false, mask: true },
            Case { b: 1, hq: 1, hkv: 1, tq: 3, tk: 5, d: 300, dv: 40, causal: true, mask: false },
        ];
        // The row kernel's reductions: subgroup and workgroup-memory versions.
        for dev in devices() {
            for c in &cases {
                check_on(&dev, c, DType::F32, false);
                check_on(&dev, c, DType::F32, true);
            }
        }
    }

    #[test]
    fn half_dtypes_match_cpu() {
        let c = Case { b: 1, hq: 2, hkv: 1, tq: 11, tk: 11, d: 16, dv: 16, causal: true, mask: true };
        let odd = Case { b: 1, hq: 1, hkv: 1, tq: 1, tk: 9, d: 8, dv: 5, causal: false, mask: false };
        for dtype in [DType::F16, DType::BF16] {
            check(&c, dtype, false);
            check(&odd, dtype, false);
        }
    }

    #[test]
    fn fully_masked_rows_are_nan_like_cpu() {
        for dev in devices() {
            let (tq, tk, d) = (2, 3, 4);
            let l4 = |t: usize, dd: usize| Layout::contiguous(&[1, 1, t, dd]);
            let q = CpuStorage::F32(data(tq * d, 1, -1.0, 1.0));
            let k = CpuStorage::F32(data(tk * d, 2, -1.0, 1.0));
            let mut m = vec![0.0; tq * tk];
            m[..tk].iter_mut().for_each(|x| *x = f32::NEG_INFINITY); // row 0 sees nothing
            let m = CpuStorage::F32(m);
            let want = cpu::attention(
                (&q, &l4(tq, d)),
                (&k, &l4(tk, d)),
                (&k, &l4(tk, d)),
                Some((&m, &l4(tq, tk))),
                false,
                0.5,
            )
            .unwrap();
            let g = |s: &CpuStorage| GpuStorage::from_cpu(s, &dev).unwrap();
            let got = attention(
                (&g(&q), &l4(tq, d)),
                (&g(&k), &l4(tk, d)),
                (&g(&k), &l4(tk, d)),
                Some((&g(&m), &l4(tq, tk))),
                false,
                0.5,
            )
            .unwrap()
            .to_cpu()
            .unwrap();
            assert_close("masked rows", &values(&got), &values(&want), |_, w| 2e-6 * (1.0 + w.abs()));
        }
    }
}
