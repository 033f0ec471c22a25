//! Learning-rate schedule: linear warmup to `max_lr`, then cosine decay to `min_lr`.

#[derive(Clone, Copy, Debug)]
pub struct CosineSchedule {
    pub max_lr: f32,
    pub min_lr: f32,
    /// Steps of linear warmup from max_lr / warmup to max_lr.
    pub warmup: usize,
    /// Step at which the decay reaches min_lr (and stays there).
    pub total: usize,
}

impl CosineSchedule {
    /// Learning rate for step `step` (0-based), as in nanoGPT's `get_lr`.
    pub fn lr(&self, step: usize) -> f32 {
        if step < self.warmup {
            return self.max_lr * (step + 1) as f32 / self.warmup as f32;
        }
        if step >= self.total || self.total <= self.warmup {
            return self.min_lr;
        }
        let progress = (step - self.warmup) as f32 / (self.total - self.warmup) as f32; // 0..1
        let coeff = 0.5 * (1.0 + (std::f32::consts::PI * progress).cos()); // 1..0
        self.min_lr + coeff * (self.max_lr - self.min_lr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let s = CosineSchedule { max_lr: 1.0, min_lr: 0.1, warmup: 10, total: 110 };
        assert!((s.lr(0) - 0.1).abs() < 1e-6);
        assert!((s.lr(9) - 1.0).abs() < 1e-6);
        assert!((s.lr(10) - 1.0).abs() < 1e-6);
        assert!((s.lr(60) - 0.55).abs() < 1e-5);
        assert!((s.lr(110) - 0.1).abs() < 1e-6);
        assert!((s.lr(1000) - 0.1).abs() < 1e-6);
        let mut prev = f32::INFINITY;
        for i in 10..120 {
            assert!(s.lr(i) <= prev);
            prev = s.lr(i);
        }
    }
}
