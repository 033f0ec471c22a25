//! Resuming: the checkpoint's settings checked against the run's, then its tensors,
//! optimizer moments and data position put back, so the run continues with exactly the
//! steps an uninterrupted one takes.

use super::checkpoint::Loaded;
use super::settings::{RunSettings, MAY_CHANGE};
use super::{BatchSource, FineTuneConfig};
use crate::optim::Optimizer;
use crate::TrainError;
use lamina_tensor::Tensor;
use serde_json::{json, Value};

/// Where the loop stands after a resume (or at the start of a fresh run).
#[derive(Clone, Debug, Default)]
pub struct LoopState {
    /// Steps already taken.
    pub step: usize,
    pub best: Option<(usize, f32)>,
    /// Validations since the best one.
    pub since_best: usize,
}

impl LoopState {
    /// The loop's part of a checkpoint's state, with the data stream's `position`.
    pub fn to_json(&self, position: Value) -> Value {
        json!({
            "step": self.step,
            "data_position": position,
            "best_val": self.best.map(|(s, l)| json!([s, l])),
            "since_best": self.since_best,
        })
    }

    /// What [`LoopState::to_json`] wrote (missing entries: a fresh run's).
    pub fn from_json(state: &Value) -> LoopState {
        let best = state["best_val"]
            .as_array()
            .and_then(|a| Some((a.first()?.as_u64()? as usize, a.get(1)?.as_f64()? as f32)));
        let since_best = state["since_best"].as_u64().unwrap_or(0) as usize;
        LoopState { step: state["step"].as_u64().unwrap_or(0) as usize, best, since_best }
    }
}

/// Refuse a checkpoint whose settings differ from `now` (a setting in [`MAY_CHANGE`] is
/// only reported), unless `allow`, which reports them all as warnings.
pub fn check_settings(ck: &Loaded, now: &RunSettings, allow: bool) -> Result<(), TrainError> {
    let Some(saved) = RunSettings::from_json(&ck.state["settings"]) else {
        eprintln!(
            "warning: {} records no settings (an older Lamina wrote it): resuming without checking them",
            ck.dir.display()
        );
        return Ok(());
    };
    let (soft, hard): (Vec<_>, Vec<_>) =
        now.diff(&saved).into_iter().partition(|d| MAY_CHANGE.contains(&d.key.as_str()));
    for d in &soft {
        eprintln!("note: {d}");
    }
    if hard.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = hard.iter().map(ToString::to_string).collect();
    if allow {
        for d in &list {
            eprintln!("warning: resuming with a changed setting: {d}");
        }
        return Ok(());
    }
    Err(TrainError::checkpoint(
        &ck.dir,
        format!(
            "this run's settings differ from the checkpoint's: {}; resume with the same settings, or pass \
             --allow-changed-settings to continue anyway",
            list.join("; ")
        ),
    ))
}

/// Put the checkpoint's tensors, optimizer state and data position back.
pub fn restore(
    ck: &Loaded,
    params: &[(String, Tensor)],
    opt: &mut Optimizer,
    train: &mut dyn BatchSource,
    cfg: &FineTuneConfig,
) -> Result<LoopState, TrainError> {
    let bad = |msg: String| TrainError::checkpoint(&ck.dir, msg);
    let step = ck.step as usize;
    if step >= cfg.steps {
        return Err(bad(format!(
            "it is at step {step} and the run has {}: nothing left to train (raise --steps)",
            cfg.steps
        )));
    }
    for (name, p) in params {
        let saved = ck
            .params
            .get(name)
            .ok_or_else(|| bad(format!("tensor `{name}` is missing: a checkpoint of another run?")))?;
        if saved.shape() != p.shape() {
            return Err(bad(format!("tensor `{name}` has shape {:?}, the run's has {:?}", saved.shape(), p.shape())));
        }
        p.assign(&saved.to_device(p.device())?)?;
    }
    let device = params[0].1.device();
    let moments =
        ck.optimizer.iter().map(|(n, t)| Ok((n.clone(), t.to_device(device)?))).collect::<Result<_, TrainError>>()?;
    opt.load_state(&moments, ck.step).map_err(|e| bad(format!("optimizer state: {e}")))?;
    train.restore(&ck.state["data_position"]).map_err(bad)?;
    Ok(LoopState { step, ..LoopState::from_json(&ck.state) })
}
