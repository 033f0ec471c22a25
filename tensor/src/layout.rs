//! Shape, strides and offset: how a tensor's elements sit in its storage. Views (reshape,
//! permute, narrow, broadcast) only build a new `Layout` over the same storage.

use crate::error::{invalid, Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    /// Elements (not bytes) to step per index of each dim; 0 for a broadcast dim.
    strides: Vec<usize>,
    /// Index of element [0, 0, ...] in the storage.
    offset: usize,
}

/// Row-major strides for a shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1usize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc = acc.saturating_mul(d);
    }
    strides
}

/// Number of elements, or an error if the product overflows (hostile shapes).
pub fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| invalid(op, format!("shape {shape:?} has more elements than fit in memory")))
}

/// Resolve a possibly negative axis against a rank.
pub fn resolve_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a < 0 || a as usize >= rank {
        return Err(Error::BadAxis { op, axis, rank });
    }
    Ok(a as usize)
}

/// The shape two shapes broadcast to (numpy rules: align right, 1 stretches).
pub fn broadcast_shapes(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() { 1 } else { a[i - (rank - a.len())] };
        let db = if i < rank - b.len() { 1 } else { b[i - (rank - b.len())] };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(Error::ShapeMismatch { op, lhs: a.to_vec(), rhs: b.to_vec() }),
        };
    }
    Ok(out)
}

impl Layout {
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout { shape: shape.to_vec(), strides: contiguous_strides(shape), offset: 0 }
    }

    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Layout {
        debug_assert_eq!(shape.len(), strides.len());
        Layout { shape, strides, offset }
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Row-major with no gaps (size-1 dims may have any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1usize;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// One past the largest storage index this layout touches (0 when empty).
    pub fn storage_extent(&self) -> usize {
        if self.numel() == 0 {
            return 0;
        }
        self.offset + self.shape.iter().zip(&self.strides).map(|(&d, &s)| (d - 1) * s).sum::<usize>() + 1
    }

    pub fn permute(&self, dims: &[usize]) -> Result<Layout> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if dims.len() != rank || dims.iter().any(|&d| d >= rank || std::mem::replace(&mut seen[d], true)) {
            return Err(invalid("permute", format!("{dims:?} is not a permutation of 0..{rank}")));
        }
        Ok(Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }

    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Layout> {
        let size = self.shape[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::IndexOutOfRange { op: "narrow", index: (start + len) as i64, size });
        }
        let mut l = self.clone();
        l.shape[dim] = len;
        if len > 0 {
            l.offset += start * self.strides[dim];
        }
        Ok(l)
    }

    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Layout> {
        let err = || Error::ShapeMismatch { op: "broadcast_to", lhs: self.shape.clone(), rhs: shape.to_vec() };
        if shape.len() < self.rank() {
            return Err(err());
        }
        let lead = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for i in 0..self.rank() {
            let (d, t) = (self.shape[i], shape[lead + i]);
            strides[lead + i] = if d == t {
                self.strides[i]
            } else if d == 1 {
                0
            } else {
                return Err(err());
            };
        }
        Ok(Layout { shape: shape.to_vec(), strides, offset: self.offset })
    }

    /// A view with a new shape over contiguous data; `None` if the layout is not contiguous.
    pub fn reshape_contiguous(&self, shape: &[usize]) -> Option<Layout> {
        if !self.is_contiguous() {
            return None;
        }
        Some(Layout { shape: shape.to_vec(), strides: contiguous_strides(shape), offset: self.offset })
    }

    /// Storage index of every element in row-major order, innermost dim fastest.
    pub fn offsets(&self) -> StridedOffsets<'_> {
        StridedOffsets::new(self)
    }

    /// Calls `f(storage_start, len, stride)` for each innermost row, in row-major order.
    /// The kernels' workhorse for strided inputs: the inner loop stays a tight loop.
    pub fn for_each_row(&self, mut f: impl FnMut(usize, usize, usize)) {
        let n = self.numel();
        if n == 0 {
            return;
        }
        if self.rank() == 0 {
            f(self.offset, 1, 1);
            return;
        }
        let r = self.rank();
        let (inner, inner_stride) = (self.shape[r - 1], self.strides[r - 1]);
        let mut idx = vec![0usize; r - 1];
        let mut base = self.offset;
        for _ in 0..n / inner {
            f(base, inner, inner_stride);
            // Increment the multi-index over the outer dims, updating `base` incrementally.
            for d in (0..r - 1).rev() {
                idx[d] += 1;
                base += self.strides[d];
                if idx[d] < self.shape[d] {
                    break;
                }
                base -= self.strides[d] * self.shape[d];
                idx[d] = 0;
            }
        }
    }
}

/// Iterator over storage offsets of a layout in row-major order.
pub struct StridedOffsets<'a> {
    layout: &'a Layout,
    idx: Vec<usize>,
    next: usize,
    remaining: usize,
}

impl<'a> StridedOffsets<'a> {
    fn new(layout: &'a Layout) -> Self {
        StridedOffsets { layout, idx: vec![0; layout.rank()], next: layout.offset, remaining: layout.numel() }
    }
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let cur = self.next;
        let l = self.layout;
        for d in (0..l.rank()).rev() {
            self.idx[d] += 1;
            self.next += l.strides[d];
            if self.idx[d] < l.shape[d] {
                break;
            }
            self.next -= l.strides[d] * l.shape[d];
            self.idx[d] = 0;
        }
        Some(cur)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for StridedOffsets<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_strides() {
        let l = Layout::contiguous(&[2, 3]).permute(&[1, 0]).unwrap();
        assert_eq!(l.offsets().collect::<Vec<_>>(), vec![0, 3, 1, 4, 2, 5]);
        let mut rows = vec![];
        l.for_each_row(|s, n, st| rows.push((s, n, st)));
        assert_eq!(rows, vec![(0, 2, 3), (1, 2, 3), (2, 2, 3)]);
    }

    #[test]
    fn broadcast_rules() {
        assert_eq!(broadcast_shapes("t", &[3, 1, 5], &[4, 5]).unwrap(), vec![3, 4, 5]);
        assert!(broadcast_shapes("t", &[3], &[4]).is_err());
        assert_eq!(broadcast_shapes("t", &[0, 1], &[1, 7]).unwrap(), vec![0, 7]);
    }
}
