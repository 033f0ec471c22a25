//! The tuner's cache: `tuning.tsv` in `$LAMINA_CACHE_DIR`, else the user cache directory
//! (`~/.cache/lamina/` on Linux). One line per (adapter, driver, op, kernel file): the
//! winning override values and the rate they measured. A kernel is known by a hash of its
//! text, so editing the file forgets its tuning; another adapter or driver has lines of
//! its own. Written atomically (temporary file, fsync, rename); a line that does not
//! parse is dropped with a note, never an error.

use lamina_tensor::gpu::contract::Family;
use lamina_tensor::gpu::AdapterSummary;
use std::io::Write;
use std::path::{Path, PathBuf};

const FILE: &str = "tuning.tsv";
const HEADER: &str = "# lamina kernel tune: adapter\tdriver\top\tkernel (FNV-1a of its text)\toverrides\tGFLOP/s";

/// One tuned kernel on one adapter.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub adapter: String,
    pub driver: String,
    pub op: String,
    pub kernel: String,
    pub overrides: Vec<(String, f64)>,
    pub gflops: f64,
}

impl Entry {
    pub fn new(a: &AdapterSummary, op: Family, text: &str, overrides: Vec<(String, f64)>, gflops: f64) -> Entry {
        let adapter = format!("{} ({})", a.name, a.backend);
        let driver = format!("{} {}", a.driver, a.driver_info);
        Entry { adapter, driver, op: op.name().to_string(), kernel: fingerprint(text), overrides, gflops }
    }

    fn same_key(&self, other: &Entry) -> bool {
        (&self.adapter, &self.driver, &self.op, &self.kernel)
            == (&other.adapter, &other.driver, &other.op, &other.kernel)
    }

    fn line(&self) -> String {
        let o: Vec<String> = self.overrides.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let clean = |s: &str| s.replace(['\t', '\n'], " ");
        format!(
            "{}\t{}\t{}\t{}\t{}\t{:.4}",
            clean(&self.adapter),
            clean(&self.driver),
            self.op,
            self.kernel,
            o.join(" "),
            self.gflops
        )
    }

    fn parse(line: &str) -> Option<Entry> {
        let f: Vec<&str> = line.split('\t').collect();
        let [adapter, driver, op, kernel, overrides, gflops] = f[..] else { return None };
        let overrides = overrides
            .split_whitespace()
            .map(|kv| {
                let (n, v) = kv.split_once('=')?;
                Some((n.to_string(), v.parse().ok()?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Entry {
            adapter: adapter.to_string(),
            driver: driver.to_string(),
            op: op.to_string(),
            kernel: kernel.to_string(),
            overrides,
            gflops: gflops.parse().ok()?,
        })
    }
}

/// A kernel's name in the cache: FNV-1a of its text.
fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The cache file's path: `$LAMINA_CACHE_DIR/tuning.tsv`, else in the user cache directory.
pub fn path() -> Option<PathBuf> {
    let dir = std::env::var_os("LAMINA_CACHE_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
    dir.or_else(lamina_model::models::user_cache_dir).map(|d| d.join(FILE))
}

fn read(path: &Path) -> Vec<Entry> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty()) {
        match Entry::parse(line) {
            Some(e) => out.push(e),
            None => eprintln!("note: {}:{}: not a tuning line; ignored", path.display(), i + 1),
        }
    }
    out
}

/// The cached overrides of this kernel text on this adapter, if tuned.
pub fn lookup(a: &AdapterSummary, op: Family, text: &str) -> Option<Entry> {
    lookup_in(&path()?, &Entry::new(a, op, text, Vec::new(), 0.0))
}

/// The line with `want`'s key, if any.
fn lookup_in(path: &Path, want: &Entry) -> Option<Entry> {
    read(path).into_iter().find(|e| e.same_key(want))
}

/// Add or replace `entry`'s line; returns the file written.
pub fn store(entry: Entry) -> Result<PathBuf, String> {
    let path = path().ok_or("no cache directory (set LAMINA_CACHE_DIR or HOME)")?;
    store_in(&path, entry)?;
    Ok(path)
}

fn store_in(path: &Path, entry: Entry) -> Result<(), String> {
    let mut entries: Vec<Entry> = read(path).into_iter().filter(|e| !e.same_key(&entry)).collect();
    entries.push(entry);
    let mut text = format!("{HEADER}\n");
    for e in &entries {
        text += &e.line();
        text.push('\n');
    }
    let dir = path.parent().ok_or("the cache path has no directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| format!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(adapter: &str, text: &str, wg: f64, gflops: f64) -> Entry {
        let (op, kernel) = ("matmul".to_string(), fingerprint(text));
        Entry {
            adapter: adapter.into(),
            driver: "mesa 25".into(),
            op,
            kernel,
            overrides: vec![("WG".into(), wg)],
            gflops,
        }
    }

    #[test]
    fn winners_are_kept_per_adapter_and_kernel_text() {
        let dir = std::env::temp_dir().join(format!("lamina-tuning-{}", std::process::id()));
        let path = dir.join(FILE);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(lookup_in(&path, &entry("gpu A", "kernel", 0.0, 0.0)), None, "no file yet");
        store_in(&path, entry("gpu A", "kernel", 8.0, 1.5)).unwrap();
        store_in(&path, entry("gpu B", "kernel", 16.0, 9.0)).unwrap();
        store_in(&path, entry("gpu A", "kernel", 4.0, 2.5)).unwrap(); // replaces the first
        assert_eq!(lookup_in(&path, &entry("gpu A", "kernel", 0.0, 0.0)), Some(entry("gpu A", "kernel", 4.0, 2.5)));
        assert_eq!(lookup_in(&path, &entry("gpu B", "kernel", 0.0, 0.0)), Some(entry("gpu B", "kernel", 16.0, 9.0)));
        assert_eq!(lookup_in(&path, &entry("gpu A", "kernel, edited", 0.0, 0.0)), None, "another text");
        // A damaged line is dropped, the rest still read.
        let text = std::fs::read_to_string(&path).unwrap() + "garbage\tline\n";
        std::fs::write(&path, text).unwrap();
        assert_eq!(read(&path).len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
