//! Checkpoints: `checkpoint-{step}/` in the run directory, holding the trainable tensors
//! (`params.safetensors`), the optimizer state (`optimizer.safetensors`) and the loop's
//! state (`trainer_state.json`: step, data position, early-stopping record). The
//! directory is written under a temporary name and renamed when complete, so a crash
//! never leaves a half-written checkpoint that `--resume` would pick up.

use lamina_model::safetensors::{write_safetensors, SafeTensors};
use lamina_tensor::{DType, Device, Tensor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PARAMS: &str = "params.safetensors";
pub const OPTIMIZER: &str = "optimizer.safetensors";
pub const STATE: &str = "trainer_state.json";

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

/// Write a checkpoint for `step` into `run_dir`, then delete all but the newest `keep`.
pub fn save(
    run_dir: &Path,
    step: u64,
    params: &[(String, Tensor)],
    optimizer: &[(String, Tensor)],
    state: &Value,
    keep: usize,
) -> Result<PathBuf, String> {
    let done = run_dir.join(format!("checkpoint-{step}"));
    let tmp = run_dir.join(format!(".checkpoint-{step}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| err(&tmp, e))?;
    let host = |list: &[(String, Tensor)]| -> Result<Vec<(String, Tensor)>, String> {
        list.iter()
            .map(|(n, t)| Ok((n.clone(), t.detach().to_device(Device::Cpu).map_err(|e| e.to_string())?)))
            .collect()
    };
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    for (file, list) in [(PARAMS, host(params)?), (OPTIMIZER, host(optimizer)?)] {
        let refs: Vec<(&str, &Tensor)> = list.iter().map(|(n, t)| (n.as_str(), t)).collect();
        write_safetensors(tmp.join(file), &refs, &meta).map_err(|e| e.to_string())?;
    }
    let text = serde_json::to_string_pretty(state).map_err(|e| e.to_string())?;
    std::fs::write(tmp.join(STATE), text).map_err(|e| err(&tmp, e))?;
    let _ = std::fs::remove_dir_all(&done);
    std::fs::rename(&tmp, &done).map_err(|e| err(&done, e))?;
    for old in list(run_dir).into_iter().rev().skip(keep.max(1)) {
        let _ = std::fs::remove_dir_all(old.1);
    }
    Ok(done)
}

/// Completed checkpoints in `run_dir`, oldest first.
pub fn list(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let step = name.strip_prefix("checkpoint-")?.parse().ok()?;
            e.path().join(STATE).exists().then(|| (step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// A loaded checkpoint.
pub struct Loaded {
    pub dir: PathBuf,
    pub params: BTreeMap<String, Tensor>,
    pub optimizer: BTreeMap<String, Tensor>,
    pub state: Value,
}

pub fn load(dir: &Path) -> Result<Loaded, String> {
    let read = |file: &str| -> Result<BTreeMap<String, Tensor>, String> {
        let st = SafeTensors::open(dir.join(file)).map_err(|e| e.to_string())?;
        st.tensors()
            .iter()
            .map(|i| Ok((i.name.clone(), st.load(&i.name, DType::F32).map_err(|e| e.to_string())?)))
            .collect()
    };
    let state_path = dir.join(STATE);
    let text = std::fs::read_to_string(&state_path).map_err(|e| err(&state_path, e))?;
    let state = serde_json::from_str(&text).map_err(|e| err(&state_path, e))?;
    Ok(Loaded { dir: dir.to_path_buf(), params: read(PARAMS)?, optimizer: read(OPTIMIZER)?, state })
}
