//! Batched matmul on the GPU. Shaders: `shaders/matmul.wgsl` (tiled, register-blocked)
//! and `shaders/matvec.wgsl` (M == 1, decode). CPU twin: `cpu/matmul.rs`.
//!
//! a: (batch..., m, k), b: (batch..., k, n), already broadcast to the same batch dims
//! (stride 0 where broadcast). Both are read in place through their strides: a transposed
//! operand costs no copy; the tile loads follow whichever dim is contiguous. The result is
//! the contiguous (batch..., m, n) product in the inputs' dtype: stored directly when each
//! output word belongs to one invocation (f32, or f16/bf16 with n even), otherwise
//! computed as f32 and cast.

use crate::error::{invalid, Error, Result};
use crate::gpu::kernels::{cast, check_view, float_only};
use crate::gpu::pipeline::{dtype_code, KernelKey, Shader};
use crate::gpu::strided::{collapse, to_u32};
use crate::gpu::{GpuDevice, GpuStorage};
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader = Shader { name: "matmul", source: include_str!("../../../../shaders/matmul.wgsl") };
pub static F16_SHADER: Shader =
    Shader { name: "matmul_f16", source: include_str!("../../../../shaders/matmul_f16.wgsl") };
pub static MATVEC_SHADER: Shader = Shader { name: "matvec", source: include_str!("../../../../shaders/matvec.wgsl") };

/// Output tile per workgroup: (WG_X, WG_Y) invocations of 4x4 outputs each, K step BK.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Tile {
    /// 16x16 invocations, a 64x64 tile: large matrices.
    Large,
    /// 8x8 invocations, a 32x32 tile: small or skinny matrices (more workgroups).
    Small,
}

impl Tile {
    /// (WG_X, WG_Y, BK); the tile is (4 WG_Y) x (4 WG_X).
    fn dims(self) -> (u32, u32, u32) {
        match self {
            Tile::Large => (16, 16, 16),
            Tile::Small => (8, 8, 16),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MatmulKey {
    /// Dtype of a and b.
    pub dtype: DType,
    /// Dtype the shader stores (the inputs' or f32).
    pub out: DType,
    pub tile: Tile,
    /// a's k dim is its contiguous one (else its m dim, a transposed view).
    pub a_k_contig: bool,
    /// b's n dim is its contiguous one (else its k dim: b = W^T).
    pub b_n_contig: bool,
    /// Tile loads of four f32 at a time along each operand's contiguous dim.
    pub vec4: bool,
    /// f16 operands multiplied in f16 (`matmul_f16.wgsl`, needs SHADER_F16); else f32 math.
    pub f16_math: bool,
}

impl KernelKey for MatmulKey {
    fn shader(&self) -> &'static Shader {
        if self.f16_math {
            &F16_SHADER
        } else {
            &SHADER
        }
    }
    fn entry(&self) -> &'static str {
        if self.f16_math {
            "matmul_f16"
        } else if self.vec4 {
            "matmul_vec4"
        } else {
            "matmul"
        }
    }
    fn features(&self) -> wgpu::Features {
        if self.f16_math {
            wgpu::Features::SHADER_F16
        } else {
            wgpu::Features::empty()
        }
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        let (wx, wy, bk) = self.tile.dims();
        let mut c = vec![];
        if !self.f16_math {
            c.extend([("DT_A", dtype_code(self.dtype)), ("DT_B", dtype_code(self.dtype))]);
        }
        c.extend([
            ("OUT_DT", dtype_code(self.out)),
            ("WG_X", wx as f64),
            ("WG_Y", wy as f64),
            ("BK", bk as f64),
            ("A_K_CONTIG", self.a_k_contig as u32 as f64),
            ("B_N_CONTIG", self.b_n_contig as u32 as f64),
        ]);
        c
    }
    fn all() -> Vec<Self> {
        let mut v = Vec::new();
        for dtype in DType::FLOATS {
            for out in out_dtypes(dtype) {
                for tile in [Tile::Large, Tile::Small] {
                    for (a_k_contig, b_n_contig) in [(true, true), (true, false), (false, true), (false, false)] {
                        let key = MatmulKey { dtype, out, tile, a_k_contig, b_n_contig, vec4: false, f16_math: false };
                        v.push(key);
                        if dtype == DType::F32 {
                            v.push(MatmulKey { vec4: true, ..key });
                        }
                        if dtype == DType::F16 {
                            v.push(MatmulKey { f16_math: true, ..key });
                        }
                    }
                }
            }
        }
        v
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct MatvecKey {
    pub dtype: DType,
    pub out: DType,
    /// b's k dim is contiguous (b = W^T with W (n, k) row-major, a Linear layer).
    pub k_contig: bool,
}

impl MatvecKey {
    /// (COLS, KS): outputs per workgroup and K slices per output (COLS * KS = 256).
    fn shape(self) -> (u32, u32) {
        if self.k_contig {
            (8, 32)
        } else {
            (64, 4)
        }
    }
}

impl KernelKey for MatvecKey {
    fn shader(&self) -> &'static Shader {
        &MATVEC_SHADER
    }
    fn entry(&self) -> &'static str {
        "matvec"
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        let (cols, ks) = self.shape();
        vec![
            ("DT_A", dtype_code(self.dtype)),
            ("DT_B", dtype_code(self.dtype)),
            ("OUT_DT", dtype_code(self.out)),
            ("COLS", cols as f64),
            ("KS", ks as f64),
            ("K_CONTIG", self.k_contig as u32 as f64),
        ]
    }
    fn all() -> Vec<Self> {
        let mut v = Vec::new();
        for dtype in DType::FLOATS {
            for out in out_dtypes(dtype) {
                for k_contig in [false, true] {
                    v.push(MatvecKey { dtype, out, k_contig });
                }
            }
        }
        v
    }
}

/// The dtypes a kernel over `dtype` inputs may store: the inputs' own, or f32 (then cast).
pub(crate) fn out_dtypes(dtype: DType) -> Vec<DType> {
    if dtype == DType::F32 {
        vec![DType::F32]
    } else {
        vec![dtype, DType::F32]
    }
}

/// WGSL `MatmulParams` (96 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_off: u32,
    a_rs: u32,
    a_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    _pad: [u32; 2],
    bshape: [u32; 4],
    a_bs: [u32; 4],
    b_bs: [u32; 4],
}

/// WGSL `MatvecParams` (80 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct MatvecParams {
    n: u32,
    k: u32,
    batch: u32,
    x_off: u32,
    x_cs: u32,
    b_off: u32,
    b_rs: u32,
    b_cs: u32,
    bshape: [u32; 4],
    x_bs: [u32; 4],
    b_bs: [u32; 4],
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![
        uniform_layout!(MatmulParams { m, n, k, batch, a_off, a_rs, a_cs, b_off, b_rs, b_cs, bshape, a_bs, b_bs }),
        uniform_layout!(MatvecParams { n, k, batch, x_off, x_cs, b_off, b_rs, b_cs, bshape, x_bs, b_bs }),
    ]
}

/// Batch dims merged where both operands allow, padded in front to four:
/// (sizes, a's strides, b's strides), or `None` when more than four remain.
fn batch_dims(la: &Layout, lb: &Layout) -> Result<Option<[[u32; 4]; 3]>> {
    let r = la.rank();
    let (shape, strides) = collapse(&la.shape()[..r - 2], &[&la.strides()[..r - 2], &lb.strides()[..r - 2]]);
    if shape.len() > 4 {
        return Ok(None);
    }
    let mut out = [[1, 1, 1, 1], [0; 4], [0; 4]];
    let lead = 4 - shape.len();
    for (d, &size) in shape.iter().enumerate() {
        out[0][lead + d] = to_u32("matmul", "batch dim", size)?;
        out[1][lead + d] = to_u32("matmul", "stride", strides[0][d])?;
        out[2][lead + d] = to_u32("matmul", "stride", strides[1][d])?;
    }
    Ok(Some(out))
}

/// Whether an f32 operand (rows x cols, strides rs/cs, offset, batch strides) can be
/// loaded four elements at a time along its contiguous dim (`along_cols`: the cols dim):
/// that dim unit-stride with a length multiple of 4, every other step a multiple of 4.
fn vec4_ok(along_cols: bool, rows: usize, cols: usize, rs: usize, cs: usize, offset: usize, batch: &[u32; 4]) -> bool {
    let (len, unit, other) = if along_cols { (cols, cs, rs) } else { (rows, rs, cs) };
    unit == 1
        && len.is_multiple_of(4)
        && other.is_multiple_of(4)
        && offset.is_multiple_of(4)
        && batch.iter().all(|s| s.is_multiple_of(4))
}

/// The output tiles' grid must fit the device's workgroup grid.
fn check_grid(dev: &GpuDevice, grid: [u32; 3], m: usize, n: usize) -> Result<()> {
    let max = dev.summary().max_compute_workgroups_per_dimension;
    if grid[0] > max || grid[1] > max {
        return Err(invalid("matmul", format!("a ({m} x {n}) output exceeds the device's workgroup grid")));
    }
    Ok(())
}

/// a: (batch..., m, k), b: (batch..., k, n), both already broadcast to the same batch
/// dims. Returns the contiguous (batch..., m, n) product in a's dtype. A user's kernel
/// set on the device (`GpuDevice::set_matmul_kernel`) runs in place of the engine's.
pub fn matmul(a: &GpuStorage, la: &Layout, b: &GpuStorage, lb: &Layout) -> Result<GpuStorage> {
    float_only("matmul", a.dtype())?;
    if a.dtype() != b.dtype() {
        return Err(Error::DTypeMismatch { op: "matmul", lhs: a.dtype(), rhs: b.dtype() });
    }
    a.same_device("matmul", b)?;
    check_view("matmul", a.len(), la)?;
    check_view("matmul", b.len(), lb)?;
    let r = la.rank();
    if r < 2 || lb.rank() != r || la.shape()[..r - 2] != lb.shape()[..r - 2] || la.shape()[r - 1] != lb.shape()[r - 2] {
        return Err(Error::ShapeMismatch { op: "matmul", lhs: la.shape().to_vec(), rhs: lb.shape().to_vec() });
    }
    let (m, k, n) = (la.shape()[r - 2], la.shape()[r - 1], lb.shape()[r - 1]);
    let batch: usize = la.shape()[..r - 2].iter().product();
    let Some([bshape, a_bs, b_bs]) = batch_dims(la, lb)? else {
        // More than four unmergeable batch dims: make both contiguous (then they merge).
        let (ca, cb) = (cast(a, la, a.dtype())?, cast(b, lb, b.dtype())?);
        return matmul(&ca, &Layout::contiguous(la.shape()), &cb, &Layout::contiguous(lb.shape()));
    };
    let dev = a.device();
    let dtype = a.dtype();
    // A 16-bit word of the output must belong to one invocation: pairs of columns.
    let direct = dtype == DType::F32 || n.is_multiple_of(2) || batch * m == 1;
    let out_dt = if direct { dtype } else { DType::F32 };
    let numel = batch * m * n;
    if numel == 0 {
        return GpuStorage::alloc(dev, dtype, 0);
    }
    let out = GpuStorage::alloc(dev, out_dt, numel)?;
    to_u32("matmul", "element count", numel)?;
    let batch32 = to_u32("matmul", "batch", batch)?;
    if batch32 > dev.summary().max_compute_workgroups_per_dimension {
        return Err(invalid("matmul", format!("batch {batch} exceeds the device's workgroup grid")));
    }
    let u = |v: usize| to_u32("matmul", "stride or size", v);
    let (ars, acs) = (la.strides()[r - 2], la.strides()[r - 1]);
    let (brs, bcs) = (lb.strides()[r - 2], lb.strides()[r - 1]);
    let buffers = [a.raw(), b.raw(), out.raw()];
    let params = || -> Result<MatmulParams> {
        Ok(MatmulParams {
            m: u(m)?,
            n: u(n)?,
            k: u(k)?,
            batch: batch32,
            a_off: u(la.offset())?,
            a_rs: u(ars)?,
            a_cs: u(acs)?,
            b_off: u(lb.offset())?,
            b_rs: u(brs)?,
            b_cs: u(bcs)?,
            _pad: [0; 2],
            bshape,
            a_bs,
            b_bs,
        })
    };
    if let Some(user) = dev.matmul_kernel() {
        // A researcher's kernel (`gpu::UserKernel`): every shape, one contract.
        let (bm, bn) = user.tile();
        let grid = [u(n.div_ceil(bn as usize))?, u(m.div_ceil(bm as usize))?, batch32];
        check_grid(dev, grid, m, n)?;
        let pipeline = user.pipeline(dev, dtype, out_dt)?;
        dev.dispatch(&pipeline, &buffers, bytemuck::bytes_of(&params()?), grid)?;
    } else if m == 1 {
        let key = MatvecKey { dtype, out: out_dt, k_contig: brs == 1 && bcs != 1 };
        let p = MatvecParams {
            n: u(n)?,
            k: u(k)?,
            batch: batch32,
            x_off: u(la.offset())?,
            x_cs: u(acs)?,
            b_off: u(lb.offset())?,
            b_rs: u(brs)?,
            b_cs: u(bcs)?,
            bshape,
            x_bs: a_bs,
            b_bs,
        };
        let groups = dev.grid(n.div_ceil(key.shape().0 as usize) as u64)?;
        let pipeline = dev.pipeline(key)?;
        dev.dispatch(&pipeline, &buffers, bytemuck::bytes_of(&p), [groups[0], groups[1], batch32])?;
    } else {
        let tile = if m >= 64 && n >= 64 { Tile::Large } else { Tile::Small };
        // Load along the contiguous dim; when neither is, along the smaller stride.
        let (a_k_contig, b_n_contig) = (acs <= ars, bcs <= brs);
        let vec4 = dtype == DType::F32
            && vec4_ok(a_k_contig, m, k, ars, acs, la.offset(), &a_bs)
            && vec4_ok(b_n_contig, k, n, brs, bcs, lb.offset(), &b_bs);
        let f16_math = dtype == DType::F16 && dev.f16_math();
        let key = MatmulKey { dtype, out: out_dt, tile, a_k_contig, b_n_contig, vec4, f16_math };
        let (wx, wy, _) = tile.dims();
        let grid = [u(n.div_ceil(4 * wx as usize))?, u(m.div_ceil(4 * wy as usize))?, batch32];
        check_grid(dev, grid, m, n)?;
        let pipeline = dev.pipeline(key)?;
        dev.dispatch(&pipeline, &buffers, bytemuck::bytes_of(&params()?), grid)?;
    }
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
    use crate::gpu::GpuDevice;
    use crate::storage::CpuStorage;
    use std::sync::Arc;

    /// Run both backends on the views `la`, `lb` of `av`, `bv` (f32 values stored as
    /// `dtype`) and compare: the bound is relative to sum_k |a||b| (the CPU's blocked FMA
    /// order and the GPU's sequential order differ), plus output rounding for f16/bf16.
    fn check(what: &str, dtype: DType, av: Vec<f32>, la: &Layout, bv: Vec<f32>, lb: &Layout) {
        let Some(dev) = device() else { return };
        check_on(&dev, what, dtype, av, la, bv, lb);
    }

    /// As `check`, on `dev`. Where f16 operands are multiplied in f16 (`matmul_f16.wgsl`),
    /// the bound is that shader's: each product and each K tile's partial sum of BK terms
    /// rounds in f16, so |error| <= (BK + 1) 2^-11 sum_k |a||b| (plus output rounding).
    fn check_on(dev: &Arc<GpuDevice>, what: &str, dtype: DType, av: Vec<f32>, la: &Layout, bv: Vec<f32>, lb: &Layout) {
        let what = format!("{what} ({})", dev.kernel_paths());
        let (ca, cb) = (CpuStorage::from_f32(dtype, av), CpuStorage::from_f32(dtype, bv));
        let want = cpu::matmul(&ca, la, &cb, lb).unwrap();
        let (ga, gb) = (GpuStorage::from_cpu(&ca, dev).unwrap(), GpuStorage::from_cpu(&cb, dev).unwrap());
        let got = matmul(&ga, la, &gb, lb).unwrap().to_cpu().unwrap();
        assert_eq!(got.dtype(), dtype, "{what}");
        let sum_eps = if dtype == DType::F16 && dev.f16_math() { 17.0 * 2f32.powi(-11) } else { 2e-6 };
        // |a| @ |b| bounds the rounding of either summation order.
        let abs = |s: &CpuStorage| CpuStorage::F32(values(s).iter().map(|x| x.abs()).collect());
        let scale = values(&cpu::matmul(&abs(&ca), la, &abs(&cb), lb).unwrap());
        let out_eps = if dtype == DType::F32 { 0.0 } else { 2.0 * dtype.epsilon() as f32 };
        assert_close(&what, &values(&got), &values(&want), |i, c| sum_eps * scale[i] + out_eps * c.abs() + 1e-30);
    }

    fn contiguous(shape: &[usize]) -> Layout {
        Layout::contiguous(shape)
    }

    #[test]
    fn edge_sizes_match_cpu() {
        // m, k, n not multiples of any tile, both tile sizes, k == 0, and m >= 500.
        let cases =
            [(1, 1, 1), (7, 33, 65), (65, 7, 33), (33, 65, 7), (70, 130, 66), (2, 0, 3), (517, 9, 5), (64, 64, 64)];
        for (i, &(m, k, n)) in cases.iter().enumerate() {
            let (a, b) = (data(m * k, i as u64, -1.0, 1.0), data(k * n, 100 + i as u64, -1.0, 1.0));
            check(&format!("{m}x{k}x{n}"), DType::F32, a, &contiguous(&[m, k]), b, &contiguous(&[k, n]));
        }
    }

    #[test]
    fn transposed_and_batched_views_match_cpu() {
        let (b, m, k, n) = (3, 37, 29, 41);
        // a stored (b, k, m), viewed transposed; b stored (n, k) viewed as (k, n) and
        // broadcast over the batch (stride 0).
        let a = data(b * k * m, 1, -1.0, 1.0);
        let la = contiguous(&[b, k, m]).permute(&[0, 2, 1]).unwrap();
        let w = data(n * k, 2, -1.0, 1.0);
        let lw = contiguous(&[n, k]).permute(&[1, 0]).unwrap().broadcast_to(&[b, k, n]).unwrap();
        check("a^T @ w^T batched", DType::F32, a.clone(), &la, w.clone(), &lw);
        // Two batch dims with an offset view (narrow) of a.
        let big = data(2 * 3 * (m + 2) * k, 3, -1.0, 1.0);
        let la = contiguous(&[2, 3, m + 2, k]).narrow(2, 2, m).unwrap();
        let bb = data(2 * 3 * k * n, 4, -1.0, 1.0);
        check("4-d narrowed", DType::F32, big, &la, bb, &contiguous(&[2, 3, k, n]));
    }

    #[test]
    fn matvec_matches_cpu() {
        for (i, &(k, n)) in [(1, 1), (33, 7), (257, 65), (64, 1000)].iter().enumerate() {
            let x = data(k, 10 + i as u64, -1.0, 1.0);
            let w = data(n * k, 20 + i as u64, -1.0, 1.0);
            // W (n, k) row-major viewed as (k, n): the Linear-layer case (k contiguous).
            let lw = contiguous(&[n, k]).permute(&[1, 0]).unwrap();
            check(&format!("x @ W^T {k}x{n}"), DType::F32, x.clone(), &contiguous(&[1, k]), w.clone(), &lw);
            check(&format!("x @ W {k}x{n}"), DType::F32, x, &contiguous(&[1, k]), w, &contiguous(&[k, n]));
        }
        // Batched decode: (4, 1, k) @ (4, k, n) with odd n (f16 goes through the cast).
        let (b, k, n) = (4, 19, 9);
        check(
            "batched matvec f16",
            DType::F16,
            data(b * k, 5, -1.0, 1.0),
            &contiguous(&[b, 1, k]),
            data(b * k * n, 6, -1.0, 1.0),
            &contiguous(&[b, k, n]),
        );
    }

    #[test]
    fn vec4_loads_match_cpu() {
        // Shapes and views the vec4 path takes (asserted), with edges in every tile dim.
        let (b, m, k, n) = (2, 132, 44, 100);
        let a = data(b * k * m, 31, -1.0, 1.0);
        let w = data(n * k, 32, -1.0, 1.0);
        let cases = [
            (contiguous(&[b, m, k]), contiguous(&[n, k]).permute(&[1, 0]).unwrap().broadcast_to(&[b, k, n]).unwrap()),
            (contiguous(&[b, k, m]).permute(&[0, 2, 1]).unwrap(), contiguous(&[b, k, n]).narrow(0, 0, b).unwrap()),
        ];
        for (i, (la, lb)) in cases.iter().enumerate() {
            let r = la.rank();
            let bs = batch_dims(la, lb).unwrap().unwrap();
            let (ars, acs, brs, bcs) =
                (la.strides()[r - 2], la.strides()[r - 1], lb.strides()[r - 2], lb.strides()[r - 1]);
            assert!(vec4_ok(acs <= ars, m, k, ars, acs, la.offset(), &bs[1]), "case {i}: a should take the vec4 path");
            assert!(vec4_ok(bcs <= brs, k, n, brs, bcs, lb.offset(), &bs[2]), "case {i}: b should take the vec4 path");
            let bv = if lb.strides()[0] == 0 { w.clone() } else { data(b * k * n, 33, -1.0, 1.0) };
            check(&format!("vec4 case {i}"), DType::F32, a.clone(), la, bv, lb);
        }
        // A k not a multiple of 4 must not: (stride 6) rows are not vec4-aligned.
        assert!(!vec4_ok(true, 5, 6, 6, 1, 0, &[0; 4]));
    }

    #[test]
    fn a_variant_the_device_cannot_run_is_a_clear_error() {
        // The fallback device was opened without SHADER_F16 (and SUBGROUP): asking it for
        // the f16-math matmul, or a subgroup reduction, is refused before wgpu sees it.
        let Some(base) = devices().into_iter().nth(1) else { return };
        let (tile, out) = (Tile::Small, DType::F16);
        let key = MatmulKey { dtype: out, out, tile, a_k_contig: true, b_n_contig: true, vec4: false, f16_math: true };
        let err = base.pipeline(key).unwrap_err().to_string();
        assert!(err.contains("SHADER_F16") && err.contains("lacks"), "{err}");
        let key = crate::gpu::kernels::reduce::ReduceKey {
            op: crate::ops::ReduceOp::Sum,
            dtype: DType::F32,
            strategy: crate::gpu::kernels::reduce::Strategy::Tree,
            wg: 256,
            reduce: crate::gpu::RowReduce::Subgroup,
        };
        let err = base.pipeline(key).unwrap_err().to_string();
        assert!(err.contains("SUBGROUP"), "{err}");
    }

    #[test]
    fn half_dtypes_match_cpu() {
        // f16 runs matmul_f16.wgsl on devices with shader-f16 and matmul.wgsl on the rest.
        for dev in devices() {
            for dtype in [DType::F16, DType::BF16] {
                for &(m, k, n) in &[(7, 33, 65), (66, 20, 64), (3, 5, 1), (70, 130, 66)] {
                    let (a, b) = (data(m * k, 7, -2.0, 2.0), data(k * n, 8, -2.0, 2.0));
                    let (la, lb) = (contiguous(&[m, k]), contiguous(&[k, n]));
                    check_on(&dev, &format!("{dtype} {m}x{k}x{n}"), dtype, a.clone(), &la, b.clone(), &lb);
                    // Transposed operands: the tile loads' other mappings.
                    let (lat, lbt) =
                        (contiguous(&[k, m]).permute(&[1, 0]).unwrap(), contiguous(&[n, k]).permute(&[1, 0]).unwrap());
                    check_on(&dev, &format!("{dtype} {m}x{k}x{n} transposed"), dtype, a, &lat, b, &lbt);
                }
            }
        }
    }
}
