//! Finite differences of the f64 reference, and the comparison of an engine gradient with
//! them. The loss is L = sum(out * w) for fixed random weights w, so dL/dx = J^T w: every
//! output element contributes, with a different weight (a plain sum would hide errors
//! that cancel across outputs, e.g. in softmax, whose plain sum is constant).

use crate::problem::Problem;
use crate::tensor::RefTensor;
use lamina_tensor::DType;

/// dL/d xs[which] by central differences with step `h` (absolute, in f64).
pub fn numeric_grad(p: &Problem, xs: &[RefTensor], which: usize, w: &RefTensor, h: f64, dt: DType) -> RefTensor {
    let loss = |xs: &[RefTensor]| -> f64 {
        let out = p.reference_smooth(xs, dt);
        assert_eq!(out.shape, w.shape, "numeric_grad: weights must have the output's shape");
        out.data.iter().zip(&w.data).map(|(a, b)| a * b).sum()
    };
    let mut xs = xs.to_vec();
    let mut g = RefTensor::zeros(&xs[which].shape);
    for i in 0..g.numel() {
        let x0 = xs[which].data[i];
        xs[which].data[i] = x0 + h;
        let up = loss(&xs);
        xs[which].data[i] = x0 - h;
        let down = loss(&xs);
        xs[which].data[i] = x0;
        g.data[i] = (up - down) / (2.0 * h);
    }
    g
}

/// Acceptance for a gradient: |engine - numeric| <= rtol |numeric| + atol_scale max|numeric|
/// + atol, element by element.
#[derive(Clone, Copy, Debug)]
pub struct GradTol {
    pub rtol: f64,
    pub atol_scale: f64,
    pub atol: f64,
}

/// The worst element of a gradient comparison.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradCheck {
    /// max over elements of |e - n| / (allowed error): <= 1 passes.
    pub worst_ratio: f64,
    pub worst_index: usize,
    pub worst_engine: f64,
    pub worst_numeric: f64,
    pub scale: f64,
    pub non_finite: usize,
}

pub fn check_grad(engine: &[f64], numeric: &[f64], tol: GradTol) -> GradCheck {
    assert_eq!(engine.len(), numeric.len(), "check_grad: lengths differ");
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut c = GradCheck { scale, ..Default::default() };
    for (i, (&e, &n)) in engine.iter().zip(numeric).enumerate() {
        if !e.is_finite() || !n.is_finite() {
            c.non_finite += 1;
            continue;
        }
        let allowed = tol.rtol * n.abs() + tol.atol_scale * scale + tol.atol;
        let ratio = (e - n).abs() / allowed;
        if ratio > c.worst_ratio {
            c.worst_ratio = ratio;
            c.worst_index = i;
            c.worst_engine = e;
            c.worst_numeric = n;
        }
    }
    c
}

impl GradCheck {
    pub fn passes(&self) -> bool {
        self.non_finite == 0 && self.worst_ratio <= 1.0
    }
}
