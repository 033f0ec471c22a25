//! The fine-tuning loop: gradient accumulation over micro-batches (token-weighted, so
//! the step's loss is the mean over every scored token), clipping by global norm, AdamW
//! or SGD on a warmup + decay schedule, validation loss and perplexity every N steps,
//! early stopping, a JSONL metrics log, atomic checkpoints and exact resumption.
//!
//! What is trained is behind [`Trainee`] (LoRA adapters, IA³ vectors, a soft prompt or
//! every weight of a model); the data behind [`BatchSource`]. Every random choice is a
//! pure function of the run's seed, the step and the data position, so a resumed run
//! takes the same steps as an uninterrupted one. A run owns its directory (`run_dir.rs`:
//! a fresh run never mixes with an old one); each checkpoint records the run's settings
//! (`settings.rs`), and a resume with other settings is refused (`resume.rs`). The loop's
//! parts are in `train_loop.rs`; [`finetune_in`] runs it as one rank of a data-parallel
//! group (`data_parallel.rs`).

pub mod checkpoint;
mod data_parallel;
mod llama;
pub mod metrics;
mod resume;
pub mod run_dir;
pub mod settings;
mod sft_source;
mod train_loop;

pub use llama::{LlamaBottleneck, LlamaFull, LlamaIa3, LlamaLora, LlamaPTuning, LlamaPrefix, LlamaPrompt};
pub use settings::{file_fingerprint, RunSettings};
pub use sft_source::SftBatches;

use crate::dist::{Collective, SingleProcess};
use crate::optim::{AdamW, AdamWConfig, Optimizer, Sgd};
use crate::schedule::LrSchedule;
use crate::TrainError;
use lamina_tensor::{NoGradGuard, Tensor};
use metrics::MetricsLog;
use resume::LoopState;
use serde_json::Value;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A batch of `batch` rows of `seq` tokens (row major); `labels[i]` is the id to predict
/// at position i or -100 (not scored).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainBatch {
    pub batch: usize,
    pub seq: usize,
    pub tokens: Vec<u32>,
    pub labels: Vec<i32>,
}

impl TrainBatch {
    pub fn scored(&self) -> usize {
        self.labels.iter().filter(|&&l| l != -100).count()
    }

    /// Rows `rows` of the batch (a data-parallel rank's share).
    pub fn rows(&self, rows: Range<usize>) -> TrainBatch {
        let span = rows.start * self.seq..rows.end * self.seq;
        TrainBatch {
            batch: rows.len(),
            seq: self.seq,
            tokens: self.tokens[span.clone()].to_vec(),
            labels: self.labels[span].to_vec(),
        }
    }
}

/// An endless, resumable stream of training batches.
pub trait BatchSource {
    fn next_batch(&mut self) -> TrainBatch;
    /// Where the stream is (enough to continue exactly from here).
    fn position(&self) -> Value;
    fn restore(&mut self, position: &Value) -> Result<(), String>;
    /// Epochs completed, fractional.
    fn epoch(&self) -> f64;
}

/// What a run trains.
pub trait Trainee {
    /// The mean loss over the scored tokens of `b` (backward-ready) and their count;
    /// `step_seed` is `Some` while training (dropout on).
    fn loss(&self, b: &TrainBatch, step_seed: Option<u64>) -> Result<(Tensor, usize), TrainError>;
    /// The trainable tensors, named.
    fn parameters(&self) -> Vec<(String, Tensor)>;
    /// Write the user-facing result (a PEFT adapter, a model file) into `dir`.
    fn export(&self, dir: &Path) -> Result<(), TrainError>;
}

#[derive(Clone, Copy, Debug)]
pub enum OptimizerKind {
    AdamW(AdamWConfig),
    Sgd { momentum: f32, weight_decay: f32 },
}

#[derive(Clone, Debug)]
pub struct FineTuneConfig {
    pub steps: usize,
    pub schedule: LrSchedule,
    pub optimizer: OptimizerKind,
    /// Micro-batches per optimizer step.
    pub accum: usize,
    pub clip: Option<f32>,
    /// Validate every this many steps (0: only at the end).
    pub eval_every: usize,
    /// Stop after this many validations without a new best (None: never).
    pub patience: Option<usize>,
    /// Checkpoint every this many steps (0: only at the end).
    pub save_every: usize,
    pub keep_checkpoints: usize,
    pub seed: u64,
    pub out_dir: PathBuf,
    /// Continue from a checkpoint in `out_dir` (the newest, or `run.resume_from`).
    pub resume: bool,
    /// Draw a live progress bar (otherwise a line every ~10% of the steps).
    pub progress_bar: bool,
    pub run: RunOptions,
}

/// How a run treats its directory and the checkpoint it resumes from.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Resume from this checkpoint (a directory, or a checkpoint's name in `out_dir`)
    /// instead of the newest; implies resuming.
    pub resume_from: Option<PathBuf>,
    /// A fresh run replaces a run already in `out_dir` (its checkpoints, `best/`,
    /// `final/`, `metrics.jsonl`) instead of refusing.
    pub overwrite: bool,
    /// The caller's settings (method, rank, batch, file fingerprints, ...), stored in each
    /// checkpoint with the loop's own and compared on resume.
    pub settings: RunSettings,
    /// Resume even when the settings differ from the checkpoint's (each is warned about).
    pub allow_changed_settings: bool,
}

#[derive(Clone, Debug, Default)]
pub struct FineTuneReport {
    /// Steps completed (counting those before a resume).
    pub steps: usize,
    pub resumed_from: Option<usize>,
    /// Per-step training losses of this process's steps.
    pub losses: Vec<f32>,
    pub val_history: Vec<(usize, f32)>,
    pub best_val: Option<(usize, f32)>,
    pub stopped_early: bool,
    pub tokens_per_s: f64,
    pub seconds: f64,
    pub metrics_path: PathBuf,
}

/// Mean loss over `batches` (token-weighted), without gradients.
pub fn validation_loss(model: &dyn Trainee, batches: &[TrainBatch]) -> Result<f32, TrainError> {
    let (sum, n) = scored_loss_sum(model, batches)?;
    if n == 0 {
        return Err(TrainError::Config("the validation set has no scored tokens".into()));
    }
    Ok((sum / n as f64) as f32)
}

/// The loss summed over every scored token of `batches`, and their count, without
/// gradients.
fn scored_loss_sum(model: &dyn Trainee, batches: &[TrainBatch]) -> Result<(f64, usize), TrainError> {
    let _g = NoGradGuard::new();
    let (mut sum, mut n) = (0f64, 0usize);
    for b in batches {
        let (loss, scored) = model.loss(b, None)?;
        sum += loss.to_scalar_f32()? as f64 * scored as f64;
        n += scored;
    }
    Ok((sum, n))
}

/// Numbers that cannot be right are refused before anything is written.
fn check(cfg: &FineTuneConfig) -> Result<(), TrainError> {
    let bad = |m: String| Err(TrainError::Config(m));
    let s = &cfg.schedule;
    if cfg.steps == 0 || cfg.accum == 0 {
        return bad("steps and gradient accumulation must be at least 1".into());
    }
    // 0 is allowed: the weights stay as they are (a baseline, or a test of the loop).
    if !(s.max_lr.is_finite() && s.max_lr >= 0.0) {
        return bad(format!("the learning rate must be 0 or more, got {}", s.max_lr));
    }
    if !(s.min_lr.is_finite() && (0.0..=s.max_lr).contains(&s.min_lr)) {
        return bad(format!("the final learning rate must be in [0, {}], got {}", s.max_lr, s.min_lr));
    }
    if let Some(c) = cfg.clip.filter(|c| !(c.is_finite() && *c > 0.0)) {
        return bad(format!("the clipping norm must be positive, got {c}"));
    }
    let (weight_decay, momentum) = match cfg.optimizer {
        OptimizerKind::AdamW(c) => (c.weight_decay, 0.0),
        OptimizerKind::Sgd { momentum, weight_decay } => (weight_decay, momentum),
    };
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        return bad(format!("the weight decay must be >= 0, got {weight_decay}"));
    }
    if !(0.0..1.0).contains(&momentum) {
        return bad(format!("the momentum must be in [0, 1), got {momentum}"));
    }
    Ok(())
}

fn new_optimizer(kind: OptimizerKind, params: &[(String, Tensor)]) -> Result<Optimizer, TrainError> {
    Ok(match kind {
        OptimizerKind::AdamW(c) => Optimizer::AdamW(AdamW::new(params.to_vec(), c)?),
        OptimizerKind::Sgd { momentum, weight_decay } => {
            Optimizer::Sgd(Sgd::new(params.to_vec(), momentum, weight_decay)?)
        }
    })
}

/// Train `model` on `train` as `cfg` says: a fresh run in `cfg.out_dir`, or a resumed
/// one. Validation on `val` (none when empty).
pub fn finetune(
    model: &dyn Trainee,
    train: &mut dyn BatchSource,
    val: &[TrainBatch],
    cfg: &FineTuneConfig,
) -> Result<FineTuneReport, TrainError> {
    finetune_in(&SingleProcess, model, train, val, cfg)
}

/// [`finetune`] as one rank of `group`: every rank calls it with the same arguments and
/// trains on its share of each batch (`data_parallel.rs`); rank 0 alone reads and writes
/// `cfg.out_dir` (the checkpoint resumed from, checkpoints, metrics, `best/`, `final/`)
/// and prints progress. The steps are one process's with the same global batch.
pub fn finetune_in(
    group: &dyn Collective,
    model: &dyn Trainee,
    train: &mut dyn BatchSource,
    val: &[TrainBatch],
    cfg: &FineTuneConfig,
) -> Result<FineTuneReport, TrainError> {
    check(cfg)?;
    let params = model.parameters();
    if params.is_empty() {
        return Err(TrainError::Config("nothing to train: the model has no trainable tensors".into()));
    }
    let mut opt = new_optimizer(cfg.optimizer, &params)?;
    let settings = RunSettings::of_run(cfg);
    let mut report = FineTuneReport::default();
    let resuming = cfg.resume || cfg.run.resume_from.is_some();
    let lead = group.rank() == 0;
    let state = if !lead {
        LoopState::default() // rank 0's, below
    } else if resuming {
        let ck = run_dir::pick_checkpoint(&cfg.out_dir, cfg.run.resume_from.as_deref())?;
        resume::check_settings(&ck, &settings, cfg.run.allow_changed_settings)?;
        let state = resume::restore(&ck, &params, &mut opt, train, cfg)?;
        run_dir::set_aside_newer(&cfg.out_dir, ck.step)?;
        state
    } else {
        run_dir::prepare_fresh(&cfg.out_dir, cfg.run.overwrite)?;
        LoopState::default()
    };
    let state = data_parallel::share_start(group, &params, &mut opt, train, state)?;
    report.resumed_from = resuming.then_some(state.step);
    let metrics_path = cfg.out_dir.join(run_dir::METRICS);
    let log = lead
        .then(|| MetricsLog::open(&metrics_path, resuming.then_some(state.step as u64)))
        .transpose()
        .map_err(|e| TrainError::io(&metrics_path, e))?;
    train_loop::Run { group, model, train, val, cfg, params, opt, settings, state, log }.run(report)
}
