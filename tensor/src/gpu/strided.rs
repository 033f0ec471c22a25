//! How kernels receive strided views: shape, per-operand strides and offsets in the
//! parameter uniform, so any view (permuted, narrowed, broadcast with stride 0) is read
//! in place, without a copy.
//!
//! Before upload the dims are simplified: size-1 dims are dropped and neighbours that
//! step contiguously in every operand are merged, so a contiguous tensor becomes rank 1
//! and the shader's per-element index arithmetic is one multiply.

use crate::error::{invalid, Result};
use crate::Layout;
use bytemuck::{Pod, Zeroable};

/// Most dims a view may have after simplification.
pub const MAX_RANK: usize = 8;

/// Up to three views of one shape, as WGSL's `Strided` struct (`shaders/common.wgsl`):
///
/// ```wgsl
/// struct Strided { n: u32, rank: u32, s0: f32, s1: f32, base: vec4<u32>, dims: array<vec4<u32>, 8> }
/// ```
/// `dims[d] = (stride of operand 0, of operand 1, of operand 2, size)`, outermost first;
/// `base[k]` is operand k's offset (elements). `s0`/`s1` carry op scalars (powf's exponent,
/// clamp bounds, affine mul/add).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct StridedParams {
    pub n: u32,
    pub rank: u32,
    pub s0: f32,
    pub s1: f32,
    pub base: [u32; 4],
    pub dims: [[u32; 4]; MAX_RANK],
}

/// Drop size-1 dims and merge dims that are contiguous in every operand.
/// Returns the simplified shape and each operand's strides for it.
pub fn collapse(shape: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut out_shape: Vec<usize> = Vec::with_capacity(shape.len());
    let mut out_strides: Vec<Vec<usize>> = vec![Vec::with_capacity(shape.len()); strides.len()];
    for d in 0..shape.len() {
        if shape[d] == 1 {
            continue;
        }
        // Merge into the previous kept dim when, for every operand, stepping the previous
        // dim once equals stepping this dim `shape[d]` times.
        let mergeable = match out_shape.last() {
            Some(_) => strides.iter().zip(&out_strides).all(|(s, o)| *o.last().unwrap() == s[d] * shape[d]),
            None => false,
        };
        if mergeable {
            *out_shape.last_mut().unwrap() *= shape[d];
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                *o.last_mut().unwrap() = s[d];
            }
        } else {
            out_shape.push(shape[d]);
            for (s, o) in strides.iter().zip(out_strides.iter_mut()) {
                o.push(s[d]);
            }
        }
    }
    (out_shape, out_strides)
}

pub(crate) fn to_u32(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| invalid(op, format!("{what} {v} does not fit the GPU's 32-bit indexing")))
}

/// Pack `(shape, strides)` of up to three operands into `dims` rows `(s0, s1, s2, size)`.
pub(crate) fn pack_dims(op: &'static str, shape: &[usize], strides: &[Vec<usize>]) -> Result<[[u32; 4]; MAX_RANK]> {
    if shape.len() > MAX_RANK {
        return Err(invalid(
            op,
            format!("a view of rank {} (after merging dims) exceeds the GPU limit {MAX_RANK}", shape.len()),
        ));
    }
    let mut dims = [[0u32; 4]; MAX_RANK];
    for (d, &size) in shape.iter().enumerate() {
        for (k, s) in strides.iter().enumerate() {
            dims[d][k] = to_u32(op, "stride", s[d])?;
        }
        dims[d][3] = to_u32(op, "dim", size)?;
    }
    Ok(dims)
}

impl StridedParams {
    /// Views of one shape (`layouts[k]` is operand k; at most three).
    pub fn new(op: &'static str, layouts: &[&Layout]) -> Result<StridedParams> {
        assert!(!layouts.is_empty() && layouts.len() <= 3, "1 to 3 operands");
        let shape = layouts[0].shape();
        for l in layouts {
            if l.shape() != shape {
                return Err(crate::Error::ShapeMismatch { op, lhs: shape.to_vec(), rhs: l.shape().to_vec() });
            }
            to_u32(op, "storage extent", l.storage_extent())?;
        }
        let strides: Vec<&[usize]> = layouts.iter().map(|l| l.strides()).collect();
        let (shape_c, strides_c) = collapse(shape, &strides);
        let mut base = [0u32; 4];
        for (k, l) in layouts.iter().enumerate() {
            base[k] = to_u32(op, "offset", l.offset())?;
        }
        Ok(StridedParams {
            n: to_u32(op, "element count", layouts[0].numel())?,
            rank: shape_c.len() as u32,
            s0: 0.0,
            s1: 0.0,
            base,
            dims: pack_dims(op, &shape_c, &strides_c)?,
        })
    }

    pub fn with_scalars(mut self, s0: f32, s1: f32) -> StridedParams {
        self.s0 = s0;
        self.s1 = s1;
        self
    }

    /// The bytes `GpuDevice::dispatch` takes.
    pub fn bytes(&self) -> &[u8] {
        bytemuck::bytes_of(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_collapses_to_rank_one() {
        let (s, st) = collapse(&[2, 3, 4], &[&[12, 4, 1]]);
        assert_eq!((s, st), (vec![24], vec![vec![1]]));
    }

    #[test]
    fn broadcast_and_permuted_dims_stay_apart() {
        // Operand 1 broadcasts a row over dim 0; operand 0 is contiguous.
        let (s, st) = collapse(&[5, 1, 7], &[&[7, 7, 1], &[0, 0, 1]]);
        assert_eq!(s, vec![5, 7]);
        assert_eq!(st, vec![vec![7, 1], vec![0, 1]]);
        // A transpose cannot merge.
        let (s, _) = collapse(&[3, 4], &[&[1, 3]]);
        assert_eq!(s, vec![3, 4]);
        // Stride-0 dims next to each other merge (0 == 0 * n).
        let (s, st) = collapse(&[2, 3, 4], &[&[0, 0, 1]]);
        assert_eq!((s, st), (vec![6, 4], vec![vec![0, 1]]));
    }

    #[test]
    fn params_layout_matches_wgsl() {
        // n, rank, s0, s1 (16) + base (16) + 8 * vec4 (128).
        assert_eq!(std::mem::size_of::<StridedParams>(), 160);
        let l = Layout::contiguous(&[2, 1, 3]).permute(&[2, 1, 0]).unwrap();
        let p = StridedParams::new("t", &[&l]).unwrap();
        assert_eq!((p.n, p.rank), (6, 2));
        assert_eq!(p.dims[0], [1, 0, 0, 3]);
        assert_eq!(p.dims[1], [3, 0, 0, 2]);
    }
}

#[cfg(test)]
mod rank_tests {
    use super::*;

    #[test]
    fn views_beyond_max_rank_are_refused() {
        // Nine dims of 2, reversed: no two neighbours merge.
        let l = Layout::contiguous(&[2; 9]).permute(&[8, 7, 6, 5, 4, 3, 2, 1, 0]).unwrap();
        assert!(StridedParams::new("t", &[&l]).is_err());
        // Nine dims that merge are fine.
        assert_eq!(StridedParams::new("t", &[&Layout::contiguous(&[2; 9])]).unwrap().rank, 1);
    }
}
