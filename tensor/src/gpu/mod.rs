//! The GPU backend: wgpu devices, pooled buffers, a typed pipeline cache and WGSL compute
//! kernels (the shaders live in `shaders/` at the workspace root, one file per op family).
//!
//! Layers, bottom up:
//! - `device`: adapter discovery (`adapters()`), one shared `GpuDevice` per adapter ordinal
//!   (`GpuDevice::get`), error capture (validation errors and device loss become `Err`).
//! - `buffer`: size-bucketed buffer pool; a `GpuBuffer` returns to its pool on drop.
//! - `storage`: `GpuStorage`, a tensor's buffer (dtype + element count) with host transfers.
//! - `pipeline`: `Shader` sources, the `KernelKey` trait (typed variant keys) and the cache.
//! - `dispatch`: batched command recording, per-dispatch uniform parameters, flush/sync.
//! - `strided`: `StridedParams`, how kernels receive (shape, strides, offset) views.
//! - `qweights`: quantized weight matrices (`QMatrix`) uploaded once, blocks re-laid for
//!   word loads (`GpuQMatrix`).
//! - `kernels`: host code per op family, mirroring `crate::cpu`'s signatures.
//! - `contract`, `user_kernel`: a researcher's WGSL kernel checked against the binding
//!   contract of its family (read from the engine's own kernel) and run in its place.
//!
//! Storage convention shared by every shader (see `shaders/common.wgsl`): each tensor
//! buffer is `array<u32>`; f32/i32/u32 take one word per element, f16/bf16 are packed two
//! per word (element 2k in the low half of word k, the last word zero-padded). Kernels
//! compute in f32 and round on store (round-to-nearest-even), like the CPU backend.

mod backend;
mod buffer;
mod codes;
pub mod contract;
mod device;
mod dispatch;
pub mod kernels;
mod pipeline;
pub(crate) mod qweights;
mod storage;
mod strided;
mod user_kernel;

#[cfg(test)]
pub(crate) mod testing;

pub use buffer::GpuBuffer;
pub use device::{adapters, AdapterSummary, GpuDevice, GpuOptions};
pub use dispatch::KernelTime;
pub use kernels::{binary, cast, cmp, copy_contiguous, reduce, unary, where_cond};
pub use pipeline::{KernelKey, RowReduce, Shader};
pub use qweights::GpuQMatrix;
pub use storage::GpuStorage;
pub use strided::{StridedParams, MAX_RANK};
pub use user_kernel::UserKernel;

/// The GPU that tests should run on, for every test crate of the workspace: `Some(ordinal)`
/// (`LAMINA_GPU_ORDINAL`, default 0) when an adapter answers; otherwise `None` after
/// printing why, or a test failure under `LAMINA_REQUIRE_GPU=1` (`crate::skip_or_fail`),
/// as CI sets it on lavapipe so that a missing driver cannot pass as a skip.
pub fn test_ordinal() -> Option<usize> {
    let ordinal = std::env::var("LAMINA_GPU_ORDINAL").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    match GpuDevice::get(ordinal) {
        Ok(_) => Some(ordinal),
        Err(e) => {
            crate::skip_or_fail("LAMINA_REQUIRE_GPU", &format!("no usable GPU adapter: {e}"));
            None
        }
    }
}
