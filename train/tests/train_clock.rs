//! The CPU clock of the training loop (`lamina_train::clock`) charges work, not
//! waiting: a learner that sleeps in every step trains for the sleep on the wall clock and
//! for next to nothing on the CPU clock. A binary of its own with one test, so that no
//! other test's threads add CPU time to the process it measures. About 1 s.

use lamina_tensor::Tensor;
use lamina_train::{fit, AdamWConfig, Budget, Clock, CosineSchedule, FitConfig, Learner, Progress, TrainError};
use std::time::{Duration, Instant};

const NAP: Duration = Duration::from_millis(75);
const STEPS: usize = 4;

/// Waits `NAP` (as a step waits for a core on a busy machine), then a tiny loss.
struct Sleeper {
    w: Tensor,
}

impl Learner for Sleeper {
    fn next_loss(&mut self) -> Result<Tensor, TrainError> {
        std::thread::sleep(NAP);
        Ok(self.w.square()?.sum_all()?)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        vec![("w".into(), self.w.clone())]
    }

    fn tokens_per_step(&self) -> usize {
        1
    }
}

fn train_time(clock: Clock) -> Duration {
    let mut learner = Sleeper { w: Tensor::from_vec(vec![0.5f32, -1.0], &[2]).unwrap().requires_grad_() };
    let cfg = FitConfig {
        budget: Budget::Steps(STEPS),
        schedule: CosineSchedule { max_lr: 1e-2, min_lr: 1e-3, warmup: 0, total: STEPS },
        adamw: AdamWConfig::default(),
        grad_clip: Some(1.0),
        clock,
        progress: Progress::Quiet,
    };
    let report = fit(&mut learner, &cfg).unwrap();
    assert_eq!(report.steps(), STEPS);
    assert_eq!(report.times.last().copied(), Some(report.train_time().as_secs_f64()));
    report.train_time()
}

#[test]
fn the_cpu_clock_counts_work_and_not_waiting() {
    let slept = NAP * STEPS as u32;
    let wall = train_time(Clock::Wall);
    assert!(wall >= slept, "the wall clock saw {wall:?} of training that slept {slept:?}");
    // Four tiny AdamW steps cost well under a millisecond; the bound leaves room for a
    // slow machine, and is far below the sleep.
    let cpu = train_time(Clock::ProcessCpu);
    assert!(cpu < slept / 3, "the CPU clock charged {cpu:?} for {slept:?} of sleep");

    // And it does count work: spin until 50 ms of CPU time have gone (giving up after
    // 20 s of wall time, on a machine so loaded that this thread barely runs).
    let (c0, w0) = (Clock::ProcessCpu.now().unwrap(), Instant::now());
    let mut x = 0u64;
    while Clock::ProcessCpu.now().unwrap() - c0 < Duration::from_millis(50) && w0.elapsed() < Duration::from_secs(20) {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    let spun = Clock::ProcessCpu.now().unwrap() - c0;
    assert!(spun >= Duration::from_millis(50), "20 s of spinning came to {spun:?} of CPU time");
}
