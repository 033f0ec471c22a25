//! Errors of evaluation: a task file that cannot be used (with the file and line), a model
//! that fails, or options that cannot work.

use lamina_model::ModelError;
use std::fmt;

#[derive(Debug)]
pub enum EvalError {
    /// A task file is unreadable or malformed. `line` is 1-based, absent for whole-file problems.
    Task {
        path: String,
        line: Option<usize>,
        message: String,
    },
    /// Options that cannot work (`--limit 0`, a task that needs `--kl-base` without one, ...).
    Config(String),
    Model(ModelError),
}

impl EvalError {
    pub fn task(path: &str, line: Option<usize>, message: impl Into<String>) -> EvalError {
        EvalError::Task { path: path.to_string(), line, message: message.into() }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Task { path, line: Some(n), message } => write!(f, "{path}: line {n}: {message}"),
            EvalError::Task { path, line: None, message } => write!(f, "{path}: {message}"),
            EvalError::Config(m) => f.write_str(m),
            EvalError::Model(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EvalError {}

impl From<ModelError> for EvalError {
    fn from(e: ModelError) -> Self {
        EvalError::Model(e)
    }
}

impl From<lamina_tensor::Error> for EvalError {
    fn from(e: lamina_tensor::Error) -> Self {
        EvalError::Model(ModelError::from(e))
    }
}

impl From<crate::sft::SftError> for EvalError {
    fn from(e: crate::sft::SftError) -> Self {
        match e {
            crate::sft::SftError::Model(m) => EvalError::Model(m),
            other => EvalError::Config(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, EvalError>;
