//! Gradient clipping by global norm. The factor is applied by the optimizer as it reads
//! each gradient (`AdamW::step(lr, factor)`), so gradients are never rewritten in place.

use lamina_tensor::{Result, Tensor};

/// sqrt of the sum of squares of every gradient (parameters without one count as 0).
pub fn grad_norm(params: &[Tensor]) -> Result<f32> {
    let mut sq = 0f64;
    for p in params {
        if let Some(g) = p.grad() {
            sq += g.square()?.sum_all()?.to_scalar_f32()? as f64;
        }
    }
    Ok(sq.sqrt() as f32)
}

/// The factor that scales a gradient of global norm `norm` down to `max_norm`: 1 when
/// it is already within, 0 for a non-finite norm (skip a step rather than poison the
/// weights with NaN).
pub fn clip_factor(norm: f32, max_norm: f32) -> f32 {
    if !norm.is_finite() {
        0.0
    } else if norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norm_and_factor() {
        let a = Tensor::from_vec(vec![1f32, 2.0], &[2]).unwrap().requires_grad_();
        let b = Tensor::from_vec(vec![3f32], &[1]).unwrap().requires_grad_();
        a.sum_all().unwrap().add(&b.scale(2.0).unwrap().sum_all().unwrap()).unwrap().backward().unwrap();
        // grads: a -> [1, 1], b -> [2]: norm sqrt(6)
        let n = grad_norm(&[a, b]).unwrap();
        assert!((n - 6f32.sqrt()).abs() < 1e-6);
        assert_eq!(clip_factor(0.5, 1.0), 1.0);
        assert!((clip_factor(4.0, 1.0) - 0.25).abs() < 1e-6);
        assert_eq!(clip_factor(f32::NAN, 1.0), 0.0);
    }
}
