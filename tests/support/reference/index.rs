//! Index ops (select, gather and their scatter-add adjoints) and layout ops (views and
//! copies), by explicit multi-index arithmetic.

use crate::tensor::{ravel, unravel, RefTensor};

/// Rows of a (V, D) table for ids of any shape: (ids..., D).
pub fn embedding(table: &RefTensor, ids: &RefTensor) -> RefTensor {
    let d = table.shape[1];
    let mut shape = ids.shape.clone();
    shape.push(d);
    RefTensor::from_fn(&shape, |i| {
        let id = ids.at(&i[..i.len() - 1]) as usize;
        table.at(&[id, i[i.len() - 1]])
    })
}

/// out[.., j, ..] = x[.., ids[j], ..] along `dim`.
pub fn index_select(x: &RefTensor, dim: usize, ids: &[i64]) -> RefTensor {
    let mut shape = x.shape.clone();
    shape[dim] = ids.len();
    RefTensor::from_fn(&shape, |i| {
        let mut j = i.to_vec();
        j[dim] = ids[i[dim]] as usize;
        x.at(&j)
    })
}

/// out[p] = x[p with p[dim] = index[p]]; out has index's shape.
pub fn gather(x: &RefTensor, dim: usize, index: &RefTensor) -> RefTensor {
    RefTensor::from_fn(&index.shape, |i| {
        let mut j = i.to_vec();
        j[dim] = index.at(i) as usize;
        x.at(&j)
    })
}

/// A copy of x with src[.., j, ..] added at x[.., ids[j], ..] (repeats accumulate).
pub fn index_add(x: &RefTensor, dim: usize, ids: &[i64], src: &RefTensor) -> RefTensor {
    let mut out = x.clone();
    for (k, &v) in src.data.iter().enumerate() {
        let mut j = unravel(k, &src.shape);
        j[dim] = ids[j[dim]] as usize;
        out.data[ravel(&j, &x.shape)] += v;
    }
    out
}

/// A copy of x with src[p] added at x[p with p[dim] = index[p]]; src has index's shape.
pub fn scatter_add(x: &RefTensor, dim: usize, index: &RefTensor, src: &RefTensor) -> RefTensor {
    let mut out = x.clone();
    for (k, &v) in src.data.iter().enumerate() {
        let mut j = unravel(k, &src.shape);
        j[dim] = index.data[k] as usize;
        out.data[ravel(&j, &x.shape)] += v;
    }
    out
}

pub fn reshape(x: &RefTensor, shape: &[usize]) -> RefTensor {
    x.reshaped(shape)
}

/// Output dim i is input dim dims[i].
pub fn permute(x: &RefTensor, dims: &[usize]) -> RefTensor {
    let shape: Vec<usize> = dims.iter().map(|&d| x.shape[d]).collect();
    RefTensor::from_fn(&shape, |i| {
        let mut j = vec![0; dims.len()];
        for (o, &d) in dims.iter().enumerate() {
            j[d] = i[o];
        }
        x.at(&j)
    })
}

/// Elements start..start+len of `dim`.
pub fn narrow(x: &RefTensor, dim: usize, start: usize, len: usize) -> RefTensor {
    let mut shape = x.shape.clone();
    shape[dim] = len;
    RefTensor::from_fn(&shape, |i| {
        let mut j = i.to_vec();
        j[dim] += start;
        x.at(&j)
    })
}

pub fn broadcast_to(x: &RefTensor, shape: &[usize]) -> RefTensor {
    RefTensor::from_fn(shape, |i| x.at_broadcast(i))
}

/// The same values (row-major is the reference's only layout).
pub fn contiguous(x: &RefTensor) -> RefTensor {
    x.clone()
}

/// Join along `dim`.
pub fn concat(xs: &[&RefTensor], dim: usize) -> RefTensor {
    let mut shape = xs[0].shape.clone();
    shape[dim] = xs.iter().map(|x| x.shape[dim]).sum();
    RefTensor::from_fn(&shape, |i| {
        let mut j = i.to_vec();
        for x in xs {
            if j[dim] < x.shape[dim] {
                return x.at(&j);
            }
            j[dim] -= x.shape[dim];
        }
        unreachable!("concat: index past the last part")
    })
}
