//! The fine-tuning loop: gradient accumulation over micro-batches (token-weighted, so
//! the step's loss is the mean over every scored token), clipping by global norm, AdamW
//! or SGD on a warmup + decay schedule, validation loss and perplexity every N steps,
//! early stopping, a JSONL metrics log, atomic checkpoints and exact resumption.
//!
//! What is trained is behind [`Trainee`] (LoRA adapters, IA³ vectors, a soft prompt or
//! every weight of a model); the data behind [`BatchSource`]. Every random choice is a pure function of
//! the run's seed, the step and the data position, so a resumed run takes the same steps
//! as an uninterrupted one.

pub mod checkpoint;
mod llama;
pub mod metrics;
mod sft_source;

pub use llama::{LlamaFull, LlamaIa3, LlamaLora, LlamaPTuning, LlamaPrefix, LlamaPrompt};
pub use sft_source::SftBatches;

use crate::optim::{AdamW, AdamWConfig, Optimizer, Sgd};
use crate::schedule::LrSchedule;
use crate::{clip_factor, grad_norm, TrainError};
use indicatif::{ProgressBar, ProgressStyle};
use lamina_tensor::{NoGradGuard, Tensor};
use metrics::MetricsLog;
use serde_json::{json, Value};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

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
    pub resume: bool,
    /// Draw a live progress bar (otherwise a line every ~10% of the steps).
    pub progress_bar: bool,
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

fn io(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("{}: {e}", path.display()))
}

/// Mean loss over `batches` (token-weighted), without gradients.
pub fn validation_loss(model: &dyn Trainee, batches: &[TrainBatch]) -> Result<f32, TrainError> {
    let _g = NoGradGuard::new();
    let (mut sum, mut n) = (0f64, 0usize);
    for b in batches {
        let (loss, scored) = model.loss(b, None)?;
        sum += loss.to_scalar_f32()? as f64 * scored as f64;
        n += scored;
    }
    if n == 0 {
        return Err(TrainError::Config("the validation set has no scored tokens".into()));
    }
    Ok((sum / n as f64) as f32)
}

/// The dropout seed of one micro-batch: a pure function of the run seed and its place.
fn step_seed(seed: u64, step: usize, micro: usize) -> u64 {
    crate::data::Rng::new(seed ^ crate::data::Rng::new(((step as u64) << 16) | micro as u64).next_u64()).next_u64()
}

pub fn finetune(
    model: &dyn Trainee,
    train: &mut dyn BatchSource,
    val: &[TrainBatch],
    cfg: &FineTuneConfig,
) -> Result<FineTuneReport, TrainError> {
    if cfg.steps == 0 || cfg.accum == 0 {
        return Err(TrainError::Config("steps and gradient accumulation must be at least 1".into()));
    }
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| io(&cfg.out_dir, e))?;
    let params = model.parameters();
    if params.is_empty() {
        return Err(TrainError::Config("nothing to train: the model has no trainable tensors".into()));
    }
    let mut opt = match cfg.optimizer {
        OptimizerKind::AdamW(c) => Optimizer::AdamW(AdamW::new(params.clone(), c)?),
        OptimizerKind::Sgd { momentum, weight_decay } => {
            Optimizer::Sgd(Sgd::new(params.clone(), momentum, weight_decay)?)
        }
    };
    let mut start = 0usize;
    let mut best: Option<(usize, f32)> = None;
    let mut since_best = 0usize;
    let mut report = FineTuneReport::default();
    if cfg.resume {
        let Some((step, dir)) = checkpoint::list(&cfg.out_dir).pop() else {
            return Err(TrainError::Config(format!("--resume: no checkpoint in {}", cfg.out_dir.display())));
        };
        let ck = checkpoint::load(&dir).map_err(TrainError::Config)?;
        for (name, p) in &params {
            let saved = ck.params.get(name).ok_or_else(|| {
                TrainError::Config(format!(
                    "{}: tensor `{name}` is missing: a checkpoint of another run?",
                    dir.display()
                ))
            })?;
            p.assign(&saved.to_device(p.device())?)?;
        }
        let on_device = ck
            .optimizer
            .iter()
            .map(|(n, t)| Ok((n.clone(), t.to_device(params[0].1.device())?)))
            .collect::<Result<_, TrainError>>()?;
        opt.load_state(&on_device, step)?;
        train.restore(&ck.state["data_position"]).map_err(|e| TrainError::Config(format!("{}: {e}", dir.display())))?;
        best = ck.state["best_val"]
            .as_array()
            .and_then(|a| Some((a.first()?.as_u64()? as usize, a.get(1)?.as_f64()? as f32)));
        since_best = ck.state["since_best"].as_u64().unwrap_or(0) as usize;
        start = step as usize;
        report.resumed_from = Some(start);
        if start >= cfg.steps {
            return Err(TrainError::Config(format!(
                "--resume: the checkpoint is at step {start}, the run has {}",
                cfg.steps
            )));
        }
    }
    let metrics_path = cfg.out_dir.join("metrics.jsonl");
    let mut log =
        MetricsLog::open(&metrics_path, cfg.resume.then_some(start as u64)).map_err(|e| io(&metrics_path, e))?;
    let leaves: Vec<Tensor> = params.iter().map(|(_, t)| t.clone()).collect();

    let bar = if cfg.progress_bar && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(cfg.steps as u64);
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]")
                .expect("static template"),
        );
        b.set_position(start as u64);
        b
    } else {
        ProgressBar::hidden()
    };
    let started = Instant::now();
    let mut tokens_seen = 0usize;
    let save =
        |step: usize, opt: &Optimizer, best: Option<(usize, f32)>, since_best: usize, train: &dyn BatchSource| {
            let state = json!({
                "step": step,
                "data_position": train.position(),
                "best_val": best.map(|(s, l)| json!([s, l])),
                "since_best": since_best,
                "seed": cfg.seed,
            });
            checkpoint::save(&cfg.out_dir, step as u64, &params, &opt.state(), &state, cfg.keep_checkpoints)
                .map_err(TrainError::Config)
        };
    for step in start..cfg.steps {
        let t0 = Instant::now();
        let micro: Vec<TrainBatch> = (0..cfg.accum).map(|_| train.next_batch()).collect();
        let total: usize = micro.iter().map(TrainBatch::scored).sum();
        if total == 0 {
            return Err(TrainError::Config(format!("step {step}: the batches have no scored tokens")));
        }
        let mut loss_sum = 0f64;
        for (i, b) in micro.iter().enumerate() {
            let (loss, scored) = model.loss(b, Some(step_seed(cfg.seed, step, i)))?;
            let value = loss.to_scalar_f32()?;
            if !value.is_finite() {
                return Err(TrainError::Diverged { step, loss: value });
            }
            loss_sum += value as f64 * scored as f64;
            // Token-weighted: the step's gradient is that of the mean over all its tokens.
            loss.scale(scored as f32 / total as f32)?.backward()?;
            tokens_seen += b.tokens.len();
        }
        let loss = (loss_sum / total as f64) as f32;
        let norm = grad_norm(&leaves)?;
        let factor = cfg.clip.map_or(if norm.is_finite() { 1.0 } else { 0.0 }, |c| clip_factor(norm, c));
        let lr = cfg.schedule.lr(step);
        opt.step(lr, factor)?;
        opt.zero_grad();
        let done = step + 1;
        report.losses.push(loss);
        let tps = micro.iter().map(|b| b.tokens.len()).sum::<usize>() as f64 / t0.elapsed().as_secs_f64();
        log.write(&json!({
            "step": done, "epoch": train.epoch(), "loss": loss, "lr": lr,
            "tokens_per_s": tps, "grad_norm": norm,
        }))
        .map_err(|e| io(&metrics_path, e))?;
        bar.set_position(done as u64);
        bar.set_message(format!("loss {loss:.4}  lr {lr:.2e}  {tps:.0} tok/s"));
        if bar.is_hidden() && (done == cfg.steps || done % (cfg.steps / 10).max(1) == 0) {
            eprintln!("step {done}/{}  loss {loss:.4}  lr {lr:.2e}  {tps:.0} tok/s", cfg.steps);
        }

        let evaluate = !val.is_empty() && ((cfg.eval_every > 0 && done % cfg.eval_every == 0) || done == cfg.steps);
        let mut stop = false;
        if evaluate {
            let v = validation_loss(model, val)?;
            report.val_history.push((done, v));
            log.write(&json!({"step": done, "val_loss": v, "val_ppl": (v as f64).exp()}))
                .map_err(|e| io(&metrics_path, e))?;
            bar.println(format!("step {done}: validation loss {v:.4}, perplexity {:.3}", (v as f64).exp()));
            if bar.is_hidden() {
                eprintln!("step {done}: validation loss {v:.4}, perplexity {:.3}", (v as f64).exp());
            }
            if best.is_none_or(|(_, b)| v < b) {
                best = Some((done, v));
                since_best = 0;
                model.export(&cfg.out_dir.join("best"))?;
            } else {
                since_best += 1;
                stop = cfg.patience.is_some_and(|p| since_best >= p);
            }
        }
        if (cfg.save_every > 0 && done % cfg.save_every == 0) || done == cfg.steps || stop {
            save(done, &opt, best, since_best, train)?;
        }
        report.steps = done;
        if stop {
            report.stopped_early = true;
            bar.println(format!("early stop at step {done}: no better validation loss in {since_best} evaluations"));
            break;
        }
    }
    bar.finish_and_clear();
    model.export(&cfg.out_dir.join("final"))?;
    report.best_val = best;
    report.seconds = started.elapsed().as_secs_f64();
    report.tokens_per_s = tokens_seen as f64 / report.seconds.max(1e-9);
    report.metrics_path = log.path().to_path_buf();
    Ok(report)
}
