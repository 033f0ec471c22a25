//! The `threads` setting: one rayon pool that every CPU kernel runs in.
//!
//! Default: `LAMINA_THREADS` if set, else all cores. `set_threads` (the CLI's `--threads`)
//! replaces the pool; kernels pick up the new one on their next call. Counts far above
//! the cores are refused ([`max_threads`]): every kernel splits its work among the
//! threads, so 100,000 of them turn a fraction of a second into minutes. A pool the
//! system cannot create (out of threads or memory) is an error, not a panic.

use crate::error::{Error, Result};
use rayon::ThreadPool;
use std::sync::{Arc, OnceLock, RwLock};

/// Threads allowed per core, and at least this many in all.
const MAX_PER_CORE: usize = 8;
const MAX_FLOOR: usize = 64;

fn slot() -> &'static RwLock<Option<Arc<ThreadPool>>> {
    static POOL: OnceLock<RwLock<Option<Arc<ThreadPool>>>> = OnceLock::new();
    POOL.get_or_init(|| RwLock::new(None))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most threads [`set_threads`] accepts: 8 per core, at least 64.
pub fn max_threads() -> usize {
    (cores() * MAX_PER_CORE).max(MAX_FLOOR)
}

/// `LAMINA_THREADS` as given (`Some(Err)` when it is not a number).
pub fn env_threads() -> Option<std::result::Result<usize, String>> {
    let v = std::env::var("LAMINA_THREADS").ok()?;
    Some(v.trim().parse::<usize>().map_err(|_| format!("LAMINA_THREADS={v:?} is not a number of threads")))
}

fn default_threads() -> usize {
    match env_threads() {
        Some(Ok(n)) if n > 0 => n.min(max_threads()),
        _ => cores(),
    }
}

fn build(n: usize) -> Result<Arc<ThreadPool>> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .thread_name(|i| format!("lamina-cpu-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| Error::Threads(format!("creating a pool of {n} CPU threads failed: {e}")))
}

fn pool() -> Arc<ThreadPool> {
    if let Some(p) = slot().read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut w = slot().write().unwrap_or_else(|e| e.into_inner());
    w.get_or_insert_with(|| {
        // A kernel cannot return this error: fall back to fewer threads; `set_threads`
        // (which the CLI calls first) reports the failure properly.
        let mut n = default_threads();
        loop {
            match build(n) {
                Ok(p) => break p,
                Err(e) if n == 1 => panic!("{e}"),
                Err(_) => n /= 2,
            }
        }
    })
    .clone()
}

/// Use `n` threads for all later CPU kernels (0 means all cores); returns the count in
/// use. Refused above [`max_threads`]; a pool that cannot be created is an error and
/// leaves the previous one in place.
pub fn set_threads(n: usize) -> Result<usize> {
    let n = if n == 0 { cores() } else { n };
    if n > max_threads() {
        return Err(Error::Threads(format!(
            "{n} threads on a machine with {} cores: at most {} are allowed (more only slow every kernel down)",
            cores(),
            max_threads()
        )));
    }
    let pool = build(n)?;
    *slot().write().unwrap_or_else(|e| e.into_inner()) = Some(pool);
    Ok(n)
}

/// Threads the CPU kernels use.
pub fn threads() -> usize {
    pool().current_num_threads()
}

/// Run `f` inside the pool, so rayon calls in it use the configured thread count.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        // Already on a pool thread (a nested kernel): stay there.
        return f();
    }
    pool().install(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_counts_are_refused_and_keep_the_pool() {
        let before = threads();
        let e = set_threads(max_threads() + 1).unwrap_err();
        assert!(matches!(e, Error::Threads(_)) && e.to_string().contains("at most"), "{e}");
        assert_eq!(threads(), before);
    }
}
