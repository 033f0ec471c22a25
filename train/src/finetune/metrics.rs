//! The metrics log: one JSON object per line, appended and flushed as the run goes, so a
//! crash loses nothing already reported and `lamina plot` can draw a run in progress.
//! Training lines carry `step`, `epoch`, `loss`, `lr`, `tokens_per_s`, `grad_norm`;
//! validation lines `step`, `val_loss`, `val_ppl`.

use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Open `path` for appending. When resuming from step `keep_through`, lines of later
    /// steps (written after that checkpoint, before an interruption) are dropped first so
    /// the log reads as one uninterrupted run; `None` starts a fresh log.
    pub fn open(path: &Path, keep_through: Option<u64>) -> std::io::Result<MetricsLog> {
        match keep_through {
            None => {
                File::create(path)?;
            }
            Some(step) if path.exists() => {
                let kept: Vec<String> = BufReader::new(File::open(path)?)
                    .lines()
                    .collect::<std::io::Result<Vec<_>>>()?
                    .into_iter()
                    .filter(|l| {
                        serde_json::from_str::<Value>(l)
                            .ok()
                            .and_then(|v| v.get("step").and_then(Value::as_u64))
                            .is_some_and(|s| s <= step)
                    })
                    .collect();
                let tmp = path.with_extension("jsonl.tmp");
                let mut f = File::create(&tmp)?;
                for l in kept {
                    writeln!(f, "{l}")?;
                }
                f.sync_all()?;
                std::fs::rename(&tmp, path)?;
            }
            Some(_) => {}
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(MetricsLog { path: path.to_path_buf(), file })
    }

    pub fn write(&mut self, record: &Value) -> std::io::Result<()> {
        writeln!(self.file, "{record}")?;
        self.file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resuming_drops_lines_after_the_checkpoint() {
        let dir = std::env::temp_dir().join(format!("lamina-metrics-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.jsonl");
        let mut log = MetricsLog::open(&path, None).unwrap();
        for step in 1..=5u64 {
            log.write(&json!({"step": step, "loss": 1.0})).unwrap();
        }
        drop(log);
        let mut log = MetricsLog::open(&path, Some(3)).unwrap();
        log.write(&json!({"step": 4, "loss": 2.0})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let steps: Vec<u64> =
            text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, vec![1, 2, 3, 4]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
