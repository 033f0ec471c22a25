//! The training loop of train-demo's from-scratch models: each step takes the learner's
//! loss on its next batch, runs backward, clips the gradient by global norm and applies
//! AdamW at the learning rate of a warmup + cosine schedule, until a budget of steps or
//! of training time is spent.
//!
//! Several learners can share one run, interleaved: the one that has trained for the
//! least time so far takes the next step. Under a time budget that gives each the same
//! training time under the same (shared, varying) machine load, which is what an
//! equal-time comparison needs. Training time is read on `FitConfig::clock`: the wall
//! clock, or the process's CPU time, which does not charge a model for the time the
//! machine's other work kept it off a core (`crate::clock`).

use crate::clock::Clock;
use crate::progress::{Progress, Reporter};
use crate::{clip_factor, grad_norm, AdamW, AdamWConfig, CosineSchedule, TrainError};
use lamina_tensor::Tensor;
use std::time::Duration;

/// A model with its training data, as the loop sees it.
pub trait Learner {
    /// Loss of the next training batch, with its graph recorded (nats per scored token).
    fn next_loss(&mut self) -> Result<Tensor, TrainError>;
    /// The tensors the optimizer updates, named (the name picks AdamW's decay group,
    /// see [`crate::decays`]).
    fn parameters(&self) -> Vec<(String, Tensor)>;
    /// Tokens one step reads (for tokens/s).
    fn tokens_per_step(&self) -> usize;
}

/// When a learner stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Budget {
    Steps(usize),
    /// Training time on `FitConfig::clock` (every phase of a step; evaluation is not
    /// training).
    Time(Duration),
}

#[derive(Clone, Debug)]
pub struct FitConfig {
    pub budget: Budget,
    /// Read at the step under a step budget; under a time budget at
    /// `elapsed / budget * schedule.total`, so its steps are fractions of the budget.
    pub schedule: CosineSchedule,
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this (None: no clipping).
    pub grad_clip: Option<f32>,
    /// What the budget, the phase times and the loss curve's times count.
    pub clock: Clock,
    pub progress: Progress,
}

/// Where the training time went (summed over steps).
#[derive(Clone, Copy, Debug, Default)]
pub struct PhaseTimes {
    /// Batch, forward pass and loss.
    pub forward: Duration,
    pub backward: Duration,
    /// Gradient norm, clipping and the AdamW update.
    pub optimizer: Duration,
}

impl PhaseTimes {
    pub fn total(&self) -> Duration {
        self.forward + self.backward + self.optimizer
    }
}

/// One learner's run.
#[derive(Clone, Debug, Default)]
pub struct FitReport {
    /// Training loss of every step's batch.
    pub losses: Vec<f32>,
    /// Training time (s, on the config's clock) when each step ended: `losses` against
    /// time.
    pub times: Vec<f64>,
    pub phases: PhaseTimes,
    pub tokens_per_sec: f64,
}

impl FitReport {
    pub fn steps(&self) -> usize {
        self.losses.len()
    }

    pub fn train_time(&self) -> Duration {
        self.phases.total()
    }
}

/// Train one learner.
pub fn fit(learner: &mut dyn Learner, cfg: &FitConfig) -> Result<FitReport, TrainError> {
    let mut reports = fit_interleaved(&mut [learner], &[""], cfg)?;
    Ok(reports.remove(0))
}

/// Train several learners, interleaved (the one with the least training time so far
/// steps next), each to the whole budget. `names` label them in the progress lines.
pub fn fit_interleaved(
    learners: &mut [&mut dyn Learner],
    names: &[&str],
    cfg: &FitConfig,
) -> Result<Vec<FitReport>, TrainError> {
    check(cfg)?;
    let mut runs = learners
        .iter_mut()
        .map(|l| {
            let opt = AdamW::new(l.parameters(), cfg.adamw)?;
            Ok(Run {
                learner: &mut **l,
                params: opt.params(),
                opt,
                report: FitReport::default(),
                elapsed: Duration::ZERO,
            })
        })
        .collect::<Result<Vec<_>, TrainError>>()?;
    let total = match cfg.budget {
        Budget::Steps(n) => n as u64,
        Budget::Time(d) => d.as_millis() as u64,
    } * runs.len() as u64;
    let mut reporter = Reporter::new(cfg.progress, total);
    loop {
        let next = runs.iter().enumerate().filter(|(_, r)| !r.done(cfg.budget)).min_by_key(|(_, r)| r.elapsed);
        let Some((i, _)) = next else { break };
        let lr = match runs[i].step(cfg) {
            Ok(lr) => lr,
            Err(e) => {
                reporter.finish();
                return Err(e);
            }
        };
        let done: u64 = runs.iter().map(|r| r.progress(cfg.budget)).sum();
        let (bar, line) = progress_text(&runs, names, cfg.budget, lr);
        reporter.update(done, || bar, || line);
    }
    reporter.finish();
    Ok(runs
        .into_iter()
        .map(|r| {
            let mut report = r.report;
            let secs = r.elapsed.as_secs_f64().max(1e-9);
            report.tokens_per_sec = (r.learner.tokens_per_step() * report.losses.len()) as f64 / secs;
            report
        })
        .collect())
}

fn check(cfg: &FitConfig) -> Result<(), TrainError> {
    cfg.clock.check().map_err(TrainError::Config)?;
    let s = &cfg.schedule;
    if !(s.max_lr > 0.0 && s.max_lr.is_finite() && s.min_lr >= 0.0 && s.min_lr <= s.max_lr) {
        return Err(TrainError::Config(format!("need 0 <= min_lr <= max_lr, got {} and {}", s.min_lr, s.max_lr)));
    }
    match cfg.budget {
        Budget::Steps(0) => Err(TrainError::Config("steps must be at least 1".into())),
        Budget::Time(d) if d.is_zero() => Err(TrainError::Config("the time budget must be positive".into())),
        _ => Ok(()),
    }
}

struct Run<'a> {
    learner: &'a mut dyn Learner,
    params: Vec<Tensor>,
    opt: AdamW,
    report: FitReport,
    elapsed: Duration,
}

impl Run<'_> {
    fn done(&self, budget: Budget) -> bool {
        match budget {
            Budget::Steps(n) => self.report.losses.len() >= n,
            Budget::Time(d) => self.elapsed >= d,
        }
    }

    /// Units of the reporter's total done: steps, or milliseconds of the time budget.
    fn progress(&self, budget: Budget) -> u64 {
        match budget {
            Budget::Steps(_) => self.report.losses.len() as u64,
            Budget::Time(d) => self.elapsed.min(d).as_millis() as u64,
        }
    }

    /// One optimisation step; returns the learning rate it used.
    fn step(&mut self, cfg: &FitConfig) -> Result<f32, TrainError> {
        let step = self.report.losses.len();
        let at = match cfg.budget {
            Budget::Steps(_) => step,
            Budget::Time(d) => (self.elapsed.as_secs_f64() / d.as_secs_f64() * cfg.schedule.total as f64) as usize,
        };
        let lr = cfg.schedule.lr(at);
        // `check` made sure the clock reads.
        let now = || cfg.clock.now().unwrap_or_default();
        let t0 = now();
        let loss = self.learner.next_loss()?;
        let l = loss.to_scalar_f32()?;
        if !l.is_finite() {
            return Err(TrainError::Diverged { step, loss: l });
        }
        let t1 = now();
        loss.backward()?;
        let t2 = now();
        let factor = match cfg.grad_clip {
            Some(max) => clip_factor(grad_norm(&self.params)?, max),
            None => 1.0,
        };
        self.opt.step(lr, factor)?;
        let t3 = now();
        let phases = &mut self.report.phases;
        phases.forward += t1 - t0;
        phases.backward += t2 - t1;
        phases.optimizer += t3 - t2;
        self.elapsed += t3 - t0;
        self.report.losses.push(l);
        self.report.times.push(self.elapsed.as_secs_f64());
        Ok(lr)
    }
}

/// The bar's message and the progress line: loss, learning rate and tokens/s for one
/// learner; each learner's step and loss for several.
fn progress_text(runs: &[Run], names: &[&str], budget: Budget, lr: f32) -> (String, String) {
    if let [run] = runs {
        let (step, loss) = (run.report.losses.len(), run.report.losses.last().copied().unwrap_or(f32::NAN));
        let tok_s = (run.learner.tokens_per_step() * step) as f64 / run.elapsed.as_secs_f64().max(1e-9);
        let of = match budget {
            Budget::Steps(n) => format!("step {step:>5}/{n}"),
            Budget::Time(d) => format!("{:>6.1}/{:.0} s, step {step:>5}", run.elapsed.as_secs_f64(), d.as_secs_f64()),
        };
        return (
            format!("loss {loss:.3}  lr {lr:.1e}  {tok_s:.0} tok/s"),
            format!("{of}  loss {loss:.4}  lr {lr:.2e}  {tok_s:.0} tok/s"),
        );
    }
    let each: Vec<String> = runs
        .iter()
        .zip(names)
        .map(|(r, name)| {
            let loss = r.report.losses.last().copied().unwrap_or(f32::NAN);
            format!("{name} {loss:.3} ({} steps, {:.0} s)", r.report.losses.len(), r.elapsed.as_secs_f64())
        })
        .collect();
    (each.join("  "), format!("  {}", each.join("  ")))
}
