//! Checkpoints: `checkpoint-{step}/` in the run directory, holding the trainable tensors
//! (`params.safetensors`), the optimizer state (`optimizer.safetensors`) and the loop's
//! state (`trainer_state.json`: step, data position, early-stopping record, the run's
//! settings). The directory is written as `.checkpoint-{step}.tmp`, every file and the
//! directory fsync'd, then renamed (and the run directory fsync'd), so a crash never
//! leaves a half-written checkpoint that `--resume` would pick up; a temporary left by a
//! crash is removed by the next run ([`remove_leftovers`]).

use crate::TrainError;
use lamina_model::atomic::{self, Temporary};
use lamina_model::safetensors::{write_safetensors, SafeTensors};
use lamina_tensor::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PARAMS: &str = "params.safetensors";
pub const OPTIMIZER: &str = "optimizer.safetensors";
pub const STATE: &str = "trainer_state.json";
/// Every file a complete checkpoint has.
pub const FILES: [&str; 3] = [PARAMS, OPTIMIZER, STATE];

/// The directory name of the checkpoint at `step`.
pub fn name(step: u64) -> String {
    format!("checkpoint-{step}")
}

fn temp_name(step: u64) -> String {
    format!(".checkpoint-{step}.tmp")
}

/// Write a checkpoint for `step` into `run_dir`, then delete all but the newest `keep`.
pub fn save(
    run_dir: &Path,
    step: u64,
    params: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
    state: &Value,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let done = run_dir.join(name(step));
    let tmp = Temporary::new(run_dir.join(temp_name(step)), true)?;
    let _ = std::fs::remove_dir_all(tmp.path());
    std::fs::create_dir_all(tmp.path()).map_err(|e| TrainError::io(tmp.path(), e))?;
    let host = |list: &[(String, Tensor)]| -> Result<Vec<(String, Tensor)>, TrainError> {
        list.iter().map(|(n, t)| Ok((n.clone(), t.detach().to_device(Device::Cpu)?))).collect()
    };
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    for (file, list) in [(PARAMS, host(params)?), (OPTIMIZER, host(optimizer)?)] {
        let refs: Vec<(&str, &Tensor)> = list.iter().map(|(n, t)| (n.as_str(), t)).collect();
        write_safetensors(tmp.path().join(file), &refs, &meta)?;
    }
    let text = serde_json::to_string_pretty(state).map_err(|e| TrainError::Config(e.to_string()))?;
    atomic::write_bytes(&tmp.path().join(STATE), text.as_bytes())?;
    atomic::sync_dir(tmp.path());
    if done.exists() {
        std::fs::remove_dir_all(&done).map_err(|e| TrainError::io(&done, e))?;
    }
    tmp.persist(&done)?;
    for old in list(run_dir).into_iter().rev().skip(keep.max(1)) {
        let _ = std::fs::remove_dir_all(old.1);
    }
    Ok(done)
}

/// Checkpoints in `run_dir` (directories named `checkpoint-N` with a state file), oldest
/// first. Whether each is complete and readable is for [`load`] to say.
pub fn list(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name.strip_prefix("checkpoint-")?.parse().ok()?;
            e.path().is_dir().then(|| (step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Remove the temporary checkpoint directories a crash left in `run_dir` (they were never
/// complete); returns their paths.
pub fn remove_leftovers(run_dir: &Path) -> Vec<PathBuf> {
    let leftovers: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(".checkpoint-") && n.ends_with(".tmp")
        })
        .map(|e| e.path())
        .collect();
    leftovers.into_iter().filter(|p| std::fs::remove_dir_all(p).is_ok()).collect()
}

/// A loaded checkpoint.
pub struct Loaded {
    pub dir: PathBuf,
    pub step: u64,
    pub params: BTreeMap<String, Tensor>,
    pub optimizer: BTreeMap<String, Tensor>,
    pub state: Value,
}

/// Load the checkpoint in `dir`; every problem is a [`TrainError::Checkpoint`] naming the
/// directory and the file.
pub fn load(dir: &Path) -> Result<Loaded, TrainError> {
    let bad = |msg: String| TrainError::checkpoint(dir, msg);
    for file in FILES {
        if !dir.join(file).is_file() {
            return Err(bad(format!("{file} is missing (an incomplete or damaged checkpoint)")));
        }
    }
    let read = |file: &str| -> Result<BTreeMap<String, Tensor>, TrainError> {
        let st = SafeTensors::open(dir.join(file)).map_err(|e| bad(format!("{file}: {e}")))?;
        st.tensors()
            .iter()
            .map(|i| Ok((i.name.clone(), st.load(&i.name, DType::F32).map_err(|e| bad(format!("{file}: {e}")))?)))
            .collect()
    };
    let text = std::fs::read_to_string(dir.join(STATE)).map_err(|e| bad(format!("{STATE}: {e}")))?;
    let state: Value = serde_json::from_str(&text).map_err(|e| bad(format!("{STATE}: {e}")))?;
    let step = state["step"].as_u64().ok_or_else(|| bad(format!("{STATE} has no step")))?;
    Ok(Loaded { dir: dir.to_path_buf(), step, params: read(PARAMS)?, optimizer: read(OPTIMIZER)?, state })
}
