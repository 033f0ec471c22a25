//! Reductions over axes, and softmax / log-softmax along one dim.

use super::axis;
use crate::tensor::{unravel, RefTensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    Sum,
    Mean,
    /// NaN if any element is NaN.
    Max,
    Min,
}

/// Reduce `axes` (negative from the end; empty = all). An empty set sums to 0 and means
/// to NaN (0/0).
pub fn reduce(x: &RefTensor, op: Reduction, axes: &[isize], keepdim: bool) -> RefTensor {
    let r = x.rank();
    let mut ax: Vec<usize> =
        if axes.is_empty() { (0..r).collect() } else { axes.iter().map(|&a| axis(a, r)).collect() };
    ax.sort_unstable();
    ax.dedup(); // an axis named twice is reduced once
    let keep_shape: Vec<usize> = (0..r).map(|d| if ax.contains(&d) { 1 } else { x.shape[d] }).collect();
    let count: usize = ax.iter().map(|&d| x.shape[d]).product();
    // Bucket every input element into its output position.
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); keep_shape.iter().product()];
    for (i, &v) in x.data.iter().enumerate() {
        let mut idx = unravel(i, &x.shape);
        for &d in &ax {
            idx[d] = 0;
        }
        buckets[crate::tensor::ravel(&idx, &keep_shape)].push(v);
    }
    let fold = |vals: &[f64]| -> f64 {
        if vals.iter().any(|v| v.is_nan()) && op != Reduction::Sum && op != Reduction::Mean {
            return f64::NAN;
        }
        match op {
            Reduction::Sum => vals.iter().sum(),
            Reduction::Mean => vals.iter().sum::<f64>() / count as f64,
            Reduction::Max => vals.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v)),
            Reduction::Min => vals.iter().fold(f64::INFINITY, |m, &v| m.min(v)),
        }
    };
    let data: Vec<f64> = buckets.iter().map(|b| fold(b)).collect();
    let out_shape: Vec<usize> =
        if keepdim { keep_shape } else { (0..r).filter(|d| !ax.contains(d)).map(|d| x.shape[d]).collect() };
    RefTensor::new(&out_shape, data)
}

/// Apply `f` to every 1-D line of `x` along `dim` (the line's values in order).
fn along(x: &RefTensor, dim: usize, f: impl Fn(&[f64]) -> Vec<f64>) -> RefTensor {
    let mut out = x.clone();
    let n = x.shape[dim];
    for (i, _) in x.data.iter().enumerate() {
        let idx = unravel(i, &x.shape);
        if idx[dim] != 0 {
            continue; // visit each line once, from its first element
        }
        let pos = |k: usize| {
            let mut j = idx.clone();
            j[dim] = k;
            crate::tensor::ravel(&j, &x.shape)
        };
        let line: Vec<f64> = (0..n).map(|k| x.data[pos(k)]).collect();
        for (k, v) in f(&line).into_iter().enumerate() {
            out.data[pos(k)] = v;
        }
    }
    out
}

/// exp(x - max) / sum exp(x - max); a 0-d tensor is a line of one.
pub fn softmax(x: &RefTensor, dim: isize) -> RefTensor {
    if x.rank() == 0 {
        return softmax(&RefTensor::new(&[1], x.data.clone()), 0).reshaped(&[]);
    }
    along(x, axis(dim, x.rank()), |line| {
        let m = line.iter().fold(f64::NEG_INFINITY, |m, &v| if v.is_nan() || m.is_nan() { f64::NAN } else { m.max(v) });
        let e: Vec<f64> = line.iter().map(|&v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|&v| v / s).collect()
    })
}

/// x - max - ln(sum exp(x - max)).
pub fn log_softmax(x: &RefTensor, dim: isize) -> RefTensor {
    if x.rank() == 0 {
        return log_softmax(&RefTensor::new(&[1], x.data.clone()), 0).reshaped(&[]);
    }
    along(x, axis(dim, x.rank()), |line| {
        let m = line.iter().fold(f64::NEG_INFINITY, |m, &v| if v.is_nan() || m.is_nan() { f64::NAN } else { m.max(v) });
        let ls = line.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
        line.iter().map(|&v| v - m - ls).collect()
    })
}

impl RefTensor {
    /// Same data, another shape of the same size.
    pub fn reshaped(&self, shape: &[usize]) -> RefTensor {
        RefTensor::new(shape, self.data.clone())
    }
}
