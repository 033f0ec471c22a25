//! The `threads` setting: one rayon pool that every CPU kernel runs in.
//!
//! Default: `LAMINA_THREADS` if set, else all cores. `set_threads` (the CLI's `--threads`)
//! replaces the pool; kernels pick up the new one on their next call.

use rayon::ThreadPool;
use std::sync::{Arc, OnceLock, RwLock};

fn slot() -> &'static RwLock<Option<Arc<ThreadPool>>> {
    static POOL: OnceLock<RwLock<Option<Arc<ThreadPool>>>> = OnceLock::new();
    POOL.get_or_init(|| RwLock::new(None))
}

fn default_threads() -> usize {
    std::env::var("LAMINA_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn build(n: usize) -> Arc<ThreadPool> {
    Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("lamina-cpu-{i}"))
            .build()
            .expect("creating the CPU thread pool failed (out of threads?)"),
    )
}

fn pool() -> Arc<ThreadPool> {
    if let Some(p) = slot().read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return p.clone();
    }
    let mut w = slot().write().unwrap_or_else(|e| e.into_inner());
    w.get_or_insert_with(|| build(default_threads())).clone()
}

/// Use `n` threads for all later CPU kernels (0 means all cores).
pub fn set_threads(n: usize) {
    let n = if n == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { n };
    *slot().write().unwrap_or_else(|e| e.into_inner()) = Some(build(n));
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
