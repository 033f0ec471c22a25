//! Where the reference model lives. SmolLM2-135M-Instruct (Q4_1 GGUF) is never committed:
//! `scripts/fetch-model.sh` downloads it into `models/` (ignored by git).

use std::path::PathBuf;

/// File name of the reference model.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The repository root (this crate's parent directory, fixed at build time).
pub fn repo_root() -> PathBuf {
    let model_crate = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    model_crate.parent().map(PathBuf::from).unwrap_or(model_crate)
}

/// `$LAMINA_SMOLLM2` if set, else `models/SmolLM2-135M-Instruct.Q4_1.gguf` in the repository.
pub fn smollm2_path() -> PathBuf {
    match std::env::var_os("LAMINA_SMOLLM2") {
        Some(p) => PathBuf::from(p),
        None => repo_root().join("models").join(SMOLLM2_FILE),
    }
}

/// For tests that need the model: its path, or `None` (with a message saying how to get
/// it) when it is missing. Under `LAMINA_REQUIRE_MODEL=1` (set by `.ci/run`) a missing
/// model is a failure instead of a skip.
pub fn smollm2_for_test() -> Option<PathBuf> {
    let p = smollm2_path();
    if p.is_file() {
        return Some(p);
    }
    let msg = format!("{} is missing: run `scripts/fetch-model.sh` (or set LAMINA_SMOLLM2)", p.display());
    if std::env::var("LAMINA_REQUIRE_MODEL").is_ok_and(|v| v == "1") {
        panic!("LAMINA_REQUIRE_MODEL=1 and {msg}");
    }
    eprintln!("skipping: {msg}");
    None
}
