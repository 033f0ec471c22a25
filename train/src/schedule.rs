//! Learning-rate schedules: linear warmup to `max_lr`, then cosine (nanoGPT), linear or
//! no decay to `min_lr`.

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

/// How the rate falls after warmup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decay {
    Cosine,
    Linear,
    Constant,
}

impl Decay {
    pub fn parse(s: &str) -> Option<Decay> {
        match s {
            "cosine" => Some(Decay::Cosine),
            "linear" => Some(Decay::Linear),
            "constant" => Some(Decay::Constant),
            _ => None,
        }
    }
}

/// Warmup then a chosen decay (the schedules of Hugging Face's `get_*_schedule_with_warmup`,
/// with a floor `min_lr`).
#[derive(Clone, Copy, Debug)]
pub struct LrSchedule {
    pub decay: Decay,
    pub max_lr: f32,
    pub min_lr: f32,
    pub warmup: usize,
    pub total: usize,
}

impl LrSchedule {
    pub fn lr(&self, step: usize) -> f32 {
        match self.decay {
            Decay::Cosine => {
                CosineSchedule { max_lr: self.max_lr, min_lr: self.min_lr, warmup: self.warmup, total: self.total }
                    .lr(step)
            }
            _ if step < self.warmup => self.max_lr * (step + 1) as f32 / self.warmup as f32,
            Decay::Constant => self.max_lr,
            Decay::Linear => {
                if step >= self.total || self.total <= self.warmup {
                    return self.min_lr;
                }
                let progress = (step - self.warmup) as f32 / (self.total - self.warmup) as f32;
                self.max_lr + progress * (self.min_lr - self.max_lr)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_and_constant_after_warmup() {
        let s = LrSchedule { decay: Decay::Linear, max_lr: 1.0, min_lr: 0.0, warmup: 2, total: 12 };
        assert!((s.lr(0) - 0.5).abs() < 1e-6);
        assert!((s.lr(2) - 1.0).abs() < 1e-6);
        assert!((s.lr(7) - 0.5).abs() < 1e-6);
        assert_eq!(s.lr(12), 0.0);
        let c = LrSchedule { decay: Decay::Constant, ..s };
        assert_eq!(c.lr(100), 1.0);
        assert!((c.lr(0) - 0.5).abs() < 1e-6);
    }

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
