//! What a fine-tuning run is: every setting that decides the steps it takes (the loop's
//! own: schedule, optimizer, accumulation, clipping, seed; and those its caller adds:
//! method, rank, targets, batch, maximum length, fingerprints of the model and data
//! files). Each checkpoint stores them; a resume whose settings differ is refused, or
//! with `allow_changed_settings` accepted with a warning, naming every difference.

use super::{FineTuneConfig, OptimizerKind};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Settings by name (`"lr"`, `"model_fingerprint"`, ...) as JSON values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSettings(pub BTreeMap<String, Value>);

/// Settings that may differ on a resume: extending a run (`steps`, and with it the
/// length of the schedule) is what resuming is for. The difference is reported.
pub const MAY_CHANGE: [&str; 2] = ["steps", "schedule_steps"];

/// One setting that differs between a checkpoint and the resumed run.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    pub key: String,
    /// `Null` where one side does not have the setting.
    pub saved: Value,
    pub now: Value,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} in the checkpoint, {} now", self.key, self.saved, self.now)
    }
}

impl RunSettings {
    /// Add or replace a setting.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut RunSettings {
        self.0.insert(key.to_string(), value.into());
        self
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// The settings a checkpoint stored; `None` for a checkpoint written without them.
    pub fn from_json(v: &Value) -> Option<RunSettings> {
        Some(RunSettings(v.as_object()?.iter().map(|(k, v)| (k.clone(), v.clone())).collect()))
    }

    /// Every setting whose value differs between `saved` and `self`, by name.
    pub fn diff(&self, saved: &RunSettings) -> Vec<Difference> {
        let keys: std::collections::BTreeSet<&String> = self.0.keys().chain(saved.0.keys()).collect();
        keys.into_iter()
            .filter_map(|k| {
                let (a, b) =
                    (saved.0.get(k).cloned().unwrap_or(Value::Null), self.0.get(k).cloned().unwrap_or(Value::Null));
                (a != b).then(|| Difference { key: k.clone(), saved: a, now: b })
            })
            .collect()
    }

    /// The loop's own settings from `cfg`, then the caller's (`cfg.run.settings`).
    pub fn of_run(cfg: &FineTuneConfig) -> RunSettings {
        let s = &cfg.schedule;
        let mut out = RunSettings::default();
        out.set("steps", cfg.steps)
            .set("schedule", format!("{:?}", s.decay).to_lowercase())
            .set("lr", f32_value(s.max_lr))
            .set("min_lr", f32_value(s.min_lr))
            .set("warmup", s.warmup)
            .set("schedule_steps", s.total)
            .set("accum", cfg.accum)
            .set("clip", cfg.clip.map(f32_value))
            .set("seed", cfg.seed)
            .set("optimizer", optimizer_json(&cfg.optimizer));
        out.0.extend(cfg.run.settings.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }
}

/// An f32 setting as the number it was written as (`2e-4`, not `0.00019999999494757503`);
/// NaN becomes null.
pub fn f32_value(x: f32) -> Value {
    Value::from(x.to_string().parse::<f64>().unwrap_or(f64::NAN))
}

fn optimizer_json(o: &OptimizerKind) -> Value {
    let f = |x: f32| f32_value(x);
    match *o {
        OptimizerKind::AdamW(c) => json!({
            "adamw": {"beta1": f(c.beta1), "beta2": f(c.beta2), "eps": f(c.eps), "weight_decay": f(c.weight_decay)}
        }),
        OptimizerKind::Sgd { momentum, weight_decay } => {
            json!({"sgd": {"momentum": f(momentum), "weight_decay": f(weight_decay)}})
        }
    }
}

/// A 64-bit fingerprint of a file's bytes and length, as 16 hex digits: tells a changed
/// model or data file from the one a checkpoint was made with. Not cryptographic (a
/// word-at-a-time multiply-xorshift); SmolLM2's 98 MB take about 0.1 s.
pub fn file_fingerprint(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut h, mut len) = (SEED, 0u64);
    loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        len += n as u64;
        h = fold_words(h, &buf[..n]);
    }
    Ok(format!("{:016x}", mix(h ^ len)))
}

/// The fingerprint of bytes in memory (what [`file_fingerprint`] gives for a file of
/// these bytes), as a number: a checksum for the files a run writes itself.
pub fn bytes_fingerprint(bytes: &[u8]) -> u64 {
    mix(fold_words(SEED, bytes) ^ bytes.len() as u64)
}

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// `h` mixed with each 8-byte little-endian word of `bytes` (the last zero-padded).
fn fold_words(mut h: u64, bytes: &[u8]) -> u64 {
    for word in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..word.len()].copy_from_slice(word);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    h
}

/// Fill `buf` as far as the file goes (a short read is not the end).
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A bijective 64-bit mixer (the finalizer of MurmurHash3), applied per word.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_file_fingerprints_agree() {
        let path = std::env::temp_dir().join(format!("lamina-fingerprint-{}", std::process::id()));
        let bytes: Vec<u8> = (0..2_000_003u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(file_fingerprint(&path).unwrap(), format!("{:016x}", bytes_fingerprint(&bytes)));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn differences_are_named_both_ways() {
        let mut a = RunSettings::default();
        a.set("lr", 1e-3).set("rank", 8).set("old", true);
        let mut b = a.clone();
        b.set("lr", 2e-3).set("new", "x");
        b.0.remove("old");
        let d: Vec<String> = b.diff(&a).iter().map(|d| d.key.clone()).collect();
        assert_eq!(d, ["lr", "new", "old"]);
        assert!(b.diff(&a)[0].to_string().contains("0.001 in the checkpoint, 0.002 now"));
        assert!(a.diff(&a).is_empty());
        assert_eq!(RunSettings::from_json(&a.to_json()), Some(a));
    }

    #[test]
    fn fingerprints_change_with_any_byte_and_the_length() {
        let dir = std::env::temp_dir().join(format!("lamina-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        let mut seen = std::collections::HashSet::new();
        for bytes in [&b"abcdefghij"[..], b"abcdefghik", b"abcdefghij\0", b"", b"\0"] {
            std::fs::write(&p, bytes).unwrap();
            assert!(seen.insert(file_fingerprint(&p).unwrap()), "{bytes:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
