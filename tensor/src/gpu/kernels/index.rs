//! Index kernels on the GPU: index_select / gather / concat (copies, any dtype) and the
//! scatter-adds index_add / scatter_add (float dtypes). Shader: `shaders/index.wgsl`.
//! CPU twin: `cpu/index.rs` (same signatures; ids arrive as host `i64`s and are checked).
//!
//! Scatter-adds are deterministic and atomics-free: the ids are bucketed on the host by a
//! counting sort (CSR: bucket starts + source positions, ascending), uploaded, and each
//! output element sums its own bucket in order, exactly the CPU kernel's order (so f32
//! results are bit-identical). Work is O(dest + src) however ids repeat (embedding
//! gradients with a skewed vocabulary included).

use super::{check_view, float_only, launch};
use crate::error::{invalid, Error, Result};
use crate::gpu::pipeline::{dtype_code, KernelKey, Shader};
use crate::gpu::strided::{to_u32, MAX_RANK};
use crate::gpu::GpuStorage;
use crate::storage::CpuStorage;
use crate::{DType, Layout};
use bytemuck::{Pod, Zeroable};

pub static SHADER: Shader = Shader { name: "index", source: include_str!("../../../../shaders/index.wgsl") };

const WG: u32 = 256;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum IndexKernel {
    /// `gather_copy` MODE 0.
    Select,
    /// `gather_copy` MODE 1.
    Gather,
    /// `gather_copy` MODE 2: one part of a concat.
    ConcatPart,
    /// `scatter_add`, buckets per destination slot.
    IndexAdd,
    /// `scatter_add`, buckets per (line, slot).
    ScatterAdd,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct IndexKey {
    pub kernel: IndexKernel,
    pub dtype: DType,
}

impl KernelKey for IndexKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        match self.kernel {
            IndexKernel::Select | IndexKernel::Gather | IndexKernel::ConcatPart => "gather_copy",
            IndexKernel::IndexAdd | IndexKernel::ScatterAdd => "scatter_add",
        }
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        let mut c = vec![("DT", dtype_code(self.dtype)), ("WG", WG as f64)];
        match self.kernel {
            IndexKernel::Select => c.push(("MODE", 0.0)),
            IndexKernel::Gather => c.push(("MODE", 1.0)),
            IndexKernel::ConcatPart => c.push(("MODE", 2.0)),
            IndexKernel::IndexAdd => c.push(("PER_LINE", 0.0)),
            IndexKernel::ScatterAdd => c.push(("PER_LINE", 1.0)),
        }
        c
    }
    fn all() -> Vec<Self> {
        let mut v = Vec::new();
        for dtype in DType::ALL {
            for kernel in [IndexKernel::Select, IndexKernel::Gather, IndexKernel::ConcatPart] {
                v.push(IndexKey { kernel, dtype });
            }
        }
        for dtype in DType::FLOATS {
            for kernel in [IndexKernel::IndexAdd, IndexKernel::ScatterAdd] {
                v.push(IndexKey { kernel, dtype });
            }
        }
        v
    }
}

/// A shape and strides padded in front to MAX_RANK dims, as two vec4s each.
pub(crate) type Dims8 = [[u32; 4]; 2];

/// (shape, strides) of a layout padded in front to eight dims (size 1, stride 0), and
/// the padded position of `dim`.
pub(crate) fn pad8(op: &'static str, shape: &[usize], strides: &[usize]) -> Result<(Dims8, Dims8, usize)> {
    let r = shape.len();
    if r > MAX_RANK {
        return Err(invalid(op, format!("rank {r} exceeds the GPU limit {MAX_RANK}")));
    }
    let (mut s, mut st) = ([[1u32; 4]; 2], [[0u32; 4]; 2]);
    let lead = MAX_RANK - r;
    for d in 0..r {
        let k = lead + d;
        s[k / 4][k % 4] = to_u32(op, "dim", shape[d])?;
        st[k / 4][k % 4] = to_u32(op, "stride", strides[d])?;
    }
    Ok((s, st, lead))
}

/// WGSL `CopyParams` (96 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct CopyParams {
    shape: Dims8,
    stride: Dims8,
    src_off: u32,
    dim: u32,
    numel: u32,
    start: u32,
    len: u32,
    _pad: [u32; 3],
}

/// WGSL `ScatterParams` (144 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct ScatterParams {
    shape: Dims8,
    d_stride: Dims8,
    i_shape: Dims8,
    s_stride: Dims8,
    d_off: u32,
    s_off: u32,
    dim: u32,
    numel: u32,
}

#[cfg(test)]
pub(super) fn uniform_layouts() -> Vec<super::UniformLayout> {
    vec![
        uniform_layout!(CopyParams { shape, stride, src_off, dim, numel, start, len }),
        uniform_layout!(ScatterParams { shape, d_stride, i_shape, s_stride, d_off, s_off, dim, numel }),
    ]
}

fn check_ids(op: &'static str, ids: &[i64], size: usize) -> Result<()> {
    match ids.iter().find(|&&i| i < 0 || i as usize >= size) {
        Some(&bad) => Err(Error::IndexOutOfRange { op, index: bad, size }),
        None => Ok(()),
    }
}

fn check_dim(op: &'static str, l: &Layout, dim: usize) -> Result<()> {
    if dim >= l.rank() {
        return Err(Error::BadAxis { op, axis: dim as isize, rank: l.rank() });
    }
    Ok(())
}

/// Upload u32 values (an empty list still gets a buffer to bind).
fn upload(dev: &std::sync::Arc<crate::gpu::GpuDevice>, v: Vec<u32>) -> Result<GpuStorage> {
    let v = if v.is_empty() { vec![0] } else { v };
    GpuStorage::from_cpu(&CpuStorage::U32(v), dev)
}

/// Record a gather_copy dispatch writing `out` from `src` under `p`.
fn copy(kernel: IndexKernel, src: &GpuStorage, ids: &GpuStorage, out: &GpuStorage, p: &CopyParams) -> Result<()> {
    let key = IndexKey { kernel, dtype: src.dtype() };
    launch(src.device(), key, &[src.raw(), ids.raw(), out.raw()], bytemuck::bytes_of(p), out.words(), WG)
}

/// out[.., j, ..] = x[.., ids[j], ..] along `dim`.
pub fn index_select(x: &GpuStorage, l: &Layout, dim: usize, ids: &[i64]) -> Result<GpuStorage> {
    check_dim("index_select", l, dim)?;
    check_view("index_select", x.len(), l)?;
    check_ids("index_select", ids, l.shape()[dim])?;
    let mut shape = l.shape().to_vec();
    shape[dim] = ids.len();
    let numel: usize = shape.iter().product();
    let (shape8, stride8, lead) = pad8("index_select", &shape, l.strides())?;
    let p = CopyParams {
        shape: shape8,
        stride: stride8,
        src_off: to_u32("index_select", "offset", l.offset())?,
        dim: (lead + dim) as u32,
        numel: to_u32("index_select", "element count", numel)?,
        start: 0,
        len: 0,
        _pad: [0; 3],
    };
    let out = GpuStorage::alloc(x.device(), x.dtype(), numel)?;
    let ids = upload(x.device(), ids.iter().map(|&i| i as u32).collect())?;
    copy(IndexKernel::Select, x, &ids, &out, &p)?;
    Ok(out)
}

/// out[p] = x[p with p[dim] = index[p]]; out has index's shape.
pub fn gather(x: &GpuStorage, lx: &Layout, dim: usize, index: &[i64], li: &Layout) -> Result<GpuStorage> {
    check_dim("gather", lx, dim)?;
    check_view("gather", x.len(), lx)?;
    check_ids("gather", index, lx.shape()[dim])?;
    let shape = li.shape();
    let fits =
        shape.len() == lx.rank() && shape.iter().zip(lx.shape()).enumerate().all(|(d, (i, s))| d == dim || i <= s);
    if !fits || index.len() != li.numel() {
        return Err(Error::ShapeMismatch { op: "gather", lhs: lx.shape().to_vec(), rhs: shape.to_vec() });
    }
    let (shape8, stride8, lead) = pad8("gather", shape, lx.strides())?;
    let p = CopyParams {
        shape: shape8,
        stride: stride8,
        src_off: to_u32("gather", "offset", lx.offset())?,
        dim: (lead + dim) as u32,
        numel: to_u32("gather", "element count", li.numel())?,
        start: 0,
        len: 0,
        _pad: [0; 3],
    };
    let out = GpuStorage::alloc(x.device(), x.dtype(), li.numel())?;
    let ids = upload(x.device(), index.iter().map(|&i| i as u32).collect())?;
    copy(IndexKernel::Gather, x, &ids, &out, &p)?;
    Ok(out)
}

/// Concatenate along `dim`; all parts have the same dtype and the same other dims.
/// One dispatch per part, each writing its slab of the output.
pub fn concat(parts: &[(&GpuStorage, &Layout)], dim: usize) -> Result<GpuStorage> {
    let Some(&(first, l0)) = parts.first() else { return Err(invalid("concat", "no parts")) };
    check_dim("concat", l0, dim)?;
    let mut shape = l0.shape().to_vec();
    shape[dim] = 0;
    for &(s, l) in parts {
        if s.dtype() != first.dtype() {
            return Err(Error::DTypeMismatch { op: "concat", lhs: first.dtype(), rhs: s.dtype() });
        }
        first.same_device("concat", s)?;
        check_view("concat", s.len(), l)?;
        let same =
            l.rank() == l0.rank() && l.shape().iter().zip(l0.shape()).enumerate().all(|(d, (a, b))| d == dim || a == b);
        if !same {
            return Err(Error::ShapeMismatch { op: "concat", lhs: l0.shape().to_vec(), rhs: l.shape().to_vec() });
        }
        shape[dim] += l.shape()[dim];
    }
    let numel: usize = shape.iter().product();
    let out = GpuStorage::alloc(first.device(), first.dtype(), numel)?;
    let dummy_ids = upload(first.device(), vec![])?;
    let mut start = 0;
    for &(s, l) in parts {
        let len = l.shape()[dim];
        if len > 0 && numel > 0 {
            let (shape8, stride8, lead) = pad8("concat", &shape, l.strides())?;
            let p = CopyParams {
                shape: shape8,
                stride: stride8,
                src_off: to_u32("concat", "offset", l.offset())?,
                dim: (lead + dim) as u32,
                numel: to_u32("concat", "element count", numel)?,
                start: start as u32,
                len: len as u32,
                _pad: [0; 3],
            };
            copy(IndexKernel::ConcatPart, s, &dummy_ids, &out, &p)?;
        }
        start += len;
    }
    Ok(out)
}

/// Buckets of a counting sort: `starts[b]..starts[b + 1]` indexes `perm`, which lists the
/// positions with key b in ascending order (a stable sort).
fn buckets(
    keys: impl Iterator<Item = usize> + Clone,
    n_buckets: usize,
    positions: impl Iterator<Item = usize>,
) -> (Vec<u32>, Vec<u32>) {
    let mut starts = vec![0u32; n_buckets + 1];
    for k in keys.clone() {
        starts[k + 1] += 1;
    }
    for b in 0..n_buckets {
        starts[b + 1] += starts[b];
    }
    let mut next = starts.clone();
    let mut perm = vec![0u32; starts[n_buckets] as usize];
    for (k, pos) in keys.zip(positions) {
        perm[next[k] as usize] = pos as u32;
        next[k] += 1;
    }
    (starts, perm)
}

#[allow(clippy::too_many_arguments)]
fn scatter(
    op: &'static str,
    kernel: IndexKernel,
    dest: &GpuStorage,
    ld: &Layout,
    dim: usize,
    src: &GpuStorage,
    ls: &Layout,
    starts: Vec<u32>,
    perm: Vec<u32>,
) -> Result<GpuStorage> {
    let (shape8, d_stride8, lead) = pad8(op, ld.shape(), ld.strides())?;
    let (i_shape8, s_stride8, _) = pad8(op, ls.shape(), ls.strides())?;
    let numel = ld.numel();
    let p = ScatterParams {
        shape: shape8,
        d_stride: d_stride8,
        i_shape: i_shape8,
        s_stride: s_stride8,
        d_off: to_u32(op, "offset", ld.offset())?,
        s_off: to_u32(op, "offset", ls.offset())?,
        dim: (lead + dim) as u32,
        numel: to_u32(op, "element count", numel)?,
    };
    let dev = dest.device();
    let out = GpuStorage::alloc(dev, dest.dtype(), numel)?;
    let (starts, perm) = (upload(dev, starts)?, upload(dev, perm)?);
    let key = IndexKey { kernel, dtype: dest.dtype() };
    let buffers = [dest.raw(), src.raw(), out.raw(), starts.raw(), perm.raw()];
    launch(dev, key, &buffers, bytemuck::bytes_of(&p), out.words(), WG)?;
    Ok(out)
}

fn check_scatter(
    op: &'static str,
    dest: &GpuStorage,
    ld: &Layout,
    dim: usize,
    src: &GpuStorage,
    ls: &Layout,
) -> Result<()> {
    float_only(op, dest.dtype())?;
    if src.dtype() != dest.dtype() {
        return Err(Error::DTypeMismatch { op, lhs: dest.dtype(), rhs: src.dtype() });
    }
    dest.same_device(op, src)?;
    check_dim(op, ld, dim)?;
    check_view(op, dest.len(), ld)?;
    check_view(op, src.len(), ls)
}

/// dest[.., ids[j], ..] += src[.., j, ..]; the result is contiguous.
pub fn index_add(
    dest: &GpuStorage,
    ld: &Layout,
    dim: usize,
    ids: &[i64],
    src: &GpuStorage,
    ls: &Layout,
) -> Result<GpuStorage> {
    check_scatter("index_add", dest, ld, dim, src, ls)?;
    let size = ld.shape()[dim];
    check_ids("index_add", ids, size)?;
    let mut want = ld.shape().to_vec();
    want[dim] = ids.len();
    if ls.shape() != want.as_slice() {
        return Err(Error::ShapeMismatch { op: "index_add", lhs: want, rhs: ls.shape().to_vec() });
    }
    let (starts, perm) = buckets(ids.iter().map(|&i| i as usize), size, 0..ids.len());
    scatter("index_add", IndexKernel::IndexAdd, dest, ld, dim, src, ls, starts, perm)
}

/// dest[p with p[dim] = index[p]] += src[p] for every p in index's shape (src has it too).
pub fn scatter_add(
    dest: &GpuStorage,
    ld: &Layout,
    dim: usize,
    index: &[i64],
    li: &Layout,
    src: &GpuStorage,
    ls: &Layout,
) -> Result<GpuStorage> {
    check_scatter("scatter_add", dest, ld, dim, src, ls)?;
    let size = ld.shape()[dim];
    check_ids("scatter_add", index, size)?;
    let ishape = li.shape();
    let fits =
        ishape.len() == ld.rank() && ishape.iter().zip(ld.shape()).enumerate().all(|(d, (i, s))| d == dim || i <= s);
    if !fits || ls.shape() != ishape || index.len() != li.numel() {
        return Err(Error::ShapeMismatch { op: "scatter_add", lhs: ld.shape().to_vec(), rhs: ishape.to_vec() });
    }
    if index.is_empty() {
        // Nothing to add: every bucket empty (per-slot buckets keep the shader in range).
        return scatter("scatter_add", IndexKernel::IndexAdd, dest, ld, dim, src, ls, vec![0; size + 1], vec![]);
    }
    // Index element e (row-major) = ((outer * len) + p_dim) * inner + in: its line is
    // outer * inner + in (the row-major index without `dim`), its bucket (line, target).
    let (len, inner) = (ishape[dim], ishape[dim + 1..].iter().product::<usize>());
    let lines = index.len() / len;
    let keys = index.iter().enumerate().map(|(e, &t)| ((e / (len * inner)) * inner + e % inner) * size + t as usize);
    let (starts, perm) = buckets(keys, lines * size, (0..index.len()).map(|e| (e / inner) % len));
    scatter("scatter_add", IndexKernel::ScatterAdd, dest, ld, dim, src, ls, starts, perm)
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
