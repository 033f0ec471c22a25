//! Products with quantized weights on the GPU. Shader: `shaders/qmatmul.wgsl` (the blocks
//! are dequantized in the shader; x and the sums are f32). Weights: `gpu/qweights.rs`.
//! CPU twin: `cpu/qmatmul/` (same signatures with host slices).
//!
//! - `qmatmul_t`: y (m, rows) = x (m, cols) W^T. Matrix-vector kernel for m <=
//!   `MATVEC_MAX_M` (decode, small batches), tiled kernel otherwise (prefill).
//! - `qmatmul_n`: y (m, cols) = g (m, rows) W, tiled (the gradient of `qmatmul_t` to x).
//! - `dequantize`: W as f32.
//!
//! Float weights (F32/F16/BF16 matrices, uploaded as f32) go through the f32 matmul.

use super::matmul::matmul;
use crate::error::{invalid, Result};
use crate::gpu::kernels::{cast, check_view};
use crate::gpu::pipeline::{KernelKey, Shader};
use crate::gpu::qweights::{GpuBlockLayout, GpuQMatrix, GpuWeights};
use crate::gpu::strided::to_u32;
use crate::gpu::GpuStorage;
use crate::quant::GgmlType;
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader = Shader { name: "qmatmul", source: include_str!("../../../../shaders/qmatmul.wgsl") };

/// Up to this many x rows, `qmatmul_t` runs the matrix-vector kernel (llama.cpp's Vulkan
/// backend switches at the same count); above it, the tiled kernel.
pub const MATVEC_MAX_M: usize = 8;
/// Weight rows per qmatvec workgroup (`NR` in the shader).
const MATVEC_ROWS: usize = 8;
/// x rows per qmatvec workgroup (`MC`) when M > 1: each decoded weight serves this many.
const MATVEC_X_ROWS: u32 = 4;
/// Invocations per qmatvec / qdequant workgroup (`WG`).
const WG: u32 = 64;

/// Which kernel of the shader.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum QKernel {
    /// One workgroup per 8 weight rows and `x_rows` rows of x (1, or `MATVEC_X_ROWS`).
    Matvec {
        x_rows: u32,
    },
    /// x W^T in tiles.
    MatmulT(QTile),
    /// g W in tiles.
    MatmulN(QTile),
    Dequant,
}

/// Output tile of the tiled kernels: (WG_X, WG_Y) invocations of 4x4 outputs each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum QTile {
    /// 16x16 invocations, 64x64 outputs (16 KiB of workgroup memory).
    Large,
    /// 8x8 invocations, 32x32 outputs: small m or n (more workgroups).
    Small,
}

impl QTile {
    fn dims(self) -> (u32, u32) {
        match self {
            QTile::Large => (16, 16),
            QTile::Small => (8, 8),
        }
    }

    fn pick(m: usize, n: usize) -> QTile {
        if m >= 64 && n >= 64 {
            QTile::Large
        } else {
            QTile::Small
        }
    }
}

/// The block formats the shader decodes, with their `FMT` codes.
pub const FORMATS: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

fn format_code(ty: GgmlType) -> f64 {
    FORMATS.iter().position(|&t| t == ty).expect("a block format the shader decodes") as f64
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct QMatmulKey {
    pub ty: GgmlType,
    pub kernel: QKernel,
}

impl KernelKey for QMatmulKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        match self.kernel {
            QKernel::Matvec { .. } => "qmatvec",
            QKernel::MatmulT(_) => "qmatmul_t",
            QKernel::MatmulN(_) => "qmatmul_n",
            QKernel::Dequant => "qdequant",
        }
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        let l = crate::gpu::qweights::block_layout(self.ty).expect("a block format");
        let mut c = vec![
            ("FMT", format_code(self.ty)),
            ("BS", l.block_size as f64),
            ("QW", l.quant_words as f64),
            ("NH", l.heads_per_block() as f64),
        ];
        match self.kernel {
            QKernel::Matvec { x_rows } => c.extend([("WG", WG as f64), ("MC", x_rows as f64)]),
            QKernel::Dequant => c.push(("WG", WG as f64)),
            QKernel::MatmulT(tile) | QKernel::MatmulN(tile) => {
                let (wx, wy) = tile.dims();
                c.extend([("WG_X", wx as f64), ("WG_Y", wy as f64)]);
            }
        }
        c
    }
    fn all() -> Vec<Self> {
        let kernels = [
            QKernel::Matvec { x_rows: 1 },
            QKernel::Matvec { x_rows: MATVEC_X_ROWS },
            QKernel::Dequant,
            QKernel::MatmulT(QTile::Large),
            QKernel::MatmulT(QTile::Small),
            QKernel::MatmulN(QTile::Large),
            QKernel::MatmulN(QTile::Small),
        ];
        FORMATS.iter().flat_map(|&ty| kernels.map(|kernel| QMatmulKey { ty, kernel })).collect()
    }
}

/// WGSL `QParams` (32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct QParams {
    m: u32,
    rows: u32,
    cols: u32,
    bpr: u32,
    x_off: u32,
    _pad: [u32; 3],
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![uniform_layout!(QParams { m, rows, cols, bpr, x_off })]
}

fn params(op: &'static str, w: &GpuQMatrix, l: &GpuBlockLayout, m: usize, x_off: usize) -> Result<QParams> {
    Ok(QParams {
        m: to_u32(op, "row count", m)?,
        rows: to_u32(op, "weight rows", w.rows)?,
        cols: to_u32(op, "weight columns", w.cols)?,
        bpr: to_u32(op, "blocks per row", w.cols / l.block_size)?,
        x_off: to_u32(op, "offset", x_off)?,
        _pad: [0; 3],
    })
}

/// `x` viewed by `l` as f32 rows (..., k): (storage, offset of its first element),
/// copied to a fresh contiguous buffer unless it already is one whose offset is a
/// multiple of 4 (the matrix-vector kernel loads x four elements at a time).
fn f32_rows(op: &'static str, x: &GpuStorage, l: &Layout) -> Result<(GpuStorage, usize)> {
    check_view(op, x.len(), l)?;
    if x.dtype() != DType::F32 {
        return Err(invalid(op, format!("expects f32 activations, got {}", x.dtype())));
    }
    if l.is_contiguous() && l.offset().is_multiple_of(4) {
        Ok((x.clone(), l.offset()))
    } else {
        Ok((cast(x, l, DType::F32)?, 0))
    }
}

/// y (m, rows) = x (m, cols) W^T, where `l` views `x` as (..., cols) with m rows in all.
pub fn qmatmul_t(w: &GpuQMatrix, x: &GpuStorage, l: &Layout, m: usize) -> Result<GpuStorage> {
    const OP: &str = "matmul_qt";
    let (x, x_off) = f32_rows(OP, x, l)?;
    let dev = x.device().clone();
    same_device(OP, &x, w)?;
    let out = m.checked_mul(w.rows).ok_or_else(|| invalid(OP, "output size overflows"))?;
    let (layout, quants, heads) = match &w.weights {
        GpuWeights::Float(wf) => {
            // (m, cols) @ (cols, rows), the weight read transposed in place.
            let lx = Layout::new(vec![m, w.cols], vec![w.cols, 1], x_off);
            let lw = Layout::contiguous(&[w.rows, w.cols]).permute(&[1, 0])?;
            return matmul(&x, &lx, wf, &lw);
        }
        GpuWeights::Blocks { layout, quants, heads } => (layout, quants, heads),
    };
    let y = GpuStorage::alloc(&dev, DType::F32, out)?;
    if out == 0 {
        return Ok(y);
    }
    if w.cols == 0 {
        dev.clear_buffer(y.raw(), out as u64 * 4);
        return Ok(y);
    }
    let p = params(OP, w, layout, m, x_off)?;
    let buffers = [quants.raw(), heads.raw(), y.raw(), x.raw()];
    let max = dev.summary().max_compute_workgroups_per_dimension;
    if m <= MATVEC_MAX_M {
        let x_rows = if m == 1 { 1 } else { MATVEC_X_ROWS };
        let key = QMatmulKey { ty: w.ty, kernel: QKernel::Matvec { x_rows } };
        let groups = dev.grid(w.rows.div_ceil(MATVEC_ROWS) as u64)?;
        let pipeline = dev.pipeline(key)?;
        dev.dispatch(&pipeline, &buffers, bytemuck::bytes_of(&p), [groups[0], groups[1], p.m.div_ceil(x_rows)])?;
    } else {
        let tile = QTile::pick(m, w.rows);
        let (wx, wy) = tile.dims();
        let grid = [w.rows.div_ceil(4 * wx as usize), m.div_ceil(4 * wy as usize), 1];
        let grid = grid_u32(OP, grid, max)?;
        let pipeline = dev.pipeline(QMatmulKey { ty: w.ty, kernel: QKernel::MatmulT(tile) })?;
        dev.dispatch(&pipeline, &buffers, bytemuck::bytes_of(&p), grid)?;
    }
    Ok(y)
}

/// y (m, cols) = g (m, rows) W, where `l` views `g` as (..., rows) with m rows in all.
pub fn qmatmul_n(w: &GpuQMatrix, g: &GpuStorage, l: &Layout, m: usize) -> Result<GpuStorage> {
    const OP: &str = "matmul_q";
    let (g, g_off) = f32_rows(OP, g, l)?;
    let dev = g.device().clone();
    same_device(OP, &g, w)?;
    let out = m.checked_mul(w.cols).ok_or_else(|| invalid(OP, "output size overflows"))?;
    let (layout, quants, heads) = match &w.weights {
        GpuWeights::Float(wf) => {
            let lg = Layout::new(vec![m, w.rows], vec![w.rows, 1], g_off);
            return matmul(&g, &lg, wf, &Layout::contiguous(&[w.rows, w.cols]));
        }
        GpuWeights::Blocks { layout, quants, heads } => (layout, quants, heads),
    };
    let y = GpuStorage::alloc(&dev, DType::F32, out)?;
    if out == 0 {
        return Ok(y);
    }
    if w.rows == 0 {
        dev.clear_buffer(y.raw(), out as u64 * 4);
        return Ok(y);
    }
    let p = params(OP, w, layout, m, g_off)?;
    let tile = QTile::pick(m, w.cols);
    let (wx, wy) = tile.dims();
    let grid = [w.cols.div_ceil(4 * wx as usize), m.div_ceil(4 * wy as usize), 1];
    let grid = grid_u32(OP, grid, dev.summary().max_compute_workgroups_per_dimension)?;
    let pipeline = dev.pipeline(QMatmulKey { ty: w.ty, kernel: QKernel::MatmulN(tile) })?;
    dev.dispatch(&pipeline, &[quants.raw(), heads.raw(), y.raw(), g.raw()], bytemuck::bytes_of(&p), grid)?;
    Ok(y)
}

/// The (rows, cols) f32 matrix the weights encode.
pub fn dequantize(w: &GpuQMatrix) -> Result<GpuStorage> {
    const OP: &str = "QMatrix::dequantize";
    let (layout, quants, heads) = match &w.weights {
        GpuWeights::Float(wf) => return cast(wf, &Layout::contiguous(&[wf.len()]), DType::F32),
        GpuWeights::Blocks { layout, quants, heads } => (layout, quants, heads),
    };
    let dev = quants.device();
    let n = w.rows.checked_mul(w.cols).ok_or_else(|| invalid(OP, "size overflows"))?;
    let y = GpuStorage::alloc(dev, DType::F32, n)?;
    let p = params(OP, w, layout, 0, 0)?;
    to_u32(OP, "element count", n)?;
    super::launch(
        dev,
        QMatmulKey { ty: w.ty, kernel: QKernel::Dequant },
        &[quants.raw(), heads.raw(), y.raw()],
        bytemuck::bytes_of(&p),
        n / 4,
        WG,
    )?;
    Ok(y)
}

fn same_device(op: &'static str, x: &GpuStorage, w: &GpuQMatrix) -> Result<()> {
    if std::sync::Arc::ptr_eq(x.device(), w.device()) {
        return Ok(());
    }
    let (a, b) = (x.device().ordinal(), w.device().ordinal());
    Err(invalid(op, format!("the activations are on gpu:{a} and the weights on gpu:{b}")))
}

fn grid_u32(op: &'static str, grid: [usize; 3], max: u32) -> Result<[u32; 3]> {
    let g = [to_u32(op, "grid", grid[0])?, to_u32(op, "grid", grid[1])?, to_u32(op, "grid", grid[2])?];
    if g.iter().any(|&d| d > max) {
        return Err(invalid(
            op,
            format!("a {grid:?} workgroup grid exceeds the device's limit of {max} per dimension"),
        ));
    }
    Ok(g)
}

#[cfg(test)]
#[path = "qmatmul_tests.rs"]
mod tests;
