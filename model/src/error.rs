//! Errors of model loading, tokenization and inference.

use std::fmt;

#[derive(Debug)]
pub enum ModelError {
    /// The file could not be opened or read.
    Io { path: String, source: std::io::Error },
    /// The file is not a well-formed model file: what is wrong and where.
    Format { what: &'static str, msg: String },
    /// The file is well-formed but uses something this build does not support.
    Unsupported(String),
    /// A required metadata key or tensor is missing or has the wrong type or shape.
    Missing(String),
    /// Tokenizer construction or use failed.
    Tokenizer(String),
    /// A bad request: an empty prompt, a context overflow, a bad sampling parameter.
    Invalid(String),
    /// A tensor op failed.
    Tensor(lamina_tensor::Error),
}

pub type Result<T> = std::result::Result<T, ModelError>;

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Io { path, source } => write!(f, "{path}: {source}"),
            ModelError::Format { what, msg } => write!(f, "malformed {what} file: {msg}"),
            ModelError::Unsupported(m) => write!(f, "unsupported: {m}"),
            ModelError::Missing(m) => write!(f, "{m}"),
            ModelError::Tokenizer(m) => write!(f, "tokenizer: {m}"),
            ModelError::Invalid(m) => write!(f, "{m}"),
            ModelError::Tensor(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ModelError {}

impl From<lamina_tensor::Error> for ModelError {
    fn from(e: lamina_tensor::Error) -> Self {
        ModelError::Tensor(e)
    }
}

pub(crate) fn format_err(what: &'static str, msg: impl Into<String>) -> ModelError {
    ModelError::Format { what, msg: msg.into() }
}

/// A hyperparameter that only makes sense positive and finite (an epsilon, a RoPE base) as
/// f32; anything else would turn every output into NaN, so it is refused by name.
pub(crate) fn positive(name: &str, v: f64) -> Result<f32> {
    let f = v as f32;
    if !(f.is_finite() && f > 0.0) {
        return Err(ModelError::Invalid(format!("{name} = {v} cannot be right: it must be a positive, finite number")));
    }
    Ok(f)
}
