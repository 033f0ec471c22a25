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
    let found = p.is_file();
    let how = "run `scripts/fetch-model.sh` (or set LAMINA_SMOLLM2)";
    found_or_skip(p, found, how, "LAMINA_REQUIRE_MODEL")
}

/// `Some(path)` when `found`; else `None` with a message, or a panic when the variable
/// `require` is 1.
fn found_or_skip(path: PathBuf, found: bool, how: &str, require: &str) -> Option<PathBuf> {
    if found {
        return Some(path);
    }
    let msg = format!("{} is missing: {how}", path.display());
    if std::env::var(require).is_ok_and(|v| v == "1") {
        panic!("{require}=1 and {msg}");
    }
    eprintln!("skipping: {msg}");
    None
}

/// llama.cpp's tokenizer test vocabularies and chat templates
/// (`scripts/fetch-llama-vocab.sh` extracts them from the `llama-cpp-python` sdist):
/// `models/llama.cpp-vocab/ggml-vocab-*.gguf` with `.inp`/`.out` pairs, and `templates/`.
pub fn llama_vocab_dir() -> PathBuf {
    repo_root().join("models").join("llama.cpp-vocab")
}

/// For tests that need llama.cpp's vocabularies: the folder, or `None` (with a message
/// saying how to get it) when it is missing. Under `LAMINA_REQUIRE_VOCAB=1` (set by
/// `.ci/run`) a missing folder is a failure instead of a skip.
pub fn llama_vocab_for_test() -> Option<PathBuf> {
    let dir = llama_vocab_dir();
    let found = dir.join(".complete").is_file();
    found_or_skip(dir, found, "run `scripts/fetch-llama-vocab.sh`", "LAMINA_REQUIRE_VOCAB")
}
