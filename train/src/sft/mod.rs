//! Supervised fine-tuning data: JSONL examples (`jsonl`) encoded to tokens with a loss
//! mask that scores only what the model should learn to write (`encode`), split into
//! training and validation (`split`), served in seeded, length-bucketed, resumable batches
//! (`batcher`), and exact-match evaluation by greedy generation (`eval`). Every bad line
//! is counted in a `DataReport` (`report`) or, with `strict`, is an error.

pub mod batcher;
pub mod encode;
pub mod eval;
pub mod jsonl;
pub mod report;
pub mod split;

pub use batcher::{eval_batches, Batch, BatchPosition, Batcher, BatcherConfig};
pub use encode::{pad_id, EncodeOptions, Encoded, Encoder, EvalPrompt, PromptFormat, IGNORE};
pub use eval::{evaluate, exact_match, EvalOptions, EvalRecord, EvalReport};
pub use jsonl::{parse_line, read_examples, read_examples_from, Example, Record};
pub use report::{DataReport, Problem, SftError, SkipReason};
pub use split::{split_validation, Validation};

use std::path::Path;

/// Read and encode a JSONL file: the examples that came through and what happened to the rest.
pub fn load_encoded(path: &Path, encoder: &Encoder, strict: bool) -> Result<(Vec<Encoded>, DataReport), SftError> {
    let (records, mut report) = read_examples(path, strict)?;
    let encoded = encoder.encode_all(&records, &mut report, strict, &path.display().to_string())?;
    Ok((encoded, report))
}

/// Training and validation examples, with a report per file read.
#[derive(Debug)]
pub struct SftData {
    pub train: Vec<Encoded>,
    pub validation: Vec<Encoded>,
    pub train_report: DataReport,
    /// Only when validation came from a file of its own.
    pub validation_report: Option<DataReport>,
}

/// The training file, and validation data as `validation` says.
pub fn load_split(
    train_path: &Path,
    validation: &Validation,
    encoder: &Encoder,
    strict: bool,
) -> Result<SftData, SftError> {
    let (all, train_report) = load_encoded(train_path, encoder, strict)?;
    if all.is_empty() {
        return Err(SftError::Config(format!(
            "{}: no usable training example ({}); {}",
            train_path.display(),
            train_report.summary(),
            train_report.problem_lines(3).join("; ")
        )));
    }
    let (train, validation, validation_report) = match validation {
        Validation::Off => (all, Vec::new(), None),
        Validation::Fraction { fraction, seed } => {
            let (t, v) = split_validation(all, *fraction, *seed)?;
            (t, v, None)
        }
        Validation::File(path) => {
            let (v, report) = load_encoded(path, encoder, strict)?;
            (all, v, Some(report))
        }
    };
    Ok(SftData { train, validation, train_report, validation_report })
}
