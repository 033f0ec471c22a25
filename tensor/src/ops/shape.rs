//! Layout ops (views over the same storage: reshape, permute, narrow, broadcast) and the
//! copying ops that move data between layouts (contiguous, concat, index_select, gather).

use crate::autograd::Op;
use crate::error::{invalid, Error, Result};
use crate::layout::{checked_numel, resolve_axis};
use crate::storage::Storage;
use crate::{Layout, Tensor};

impl Tensor {
    /// Same elements, new shape. A view when the data is contiguous, else a copy first.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = checked_numel("reshape", shape)?;
        if n != self.numel() {
            return Err(Error::ShapeMismatch { op: "reshape", lhs: self.shape().to_vec(), rhs: shape.to_vec() });
        }
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let src = self.contiguous()?;
        let layout = src.layout().reshape_contiguous(shape).expect("contiguous() returned a strided tensor");
        Ok(src.view(layout, || Op::Reshape { x: src.graph_link() }))
    }

    /// Reorder dims: output dim i is input dim `dims[i]`.
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let layout = self.layout().permute(dims)?;
        Ok(self.view(layout, || Op::Permute { x: self.graph_link(), dims: dims.to_vec() }))
    }

    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let r = self.rank();
        let (a, b) = (resolve_axis("transpose", d0, r)?, resolve_axis("transpose", d1, r)?);
        let mut dims: Vec<usize> = (0..r).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    /// Swap the last two dims (a view: matmul reads it without a copy).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(invalid("t", format!("needs rank >= 2, got shape {:?}", self.shape())));
        }
        self.transpose(-2, -1)
    }

    /// Elements `start..start+len` of `dim` (a view).
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        if dim >= self.rank() {
            return Err(Error::BadAxis { op: "narrow", axis: dim as isize, rank: self.rank() });
        }
        if start == 0 && len == self.shape()[dim] {
            return Ok(self.clone());
        }
        let layout = self.layout().narrow(dim, start, len)?;
        Ok(self.view(layout, || Op::Narrow { x: self.graph_link(), dim, start }))
    }

    /// Stretch size-1 dims (and add leading dims) to `shape` with stride 0: no copy.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let layout = self.layout().broadcast_to(shape)?;
        Ok(self.view(layout, || Op::Broadcast { x: self.graph_link() }))
    }

    /// Insert a size-1 dim at `dim` (0..=rank).
    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor> {
        if dim > self.rank() {
            return Err(Error::BadAxis { op: "unsqueeze", axis: dim as isize, rank: self.rank() });
        }
        let mut shape = self.shape().to_vec();
        shape.insert(dim, 1);
        let mut strides = self.layout().strides().to_vec();
        let s = if dim < strides.len() { strides[dim] * self.shape()[dim] } else { 1 };
        strides.insert(dim, s);
        let layout = Layout::new(shape, strides, self.layout().offset());
        Ok(self.view(layout, || Op::Reshape { x: self.graph_link() }))
    }

    /// Remove a size-1 dim.
    pub fn squeeze(&self, dim: usize) -> Result<Tensor> {
        if dim >= self.rank() || self.shape()[dim] != 1 {
            return Err(invalid("squeeze", format!("dim {dim} of shape {:?} is not of size 1", self.shape())));
        }
        let mut shape = self.shape().to_vec();
        let mut strides = self.layout().strides().to_vec();
        shape.remove(dim);
        strides.remove(dim);
        let layout = Layout::new(shape, strides, self.layout().offset());
        Ok(self.view(layout, || Op::Reshape { x: self.graph_link() }))
    }

    pub fn flatten_all(&self) -> Result<Tensor> {
        self.reshape(&[self.numel()])
    }

    /// A row-major copy, or this tensor if it already is one.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let out = self.storage().copy_contiguous(self.layout())?;
        Ok(Tensor::from_kernel(out, self.shape(), || Op::Copy { x: self.graph_link() }, &[self]))
    }

    /// Join tensors along `dim`; all other dims must agree.
    pub fn cat(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
        let first = *tensors.first().ok_or_else(|| invalid("cat", "needs at least one tensor"))?;
        if dim >= first.rank() {
            return Err(Error::BadAxis { op: "cat", axis: dim as isize, rank: first.rank() });
        }
        let mut shape = first.shape().to_vec();
        shape[dim] = 0;
        for t in tensors {
            first.check_same_dtype("cat", t)?;
            let ok = t.rank() == first.rank()
                && t.shape().iter().zip(first.shape()).enumerate().all(|(d, (a, b))| d == dim || a == b);
            if !ok {
                return Err(Error::ShapeMismatch { op: "cat", lhs: first.shape().to_vec(), rhs: t.shape().to_vec() });
            }
            shape[dim] += t.shape()[dim];
        }
        let guards: Vec<_> = tensors.iter().map(|t| t.storage()).collect();
        let parts: Vec<_> = guards.iter().zip(tensors).map(|(g, t)| (&**g, t.layout())).collect();
        let out = Storage::concat(&parts, dim)?;
        drop(parts);
        drop(guards);
        let owned: Vec<Tensor> = tensors.iter().map(|t| (*t).clone()).collect();
        Ok(Tensor::from_kernel(
            out,
            &shape,
            || Op::Concat { xs: owned.iter().map(Tensor::graph_link).collect(), dim },
            tensors,
        ))
    }

    /// Rows (or slices along `dim`) picked by integer ids; ids may repeat.
    pub fn index_select(&self, dim: usize, ids: &Tensor) -> Result<Tensor> {
        if dim >= self.rank() {
            return Err(Error::BadAxis { op: "index_select", axis: dim as isize, rank: self.rank() });
        }
        if ids.rank() != 1 {
            return Err(invalid("index_select", format!("ids must be 1-D, got shape {:?}", ids.shape())));
        }
        let id_values = index_values("index_select", ids)?;
        let out = self.storage().index_select(self.layout(), dim, &id_values)?;
        let mut shape = self.shape().to_vec();
        shape[dim] = id_values.len();
        Ok(Tensor::from_kernel(
            out,
            &shape,
            || Op::IndexSelect { x: self.graph_link(), dim, ids: ids.clone() },
            &[self],
        ))
    }

    /// out[p] = self[p with p[dim] = index[p]]; index has the rank of self and may be
    /// smaller in every dim (like `torch.gather`).
    pub fn gather(&self, dim: usize, index: &Tensor) -> Result<Tensor> {
        if dim >= self.rank() {
            return Err(Error::BadAxis { op: "gather", axis: dim as isize, rank: self.rank() });
        }
        let fits = index.rank() == self.rank()
            && index.shape().iter().zip(self.shape()).enumerate().all(|(d, (i, s))| d == dim || i <= s);
        if !fits {
            return Err(Error::ShapeMismatch { op: "gather", lhs: self.shape().to_vec(), rhs: index.shape().to_vec() });
        }
        let idx = index_values("gather", index)?;
        let out = self.storage().gather(self.layout(), dim, &idx, index.layout())?;
        Ok(Tensor::from_kernel(
            out,
            index.shape(),
            || Op::Gather { x: self.graph_link(), dim, index: index.clone() },
            &[self],
        ))
    }

    /// A copy of `self` with `src[.., j, ..]` added at `self[.., ids[j], ..]` (repeated ids
    /// accumulate). The adjoint of `index_select`; not itself differentiable.
    pub fn index_add(&self, dim: usize, ids: &Tensor, src: &Tensor) -> Result<Tensor> {
        self.check_same_dtype("index_add", src)?;
        let idv = index_values("index_add", ids)?;
        let mut want = self.shape().to_vec();
        if dim >= want.len() {
            return Err(Error::BadAxis { op: "index_add", axis: dim as isize, rank: self.rank() });
        }
        want[dim] = idv.len();
        if src.shape() != want.as_slice() {
            return Err(Error::ShapeMismatch { op: "index_add", lhs: want, rhs: src.shape().to_vec() });
        }
        let out = self.storage().index_add(self.layout(), dim, &idv, (&src.storage(), src.layout()))?;
        Ok(Tensor::from_storage(out, Layout::contiguous(self.shape()), None))
    }

    /// A copy of `self` with `src[p]` added at `self[p with p[dim] = index[p]]`. The adjoint
    /// of `gather`; not itself differentiable. `src` has index's shape.
    pub fn scatter_add(&self, dim: usize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        self.check_same_dtype("scatter_add", src)?;
        if dim >= self.rank() || index.rank() != self.rank() {
            return Err(Error::BadAxis { op: "scatter_add", axis: dim as isize, rank: self.rank() });
        }
        if src.shape() != index.shape() {
            return Err(Error::ShapeMismatch {
                op: "scatter_add",
                lhs: index.shape().to_vec(),
                rhs: src.shape().to_vec(),
            });
        }
        let fits = index.shape().iter().zip(self.shape()).enumerate().all(|(d, (i, s))| d == dim || i <= s);
        if !fits {
            return Err(Error::ShapeMismatch {
                op: "scatter_add",
                lhs: self.shape().to_vec(),
                rhs: index.shape().to_vec(),
            });
        }
        let idx = index_values("scatter_add", index)?;
        let out =
            self.storage().scatter_add(self.layout(), dim, &idx, index.layout(), (&src.storage(), src.layout()))?;
        Ok(Tensor::from_storage(out, Layout::contiguous(self.shape()), None))
    }
}

/// Integer ids from an I32/U32 tensor (floats are refused: ids must be exact).
pub(crate) fn index_values(op: &'static str, ids: &Tensor) -> Result<Vec<i64>> {
    if ids.dtype().is_float() {
        return Err(Error::UnsupportedDType { op, dtype: ids.dtype() });
    }
    let s = ids.storage();
    s.i64_values(ids.layout())
}
