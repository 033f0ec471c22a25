//! Lamina's tensor engine: an owned, cheaply cloned `Tensor` with strided views,
//! reverse-mode autograd, and two backends behind one interface: the CPU (rayon, SIMD
//! chosen at run time) and the GPU (wgpu, WGSL kernels from `shaders/`).
//!
//! Layers (see ARCHITECTURE.md): `ops` (what users call: validation, tape) → `dispatch`
//! (`Storage` to the backend holding it) → `backend::BackendStorage`, implemented by
//! `cpu` and `gpu`; `autograd` (tape walk + gradient rules written with `ops`, fused
//! backward kernels through `ops/nn_backward.rs`).

pub mod autograd;
mod backend;
pub mod cpu;
mod device;
mod dispatch;
mod dtype;
mod error;
pub mod gpu;
mod layout;
pub mod ops;
pub mod optim;
pub mod quant;
pub mod random;
mod skip;
mod storage;
mod tensor;

pub use autograd::{is_grad_enabled, no_grad, NoGradGuard};
pub use cpu::parallel::{set_threads, threads};
pub use device::Device;
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use layout::{broadcast_shapes, contiguous_strides, Layout};
pub use ops::rope_tables;
pub use ops::{scaled_dot_product_attention, BinaryOp, CmpOp, OpName, ReduceOp, RopeConvention, UnaryOp};
pub use skip::skip_or_fail;
pub use storage::{CpuStorage, Storage};
pub use tensor::{Tensor, TensorId};
