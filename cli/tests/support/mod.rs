//! What the CLI tests share: running the binary, scratch directories, and the tiny LLaMA
//! GGUF of `lamina_testkit::tiny_llama` (every LLM command runs on it in milliseconds; knobs
//! for the hostile variants: NaN weights, impossible hyperparameters, a template).
#![allow(dead_code)]

pub use lamina_testkit::tiny_llama::{tiny_llama, Tiny};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn lamina_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lamina"))
}

/// Run `lamina args`: (success, stdout, stderr).
pub fn lamina(args: &[&str]) -> (bool, String, String) {
    text(lamina_bin().args(args).output().unwrap())
}

/// Run `lamina args` with at most 2 GiB of address space: where an input would make
/// memory grow without bound, the process dies of a failed allocation (and the test
/// fails) instead of taking the machine's memory.
pub fn lamina_capped(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("sh")
        .args(["-c", "ulimit -v 2097152; exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_lamina")])
        .args(args)
        .output()
        .unwrap();
    text(out)
}

pub fn text(out: Output) -> (bool, String, String) {
    let s = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.success(), s(out.stdout), s(out.stderr))
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A tiny model with default knobs in `dir`, returned as a string path.
pub fn tiny_in(dir: &Path, name: &str, tiny: &Tiny) -> String {
    let p = dir.join(name);
    tiny_llama(&p, tiny);
    s(&p).to_string()
}
