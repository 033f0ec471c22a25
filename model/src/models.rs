//! Where model files are looked for when none is named: the default model's lookup, shared
//! by the CLI and the tests. Nothing here is fixed at build time; the places, in order:
//!
//! 1. `LAMINA_SMOLLM2`: the reference model file itself;
//! 2. `$LAMINA_MODELS/`;
//! 3. `models/` beside the executable, or in the source checkout it was built in (the
//!    nearest ancestor of its directory holding a `Cargo.toml`: `cargo run`'s
//!    `target/release/lamina` finds the checkout's `models/`);
//! 4. the user cache directory: `$XDG_CACHE_HOME/lamina/models` or
//!    `~/.cache/lamina/models` (`~/Library/Caches/lamina/models` on macOS,
//!    `%LOCALAPPDATA%\lamina\models` on Windows).
//!
//! A missing default model is downloaded (by the CLI, with `scripts/fetch-model.sh`) into
//! [`download_dir`].

use std::path::{Path, PathBuf};

/// File name of the reference model, SmolLM2-135M-Instruct in Q4_1 (never committed).
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// How many directories above the executable's a source checkout is looked for
/// (`target/release/deps/` is three below it).
const CHECKOUT_DEPTH: usize = 4;

/// The reference model: `LAMINA_SMOLLM2` when set (whether or not the file exists, so a
/// wrong value is reported, not silently replaced), else the first directory of
/// [`search_dirs`] that holds [`SMOLLM2_FILE`].
pub fn smollm2() -> Option<PathBuf> {
    match std::env::var_os("LAMINA_SMOLLM2") {
        Some(p) => Some(PathBuf::from(p)),
        None => find(SMOLLM2_FILE),
    }
}

/// `file` in the first directory of [`search_dirs`] that has it.
pub fn find(file: &str) -> Option<PathBuf> {
    search_dirs().into_iter().map(|d| d.join(file)).find(|p| p.is_file())
}

/// The directories searched for a model file, in order (see the module's header).
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LAMINA_MODELS").map(PathBuf::from).into_iter().collect();
    if let Some(exe_dir) = exe_dir() {
        dirs.push(exe_dir.join("models"));
        dirs.extend(checkout_of(&exe_dir).map(|root| root.join("models")));
    }
    dirs.extend(cache_dir());
    dirs.dedup();
    dirs
}

/// Where a missing default model is downloaded: `$LAMINA_MODELS`, else the `models/` of
/// the source checkout holding the executable, else the user cache directory.
pub fn download_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("LAMINA_MODELS") {
        return Some(PathBuf::from(d));
    }
    checkout_dir().map(|root| root.join("models")).or_else(cache_dir)
}

/// The source checkout the running executable was built in (the nearest ancestor of its
/// directory holding a `Cargo.toml`), if it runs from one: where `cargo run` finds the
/// repository's `models/` and data.
pub fn checkout_dir() -> Option<PathBuf> {
    exe_dir().and_then(|d| checkout_of(&d))
}

fn exe_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.parent().map(Path::to_path_buf)
}

/// The nearest ancestor of `dir` (itself included) that holds a `Cargo.toml`.
fn checkout_of(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().take(CHECKOUT_DEPTH + 1).find(|d| d.join("Cargo.toml").is_file()).map(Path::to_path_buf)
}

/// The per-user cache directory for models, by the platform's convention.
fn cache_dir() -> Option<PathBuf> {
    user_cache_dir().map(|d| d.join("models"))
}

/// Lamina's per-user cache directory, by the platform's convention: `$XDG_CACHE_HOME/lamina`
/// or `~/.cache/lamina` (`~/Library/Caches/lamina` on macOS, `%LOCALAPPDATA%\lamina` on
/// Windows). Models go in `models/` below it; `lamina kernel tune` keeps `tuning.tsv` there.
pub fn user_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library").join("Caches"))
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))
    };
    base.map(|b| b.join("lamina"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkout_is_the_nearest_cargo_toml() {
        let root = std::env::temp_dir().join(format!("lamina-models-{}", std::process::id()));
        let deep = root.join("target").join("release").join("deps");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(root.join("Cargo.toml"), "").unwrap();
        assert_eq!(checkout_of(&deep), Some(root.clone()));
        assert_eq!(checkout_of(&root), Some(root.clone()));
        std::fs::remove_file(root.join("Cargo.toml")).unwrap();
        assert_eq!(checkout_of(&deep).filter(|d| d.starts_with(&root)), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn search_ends_in_the_cache_directory() {
        // The test binary lives in this checkout's target/: its models/ is searched.
        let dirs = search_dirs();
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("models");
        assert!(dirs.iter().any(|d| d == &checkout) || std::env::var_os("CARGO_TARGET_DIR").is_some(), "{dirs:?}");
        if let Some(cache) = cache_dir() {
            assert_eq!(dirs.last(), Some(&cache));
        }
    }
}
