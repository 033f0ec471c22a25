//! `RefTensor`: the reference's tensor. A shape and row-major f64 data, nothing else —
//! no strides, no dtype, no sharing — so every reference op reads as textbook code.

use lamina_tensor::{DType, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub struct RefTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Multi-index of flat position `i` in `shape` (row-major).
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        if shape[d] > 0 {
            idx[d] = i % shape[d];
            i /= shape[d];
        }
    }
    idx
}

/// Flat position of multi-index `idx` in `shape` (row-major).
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    assert_eq!(idx.len(), shape.len(), "ravel: rank mismatch");
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| {
        assert!(i < d, "ravel: index {idx:?} out of shape {shape:?}");
        acc * d + i
    })
}

/// Numpy broadcasting: align right, a 1 stretches. `None` if the shapes do not broadcast.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let r = a.len().max(b.len());
    let get = |s: &[usize], i: usize| if i < r - s.len() { 1 } else { s[i - (r - s.len())] };
    (0..r)
        .map(|i| match (get(a, i), get(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

impl RefTensor {
    pub fn new(shape: &[usize], data: Vec<f64>) -> RefTensor {
        assert_eq!(shape.iter().product::<usize>(), data.len(), "RefTensor::new: {shape:?} vs {} values", data.len());
        RefTensor { shape: shape.to_vec(), data }
    }

    pub fn zeros(shape: &[usize]) -> RefTensor {
        RefTensor::new(shape, vec![0.0; shape.iter().product()])
    }

    pub fn scalar(v: f64) -> RefTensor {
        RefTensor::new(&[], vec![v])
    }

    /// Element at each multi-index of `shape`, computed by `f`.
    pub fn from_fn(shape: &[usize], mut f: impl FnMut(&[usize]) -> f64) -> RefTensor {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|i| f(&unravel(i, shape))).collect();
        RefTensor::new(shape, data)
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn at(&self, idx: &[usize]) -> f64 {
        self.data[ravel(idx, &self.shape)]
    }

    /// The element that lands at `out_idx` when this tensor is broadcast to a shape of
    /// rank `out_idx.len()` (right-aligned; size-1 dims repeat).
    pub fn at_broadcast(&self, out_idx: &[usize]) -> f64 {
        let lead = out_idx.len() - self.rank();
        let idx: Vec<usize> =
            self.shape.iter().enumerate().map(|(d, &n)| if n == 1 { 0 } else { out_idx[lead + d] }).collect();
        self.at(&idx)
    }

    pub fn map(&self, f: impl Fn(f64) -> f64) -> RefTensor {
        RefTensor::new(&self.shape, self.data.iter().map(|&x| f(x)).collect())
    }

    /// Integer values (ids), which the reference stores as exact f64.
    pub fn ids(&self) -> Vec<i64> {
        self.data.iter().map(|&x| x as i64).collect()
    }

    // ---- conversion to and from the engine -----------------------------------------

    /// Read an engine tensor (any dtype, any layout) as exact f64 values.
    pub fn from_tensor(t: &Tensor) -> lamina_tensor::Result<RefTensor> {
        let data = match t.dtype() {
            DType::F32 | DType::F16 | DType::BF16 => t.to_vec_f64()?,
            DType::I32 => t.to_vec::<i32>()?.into_iter().map(|x| x as f64).collect(),
            DType::U32 => t.to_vec::<u32>()?.into_iter().map(|x| x as f64).collect(),
        };
        Ok(RefTensor::new(t.shape(), data))
    }

    /// A contiguous engine tensor of `dtype` holding these values (floats are rounded to
    /// the dtype by the engine; integers must be exact).
    pub fn to_tensor(&self, dtype: DType) -> lamina_tensor::Result<Tensor> {
        match dtype {
            DType::I32 => Tensor::from_vec(self.data.iter().map(|&x| x as i32).collect::<Vec<_>>(), &self.shape),
            DType::U32 => Tensor::from_vec(self.data.iter().map(|&x| x as u32).collect::<Vec<_>>(), &self.shape),
            _ => {
                Tensor::from_vec(self.data.iter().map(|&x| x as f32).collect::<Vec<_>>(), &self.shape)?.to_dtype(dtype)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_helpers_round_trip() {
        let shape = [3, 1, 4, 2];
        for i in 0..24 {
            assert_eq!(ravel(&unravel(i, &shape), &shape), i);
        }
        assert_eq!(strides(&shape), vec![8, 8, 2, 1]);
        assert_eq!(broadcast_shape(&[5, 1, 13], &[7, 1]), Some(vec![5, 7, 13]));
        assert_eq!(broadcast_shape(&[0, 1], &[1, 7]), Some(vec![0, 7]));
        assert_eq!(broadcast_shape(&[3], &[4]), None);
    }
}
