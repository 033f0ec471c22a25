//! One error type for every fallible tensor operation. Each variant names the op and the
//! shapes or dtypes involved, so a message alone tells the user what went wrong.

use crate::{DType, Device};
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// Two shapes that had to agree (or broadcast) did not.
    ShapeMismatch { op: &'static str, lhs: Vec<usize>, rhs: Vec<usize> },
    /// An axis outside `0..rank` (negative axes count from the end).
    BadAxis { op: &'static str, axis: isize, rank: usize },
    /// Two dtypes that had to agree did not.
    DTypeMismatch { op: &'static str, lhs: DType, rhs: DType },
    /// The op has no kernel for this dtype.
    UnsupportedDType { op: &'static str, dtype: DType },
    /// Tensors on different devices were combined.
    DeviceMismatch { op: &'static str, lhs: Device, rhs: Device },
    /// An index value out of range (embedding ids, gather indices, narrow bounds).
    IndexOutOfRange { op: &'static str, index: i64, size: usize },
    /// A bad argument with an explanation (element count, probability, empty list...).
    InvalidArgument { op: &'static str, msg: String },
    /// Autograd misuse: backward from a non-scalar without a gradient, no graph, ...
    Autograd(String),
    /// The GPU device was lost (driver reset, removed adapter): every later call on it fails.
    DeviceLost(String),
    /// The CPU thread pool: a count that cannot be right, or threads the system cannot create.
    Threads(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: shape mismatch between {lhs:?} and {rhs:?}")
            }
            Error::BadAxis { op, axis, rank } => {
                write!(f, "{op}: axis {axis} is out of range for a tensor of rank {rank}")
            }
            Error::DTypeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: dtype mismatch between {lhs:?} and {rhs:?}")
            }
            Error::UnsupportedDType { op, dtype } => {
                write!(f, "{op}: dtype {dtype:?} is not supported by this op")
            }
            Error::DeviceMismatch { op, lhs, rhs } => {
                write!(f, "{op}: tensors are on different devices ({lhs:?} and {rhs:?})")
            }
            Error::IndexOutOfRange { op, index, size } => {
                write!(f, "{op}: index {index} is out of range for a dimension of size {size}")
            }
            Error::InvalidArgument { op, msg } => write!(f, "{op}: {msg}"),
            Error::Autograd(msg) => write!(f, "autograd: {msg}"),
            Error::DeviceLost(msg) => write!(f, "gpu: {msg}"),
            Error::Threads(msg) => write!(f, "threads: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) fn invalid(op: &'static str, msg: impl Into<String>) -> Error {
    Error::InvalidArgument { op, msg: msg.into() }
}
