//! Reductions over a set of axes on the GPU. Shader: `shaders/reduce.wgsl`.
//! CPU twin: `cpu/reduce.rs` (same contract: `axes` sorted and unique, the result has the
//! kept dims in order, max/min propagate NaN, an empty row gives the identity).
//!
//! As on the CPU the reduced axes are moved last (a view, no copy): output r reduces the
//! row r of that view. The kept dims and the reduced dims are simplified separately and
//! sent as (stride, size) pairs.

use super::{check_view, float_only, launch};
use crate::error::Result;
use crate::gpu::pipeline::{dtype_code, KernelKey, RowReduce, Shader};
use crate::gpu::strided::{collapse, to_u32, MAX_RANK};
use crate::gpu::GpuStorage;
use crate::ops::kinds::OpCode;
use crate::ops::ReduceOp;
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader = Shader { name: "reduce", source: include_str!("../../../../shaders/reduce.wgsl") };

/// How rows are spread over invocations (entry points of reduce.wgsl).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Strategy {
    /// A workgroup per output word, tree reduction in workgroup memory: long rows.
    Tree,
    /// An invocation per output word: short rows, or many rows strided across memory.
    Serial,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ReduceKey {
    pub op: ReduceOp,
    pub dtype: DType,
    pub strategy: Strategy,
    /// Workgroup size: a power of two, at most 256.
    pub wg: u32,
    pub reduce: RowReduce,
}

impl KernelKey for ReduceKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        match self.strategy {
            Strategy::Tree => "reduce_tree",
            Strategy::Serial => "reduce_serial",
        }
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        vec![("DT", dtype_code(self.dtype)), ("OP", self.op.code() as f64), ("WG", self.wg as f64)]
    }
    fn row_reduce(&self) -> Option<RowReduce> {
        Some(self.reduce)
    }
    fn all() -> Vec<Self> {
        let mut v = Vec::new();
        for op in ReduceOp::ALL {
            for dtype in DType::FLOATS {
                for reduce in RowReduce::ALL {
                    v.push(ReduceKey { op, dtype, strategy: Strategy::Tree, wg: TREE_WG, reduce });
                    v.push(ReduceKey { op, dtype, strategy: Strategy::Serial, wg: SERIAL_WG, reduce });
                }
            }
        }
        v
    }
}

const TREE_WG: u32 = 256;
const SERIAL_WG: u32 = 64;

/// WGSL `ReduceParams`: 16 + 16 + 8 * 16 = 160 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct ReduceParams {
    rows: u32,
    row_len: u32,
    kept_rank: u32,
    red_rank: u32,
    base: [u32; 4],
    /// (kept stride, kept size, reduced stride, reduced size) per dim, outermost first.
    dims: [[u32; 4]; MAX_RANK],
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![uniform_layout!(ReduceParams { rows, row_len, kept_rank, red_rank, base, dims })]
}

/// Reduce `axes` (sorted, unique) of the view `l` with `op`.
pub fn reduce(s: &GpuStorage, l: &Layout, op: ReduceOp, axes: &[usize]) -> Result<GpuStorage> {
    float_only("reduce", s.dtype())?;
    check_view("reduce", s.len(), l)?;
    let kept: Vec<usize> = (0..l.rank()).filter(|d| !axes.contains(d)).collect();
    let pick = |dims: &[usize], v: &[usize]| dims.iter().map(|&d| v[d]).collect::<Vec<_>>();
    let (kshape, kstr) = collapse(&pick(&kept, l.shape()), &[&pick(&kept, l.strides())]);
    let (rshape, rstr) = collapse(&pick(axes, l.shape()), &[&pick(axes, l.strides())]);
    let rows: usize = kept.iter().map(|&d| l.shape()[d]).product();
    let row_len: usize = axes.iter().map(|&d| l.shape()[d]).product();
    if kshape.len() > MAX_RANK || rshape.len() > MAX_RANK {
        return Err(crate::error::invalid("reduce", format!("view {:?} has too many non-mergeable dims", l.shape())));
    }
    let mut p = ReduceParams {
        rows: to_u32("reduce", "rows", rows)?,
        row_len: to_u32("reduce", "row length", row_len)?,
        kept_rank: kshape.len() as u32,
        red_rank: rshape.len() as u32,
        base: [to_u32("reduce", "offset", l.offset())?, 0, 0, 0],
        dims: [[0; 4]; MAX_RANK],
    };
    to_u32("reduce", "storage extent", l.storage_extent())?;
    for (d, (&n, &st)) in kshape.iter().zip(&kstr[0]).enumerate() {
        p.dims[d][0] = st as u32;
        p.dims[d][1] = n as u32;
    }
    for (d, (&n, &st)) in rshape.iter().zip(&rstr[0]).enumerate() {
        p.dims[d][2] = st as u32;
        p.dims[d][3] = n as u32;
    }

    let out = GpuStorage::alloc(s.device(), s.dtype(), rows)?;
    // Long rows get a workgroup each (contiguous rows read coalesced); short rows, or a
    // great many strided rows (neighbouring outputs adjacent in memory), a thread each.
    let contiguous_rows = rstr[0].last().is_none_or(|&st| st == 1);
    let tree = row_len >= 128 && (contiguous_rows || rows < 2048);
    let (strategy, wg, invocations) = if tree {
        (Strategy::Tree, TREE_WG, out.words() * TREE_WG as usize)
    } else {
        (Strategy::Serial, SERIAL_WG, out.words())
    };
    let key = ReduceKey { op, dtype: s.dtype(), strategy, wg, reduce: s.device().row_reduce() };
    launch(s.device(), key, &[out.raw(), s.raw()], bytemuck::bytes_of(&p), invocations, wg)?;
    Ok(out)
}

#[cfg(test)]
#[path = "reduce_tests.rs"]
mod tests;
