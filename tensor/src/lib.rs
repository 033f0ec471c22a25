//! Lamina's tensor engine: an owned, cheaply cloned `Tensor` with strided views,
//! reverse-mode autograd, and a CPU backend with run-time SIMD dispatch.
//!
//! Layers (see ARCHITECTURE.md): `ops` (what users call: validation, dispatch, tape) →
//! `cpu` (kernels) ; `autograd` (tape walk + gradient rules written with `ops`).

pub mod autograd;
pub mod cpu;
mod device;
mod dtype;
mod error;
pub mod gpu;
mod layout;
pub mod ops;
pub mod optim;
pub mod quant;
pub mod random;
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
pub use storage::{CpuStorage, Storage};
pub use tensor::{Tensor, TensorId};
