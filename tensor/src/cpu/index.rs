//! Index kernels: select/gather (pure copies, any dtype) and their scatter-add adjoints
//! (floating dtypes, accumulated in f32, sequential so the sum order is fixed).

use super::float_only;
use crate::error::{Error, Result};
use crate::storage::CpuStorage;
use crate::Layout;

/// Copy the elements at `offsets` (storage indices) into a new contiguous storage.
fn take(s: &CpuStorage, offsets: &[usize]) -> CpuStorage {
    fn go<T: Copy>(v: &[T], offsets: &[usize]) -> Vec<T> {
        offsets.iter().map(|&o| v[o]).collect()
    }
    match s {
        CpuStorage::F32(v) => CpuStorage::F32(go(v, offsets)),
        CpuStorage::F16(v) => CpuStorage::F16(go(v, offsets)),
        CpuStorage::BF16(v) => CpuStorage::BF16(go(v, offsets)),
        CpuStorage::I32(v) => CpuStorage::I32(go(v, offsets)),
        CpuStorage::U32(v) => CpuStorage::U32(go(v, offsets)),
    }
}

fn check_ids(op: &'static str, ids: &[i64], size: usize) -> Result<()> {
    match ids.iter().find(|&&i| i < 0 || i as usize >= size) {
        Some(&bad) => Err(Error::IndexOutOfRange { op, index: bad, size }),
        None => Ok(()),
    }
}

/// Layout with `dim` removed: iterates (outer..., inner...) positions of a slice.
fn without_dim(l: &Layout, dim: usize) -> Layout {
    let mut shape = l.shape().to_vec();
    let mut strides = l.strides().to_vec();
    shape.remove(dim);
    strides.remove(dim);
    Layout::new(shape, strides, l.offset())
}

/// out[.., j, ..] = x[.., ids[j], ..] along `dim`.
pub fn index_select(x: &CpuStorage, l: &Layout, dim: usize, ids: &[i64]) -> Result<CpuStorage> {
    let size = l.shape()[dim];
    check_ids("index_select", ids, size)?;
    let inner: usize = l.shape()[dim + 1..].iter().product();
    let base: Vec<usize> = without_dim(l, dim).offsets().collect();
    let stride = l.strides()[dim];
    let outer = base.len().checked_div(inner).unwrap_or(0);
    let mut offsets = Vec::with_capacity(outer * ids.len() * inner);
    for o in 0..outer {
        for &id in ids {
            offsets.extend(base[o * inner..(o + 1) * inner].iter().map(|&b| b + id as usize * stride));
        }
    }
    Ok(take(x, &offsets))
}

/// dest[.., ids[j], ..] += src[.., j, ..]; dest and src contiguous-readable, result contiguous.
pub fn index_add(
    dest: &CpuStorage,
    ld: &Layout,
    dim: usize,
    ids: &[i64],
    src: &CpuStorage,
    ls: &Layout,
) -> Result<CpuStorage> {
    float_only("index_add", dest.dtype())?;
    let size = ld.shape()[dim];
    check_ids("index_add", ids, size)?;
    let mut out = dest.f32_view(ld).into_owned();
    let s = src.f32_view(ls);
    let inner: usize = ld.shape()[dim + 1..].iter().product();
    let outer: usize = ld.shape()[..dim].iter().product();
    for o in 0..outer {
        for (j, &id) in ids.iter().enumerate() {
            let d0 = (o * size + id as usize) * inner;
            let s0 = (o * ids.len() + j) * inner;
            for i in 0..inner {
                out[d0 + i] += s[s0 + i];
            }
        }
    }
    Ok(CpuStorage::from_f32(dest.dtype(), out))
}

/// Storage offset in `l` of the element at `pos` with `pos[dim]` replaced by `at`.
fn offset_with(l: &Layout, pos: &[usize], dim: usize, at: usize) -> usize {
    let mut off = l.offset();
    for (d, (&p, &s)) in pos.iter().zip(l.strides()).enumerate() {
        off += if d == dim { at } else { p } * s;
    }
    off
}

fn next_index(pos: &mut [usize], shape: &[usize]) {
    for d in (0..shape.len()).rev() {
        pos[d] += 1;
        if pos[d] < shape[d] {
            return;
        }
        pos[d] = 0;
    }
}

/// out[p] = x[p with p[dim] = index[p]]; out has index's shape.
pub fn gather(x: &CpuStorage, lx: &Layout, dim: usize, index: &[i64], li: &Layout) -> Result<CpuStorage> {
    let size = lx.shape()[dim];
    check_ids("gather", index, size)?;
    let shape = li.shape();
    let mut pos = vec![0; shape.len()];
    let mut offsets = Vec::with_capacity(index.len());
    for &id in index {
        offsets.push(offset_with(lx, &pos, dim, id as usize));
        next_index(&mut pos, shape);
    }
    Ok(take(x, &offsets))
}

/// dest[p with p[dim] = index[p]] += src[p] for every p in index's shape.
pub fn scatter_add(
    dest: &CpuStorage,
    ld: &Layout,
    dim: usize,
    index: &[i64],
    li: &Layout,
    src: &CpuStorage,
    ls: &Layout,
) -> Result<CpuStorage> {
    float_only("scatter_add", dest.dtype())?;
    let size = ld.shape()[dim];
    check_ids("scatter_add", index, size)?;
    let mut out = dest.f32_view(ld).into_owned();
    let dl = Layout::contiguous(ld.shape());
    let s = src.f32_view(ls);
    let shape = li.shape();
    let mut pos = vec![0; shape.len()];
    for (i, &id) in index.iter().enumerate() {
        out[offset_with(&dl, &pos, dim, id as usize)] += s[i];
        next_index(&mut pos, shape);
    }
    Ok(CpuStorage::from_f32(dest.dtype(), out))
}

/// Concatenate along `dim`; all parts have the same dtype and the same other dims. Each
/// part is read once (as a contiguous copy) and its blocks are copied straight into place.
pub fn concat(parts: &[(&CpuStorage, &Layout)], dim: usize) -> Result<CpuStorage> {
    let shape = parts[0].1.shape();
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    // Elements of each part per outer index: its slab along `dim`.
    let blocks: Vec<usize> = parts.iter().map(|(_, l)| l.shape()[dim] * inner).collect();
    let contiguous: Vec<CpuStorage> = parts.iter().map(|(s, l)| s.copy_contiguous(l)).collect();
    fn interleave<T: Copy>(parts: &[&[T]], blocks: &[usize], outer: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(outer * blocks.iter().sum::<usize>());
        for o in 0..outer {
            for (part, &block) in parts.iter().zip(blocks) {
                out.extend_from_slice(&part[o * block..(o + 1) * block]);
            }
        }
        out
    }
    // The caller checked that every part has the first part's dtype.
    macro_rules! join {
        ($variant:ident) => {{
            let slices: Vec<&[_]> = contiguous
                .iter()
                .map(|c| match c {
                    CpuStorage::$variant(v) => v.as_slice(),
                    _ => &[],
                })
                .collect();
            CpuStorage::$variant(interleave(&slices, &blocks, outer))
        }};
    }
    Ok(match &contiguous[0] {
        CpuStorage::F32(_) => join!(F32),
        CpuStorage::F16(_) => join!(F16),
        CpuStorage::BF16(_) => join!(BF16),
        CpuStorage::I32(_) => join!(I32),
        CpuStorage::U32(_) => join!(U32),
    })
}
