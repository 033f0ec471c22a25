//! The loop itself, one concern per method: a step (micro-batches accumulated
//! token-weighted, clipping, the update, the metrics line), validation (with early
//! stopping and `best/`), checkpoints, and the final export and report. Across the ranks
//! of a data-parallel group, a step trains on this rank's rows and sums the gradients of
//! all (`data_parallel.rs`); what is written or printed is rank 0's to write or print.

use super::metrics::MetricsLog;
use super::resume::LoopState;
use super::run_dir::{BEST, FINAL};
use super::settings::RunSettings;
use super::{checkpoint, data_parallel, BatchSource, FineTuneConfig, FineTuneReport, TrainBatch, Trainee};
use crate::dist::{self, Collective, GradSync};
use crate::optim::Optimizer;
use crate::{clip_factor, grad_norm, TrainError};
use indicatif::{ProgressBar, ProgressStyle};
use lamina_tensor::Tensor;
use serde_json::json;
use std::io::IsTerminal;
use std::time::Instant;

/// A live bar on a terminal; otherwise lines on stderr; nothing on a rank other than 0.
struct Progress {
    bar: ProgressBar,
    quiet: bool,
}

impl Progress {
    fn new(cfg: &FineTuneConfig, start: usize, quiet: bool) -> Progress {
        if quiet || !(cfg.progress_bar && std::io::stderr().is_terminal()) {
            return Progress { bar: ProgressBar::hidden(), quiet };
        }
        let bar = ProgressBar::new(cfg.steps as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]")
                .expect("static template"),
        );
        bar.set_position(start as u64);
        Progress { bar, quiet }
    }

    /// A line that stays (above the bar, or on stderr).
    fn say(&self, line: String) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    fn step(&self, done: usize, total: usize, status: String) {
        self.bar.set_position(done as u64);
        if self.bar.is_hidden() && !self.quiet && (done == total || done.is_multiple_of((total / 10).max(1))) {
            eprintln!("step {done}/{total}  {status}");
        }
        self.bar.set_message(status);
    }
}

/// The dropout seed of one micro-batch: a pure function of the run seed and its place.
fn step_seed(seed: u64, step: usize, micro: usize) -> u64 {
    crate::data::Rng::new(seed ^ crate::data::Rng::new(((step as u64) << 16) | micro as u64).next_u64()).next_u64()
}

pub(super) struct Run<'a> {
    pub group: &'a dyn Collective,
    pub model: &'a dyn Trainee,
    pub train: &'a mut dyn BatchSource,
    pub val: &'a [TrainBatch],
    pub cfg: &'a FineTuneConfig,
    pub params: Vec<(String, Tensor)>,
    pub opt: Optimizer,
    pub settings: RunSettings,
    pub state: LoopState,
    /// Rank 0's; `None` on the others.
    pub log: Option<MetricsLog>,
}

impl Run<'_> {
    pub fn run(mut self, mut report: FineTuneReport) -> Result<FineTuneReport, TrainError> {
        let progress = Progress::new(self.cfg, self.state.step, !self.lead());
        let leaves: Vec<Tensor> = self.params.iter().map(|(_, t)| t.clone()).collect();
        // The gradients and the step's loss sum, summed across the ranks.
        let sync = GradSync::new(self.group, leaves.clone(), 1)?;
        let started = Instant::now();
        let mut tokens_seen = 0usize;
        for step in self.state.step..self.cfg.steps {
            let (loss, tokens) = self.step(step, &leaves, &sync, &progress)?;
            report.losses.push(loss);
            tokens_seen += tokens;
            let done = step + 1;
            let mut stop = false;
            if !self.val.is_empty()
                && (done == self.cfg.steps || (self.cfg.eval_every > 0 && done % self.cfg.eval_every == 0))
            {
                let v = self.validate(done, &progress)?;
                report.val_history.push((done, v));
                stop = self.cfg.patience.is_some_and(|p| self.state.since_best >= p);
            }
            self.state.step = done;
            report.steps = done;
            if stop || done == self.cfg.steps || (self.cfg.save_every > 0 && done % self.cfg.save_every == 0) {
                self.checkpoint()?;
            }
            if stop {
                report.stopped_early = true;
                progress.say(format!(
                    "early stop at step {done}: no better validation loss in {} evaluations",
                    self.state.since_best
                ));
                break;
            }
        }
        progress.bar.finish_and_clear();
        if self.lead() {
            self.model.export(&self.cfg.out_dir.join(FINAL))?;
        }
        report.best_val = self.state.best;
        report.seconds = started.elapsed().as_secs_f64();
        report.tokens_per_s = tokens_seen as f64 / report.seconds.max(1e-9);
        report.metrics_path = self.cfg.out_dir.join(super::run_dir::METRICS);
        Ok(report)
    }

    /// One optimizer step (0-based `step`): its mean loss over every scored token, and the
    /// tokens it read.
    fn step(
        &mut self,
        step: usize,
        leaves: &[Tensor],
        sync: &GradSync,
        progress: &Progress,
    ) -> Result<(f32, usize), TrainError> {
        let t0 = Instant::now();
        let micro: Vec<TrainBatch> = (0..self.cfg.accum).map(|_| self.train.next_batch()).collect();
        let total: usize = micro.iter().map(TrainBatch::scored).sum();
        if total == 0 {
            return Err(TrainError::Config(format!("step {step}: the batches have no scored tokens")));
        }
        let mut loss_sum = 0f64;
        for (i, b) in micro.iter().enumerate() {
            // This rank's rows (all of them in one process).
            let Some((mine, seed)) = data_parallel::shard(self.group, b, step_seed(self.cfg.seed, step, i)) else {
                continue;
            };
            let (loss, scored) = self.model.loss(&mine, Some(seed))?;
            let value = loss.to_scalar_f32()?;
            if !value.is_finite() {
                return Err(TrainError::Diverged { step, loss: value });
            }
            loss_sum += value as f64 * scored as f64;
            // Token-weighted: the step's gradient is that of the mean over all its tokens.
            loss.scale(scored as f32 / total as f32)?.backward()?;
        }
        if self.group.size() > 1 {
            // One bucketed all-reduce: every rank's gradients and loss sum.
            let mut sums = [loss_sum as f32];
            sync.sum(&mut sums)?;
            loss_sum = sums[0] as f64;
        }
        let loss = (loss_sum / total as f64) as f32;
        let norm = grad_norm(leaves)?;
        let factor = self.cfg.clip.map_or(if norm.is_finite() { 1.0 } else { 0.0 }, |c| clip_factor(norm, c));
        let lr = self.cfg.schedule.lr(step);
        self.opt.step(lr, factor)?;
        self.opt.zero_grad();
        let tokens: usize = micro.iter().map(|b| b.tokens.len()).sum();
        let tps = tokens as f64 / t0.elapsed().as_secs_f64();
        self.record(&json!({
            "step": step + 1, "epoch": self.train.epoch(), "loss": loss, "lr": lr,
            "tokens_per_s": tps, "grad_norm": norm,
        }))?;
        progress.step(step + 1, self.cfg.steps, format!("loss {loss:.4}  lr {lr:.2e}  {tps:.0} tok/s"));
        Ok((loss, tokens))
    }

    /// Validation after step `done`: log it, keep `best/`, count evaluations without a
    /// new best.
    fn validate(&mut self, done: usize, progress: &Progress) -> Result<f32, TrainError> {
        let v = data_parallel::validation_loss(self.group, self.model, self.val)?;
        if !v.is_finite() {
            return Err(TrainError::Diverged { step: done - 1, loss: v });
        }
        let ppl = (v as f64).exp();
        self.record(&json!({"step": done, "val_loss": v, "val_ppl": ppl}))?;
        progress.say(format!("step {done}: validation loss {v:.4}, perplexity {ppl:.3}"));
        if self.state.best.is_none_or(|(_, b)| v < b) {
            self.state.best = Some((done, v));
            self.state.since_best = 0;
            if self.lead() {
                self.model.export(&self.cfg.out_dir.join(BEST))?;
            }
        } else {
            self.state.since_best += 1;
        }
        Ok(v)
    }

    /// Rank 0 writes the checkpoint, once every rank has checked that its tensors are
    /// still rank 0's.
    fn checkpoint(&self) -> Result<(), TrainError> {
        let leaves: Vec<Tensor> = self.params.iter().map(|(_, t)| t.clone()).collect();
        dist::same_on_every_rank(self.group, "trained tensors", &leaves, self.state.step)?;
        if !self.lead() {
            return Ok(());
        }
        let mut state = self.state.to_json(self.train.position());
        state["settings"] = self.settings.to_json();
        let step = self.state.step as u64;
        checkpoint::save(&self.cfg.out_dir, step, &self.params, &self.opt.state(), &state, self.cfg.keep_checkpoints)?;
        Ok(())
    }

    /// A metrics line (rank 0's log; the others keep none).
    fn record(&mut self, record: &serde_json::Value) -> Result<(), TrainError> {
        match &mut self.log {
            Some(log) => log.write(record).map_err(|e| TrainError::io(log.path(), e)),
            None => Ok(()),
        }
    }

    fn lead(&self) -> bool {
        self.group.rank() == 0
    }
}
