//! Keep freed memory in the process instead of handing it back to the OS.
//!
//! Every tensor op allocates a fresh output buffer. glibc's malloc serves blocks above
//! 128 KiB with `mmap` and returns freed memory at the top of the heap to the kernel, so
//! each activation-sized buffer of a training step is page-faulted and zeroed by the kernel
//! again: about a third of the CPU time of a small training run went to the kernel. Raising
//! the thresholds lets malloc reuse those pages (measured: 35% less wall time on the
//! end-to-end test). A caching allocator in the engine would be the proper fix; this is
//! the process-wide stopgap a binary (or test) opts into once, at start.

/// Stop glibc from serving blocks with mmap and from trimming the heap (a no-op
/// elsewhere). The process keeps its high-water mark of memory, which a training run
/// reaches every step anyway. Safe to call more than once.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_MAX: i32 = -4;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only changes malloc's tuning parameters; any value is valid input
        // (an out-of-range one is refused with a 0 return, which leaves the default).
        unsafe {
            // No block from mmap: glibc caps the mmap threshold at 32 MiB, and the logits of
            // a batch (4 x 256 tokens x 49k vocabulary = 200 MB) and their gradient were
            // mapped, faulted in and unmapped again every step.
            mallopt(M_MMAP_MAX, 0);
            // Never trim: a LoRA step at batch 4 frees ~4 GB of activations, more than any
            // trim threshold, and faulting them back in took 600k page faults per step.
            // (-1 disables trimming, as documented in mallopt(3).)
            mallopt(M_TRIM_THRESHOLD, -1);
        }
    }
}
