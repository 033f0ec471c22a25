//! Lamina's verification library: what the engine is checked against.
//!
//! - [`reference`]: a plain, slow, obvious f64 implementation of every op in
//!   `OpName::ALL`, on [`RefTensor`] (shape + row-major `Vec<f64>`). It never calls the
//!   engine: it is the definition the CPU kernels (and later the GPU shaders) must meet.
//! - [`problem`]: one op with its parameters and input shapes ([`Problem`]), able to make
//!   its inputs, evaluate the reference and run the engine. The conformance table and the
//!   gradient checks are both lists of problems (ggml's test-backend-ops modes).
//! - [`data`]: seeded problem data, f16/bf16 quantisation, strided-view makers.
//! - [`compare`]: normalised error (NMSE), max error relative to scale, NaN/inf
//!   mismatches counted apart from numeric error, and the failure table.
//! - [`backend`]: every backend present in this build (CPU with the detected ISA, CPU
//!   portable; the GPU adds a variant).
//! - [`fd`]: central finite differences of the f64 reference.
//! - [`table`], [`strategy`]: conformance rows and proptest strategies shared with other
//!   harnesses; [`lab`]: `lamina kernel check` (a user's kernel through the conformance
//!   rows and a shrinking property run).

pub mod backend;
pub mod check;
pub mod compare;
pub mod data;
pub mod fd;
pub mod lab;
pub mod problem;
pub mod reference;
pub mod strategy;
pub mod table;
mod tensor;

pub use backend::Backend;
pub use compare::{compare, compare_on_scale, Comparison, Tol};
pub use data::{InputLayout, Values};
pub use problem::{Input, MaskSpec, Problem, Reduction};
pub use tensor::{broadcast_shape, ravel, strides, unravel, RefTensor};
