//! The run directory: a fresh run refuses one that holds another run (unless told to
//! replace it), a resume picks its checkpoint (the newest, or one named; a damaged newest
//! is reported with the previous one to resume from instead), and temporary checkpoint
//! directories a crash left are removed.

use super::checkpoint;
use crate::TrainError;
use std::path::{Path, PathBuf};

pub const METRICS: &str = "metrics.jsonl";
pub const BEST: &str = "best";
pub const FINAL: &str = "final";
/// Prefix of checkpoints set aside when a run resumes from an older one.
const ABANDONED: &str = "abandoned-";

fn run_dir_err(dir: &Path, msg: String) -> TrainError {
    TrainError::RunDir { path: dir.to_path_buf(), msg }
}

/// What of a run `dir` holds: its log, results and checkpoints (complete or temporary).
fn run_entries(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n == METRICS
                || n == BEST
                || n == FINAL
                || n.starts_with("checkpoint-")
                || n.starts_with(ABANDONED)
                || (n.starts_with(".checkpoint-") && n.ends_with(".tmp"))
        })
        .map(|e| e.path())
        .collect();
    found.sort();
    found
}

fn names(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.file_name().unwrap_or_default().to_string_lossy()).collect::<Vec<_>>().join(", ")
}

/// Refuse a fresh run into `dir` when it holds another run, unless `overwrite`; returns
/// what `overwrite` would delete. Cheap: callers run it before loading anything.
pub fn check_fresh(dir: &Path, overwrite: bool) -> Result<Vec<PathBuf>, TrainError> {
    let old = run_entries(dir);
    if !old.is_empty() && !overwrite {
        return Err(run_dir_err(
            dir,
            format!(
                "it holds another run ({}); continue that run with --resume, replace it with --overwrite, \
                 or choose another --out",
                names(&old)
            ),
        ));
    }
    Ok(old)
}

/// Make `dir` ready for a fresh run: created if missing; refused if it holds another run,
/// unless `overwrite`, which deletes that run's log, results and checkpoints (and nothing
/// else) first.
pub fn prepare_fresh(dir: &Path, overwrite: bool) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    let old = check_fresh(dir, overwrite)?;
    for p in &old {
        let removed = if p.is_dir() { std::fs::remove_dir_all(p) } else { std::fs::remove_file(p) };
        removed.map_err(|e| TrainError::io(p, e))?;
    }
    if !old.is_empty() {
        eprintln!("--overwrite: removed the previous run's {} from {}", names(&old), dir.display());
    }
    Ok(())
}

/// The checkpoint a resume starts from, loaded: `from` (a path, or a checkpoint's name in
/// `dir`), else the newest.
pub fn pick_checkpoint(dir: &Path, from: Option<&Path>) -> Result<checkpoint::Loaded, TrainError> {
    for p in checkpoint::remove_leftovers(dir) {
        eprintln!("removed {}: a checkpoint a crash left half-written", p.display());
    }
    let all = checkpoint::list(dir);
    match from {
        Some(p) => {
            let path = if p.is_relative() && dir.join(p).is_dir() { dir.join(p) } else { p.to_path_buf() };
            if !path.is_dir() {
                return Err(TrainError::checkpoint(&path, "no such checkpoint directory"));
            }
            checkpoint::load(&path)
        }
        None => load_newest(dir, &all),
    }
}

/// Once a run resumes from the checkpoint at `step`, rename the newer ones in `dir`
/// `abandoned-checkpoint-N`: kept, but no longer counted (or rotated) as this run's.
pub fn set_aside_newer(dir: &Path, step: u64) -> Result<(), TrainError> {
    for (s, path) in checkpoint::list(dir).into_iter().filter(|(s, _)| *s > step) {
        let aside = dir.join(format!("{ABANDONED}{}", checkpoint::name(s)));
        let _ = std::fs::remove_dir_all(&aside);
        std::fs::rename(&path, &aside).map_err(|e| TrainError::io(&path, e))?;
        eprintln!("{} is newer than the checkpoint resumed from: kept as {}", path.display(), aside.display());
    }
    Ok(())
}

/// The newest checkpoint; when it cannot be loaded, the error says which one to resume
/// from instead.
fn load_newest(dir: &Path, all: &[(u64, PathBuf)]) -> Result<checkpoint::Loaded, TrainError> {
    let Some((_, newest)) = all.last() else {
        return Err(run_dir_err(dir, "--resume: it holds no checkpoint".into()));
    };
    checkpoint::load(newest).map_err(|e| {
        let TrainError::Checkpoint { path, msg } = e else { return e };
        let advice = match all.len().checked_sub(2).map(|i| &all[i]) {
            Some((step, _)) => format!(
                "; the previous checkpoint is {0}: resume from it with --resume-from {0}",
                checkpoint::name(*step)
            ),
            None => "; there is no earlier checkpoint to resume from".into(),
        };
        TrainError::Checkpoint { path, msg: msg + &advice }
    })
}
