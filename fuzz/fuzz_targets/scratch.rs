//! Where a target writes its input for readers that take a path: a directory per fuzzing
//! process, in memory where the system has a tmpfs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A directory of this process's own, so that the only file in it is the one written.
pub fn dir() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { "/dev/shm".into() } else { std::env::temp_dir() };
        let dir = base.join(format!("lamina-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}
