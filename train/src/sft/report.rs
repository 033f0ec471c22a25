//! What reading and encoding a data file did: how many lines were read and kept, how
//! many were skipped and why (with the line numbers), how many were truncated. Nothing is
//! dropped without being counted here; with `strict` the first problem is an error instead.

use lamina_model::ModelError;
use std::collections::BTreeMap;
use std::fmt;

/// Why an example was left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// Not JSON, or not UTF-8.
    InvalidJson,
    /// Not an object, a missing field, a field of the wrong type, or fields of two shapes.
    BadFields,
    /// Empty (or whitespace-only) text, prompt, completion or message content.
    EmptyText,
    /// A message role other than system, user and assistant.
    UnknownRole,
    /// A conversation with no assistant turn: nothing to learn or score.
    NoAssistantTurn,
    /// Content holding the text of a control token (`<|im_end|>`, ...), which would forge
    /// turn boundaries once the rendered conversation is tokenized.
    SpecialTokenText,
    /// The chat template refused the conversation, or its rendering of a prefix of the
    /// conversation is not a prefix of its rendering of the whole.
    Template,
    /// The tokenizer failed on the text.
    Tokenizer,
    /// Nothing left to score once cut to `max_len` tokens.
    NothingScored,
    /// Evaluation only: the example has no reference answer (a `text` example).
    NoReference,
    /// Evaluation only: the prompt does not fit the context.
    PromptTooLong,
}

impl SkipReason {
    pub const ALL: [SkipReason; 11] = [
        SkipReason::InvalidJson,
        SkipReason::BadFields,
        SkipReason::EmptyText,
        SkipReason::UnknownRole,
        SkipReason::NoAssistantTurn,
        SkipReason::SpecialTokenText,
        SkipReason::Template,
        SkipReason::Tokenizer,
        SkipReason::NothingScored,
        SkipReason::NoReference,
        SkipReason::PromptTooLong,
    ];

    /// A short snake_case name (JSON keys, tables).
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::InvalidJson => "invalid_json",
            SkipReason::BadFields => "bad_fields",
            SkipReason::EmptyText => "empty_text",
            SkipReason::UnknownRole => "unknown_role",
            SkipReason::NoAssistantTurn => "no_assistant_turn",
            SkipReason::SpecialTokenText => "special_token_text",
            SkipReason::Template => "template",
            SkipReason::Tokenizer => "tokenizer",
            SkipReason::NothingScored => "nothing_scored",
            SkipReason::NoReference => "no_reference",
            SkipReason::PromptTooLong => "prompt_too_long",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One skipped example: where it was, why, and what exactly was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line number in the file.
    pub line: usize,
    pub reason: SkipReason,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} ({})", self.line, self.message, self.reason)
    }
}

/// At most this many problems keep their message; the counts go on past it (a file of a
/// million bad lines must not become a million strings).
pub const MAX_PROBLEMS_KEPT: usize = 1000;

/// Counts for one data file. `read = kept + skipped_total()`; blank lines are not examples
/// and are not counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataReport {
    /// Non-blank lines read.
    pub read: usize,
    /// Examples that came through.
    pub kept: usize,
    pub skipped: BTreeMap<SkipReason, usize>,
    /// The first `MAX_PROBLEMS_KEPT` skipped examples, in file order.
    pub problems: Vec<Problem>,
    /// Kept examples cut to `max_len` tokens.
    pub truncated: usize,
    /// Kept examples whose pieces (prompt, answer, ...), tokenized one by one as inference
    /// sees them, differ from the tokens of the whole text: BPE merged across a boundary.
    /// Not an error (the pieces are what the model sees at inference), but worth knowing.
    pub boundary_merges: usize,
}

impl DataReport {
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }

    pub fn skip(&mut self, problem: Problem) {
        *self.skipped.entry(problem.reason).or_default() += 1;
        if self.problems.len() < MAX_PROBLEMS_KEPT {
            self.problems.push(problem);
        }
    }

    /// One line: "read 12, kept 10, skipped 2 (invalid_json 1, empty_text 1), truncated 0".
    pub fn summary(&self) -> String {
        let mut s = format!("read {}, kept {}, skipped {}", self.read, self.kept, self.skipped_total());
        if !self.skipped.is_empty() {
            let parts: Vec<String> = self.skipped.iter().map(|(r, n)| format!("{r} {n}")).collect();
            s += &format!(" ({})", parts.join(", "));
        }
        s += &format!(", truncated {}", self.truncated);
        if self.boundary_merges > 0 {
            s += &format!(", {} with BPE merges across piece boundaries", self.boundary_merges);
        }
        s
    }

    /// The first `max` problems, one per line ("line 3: not valid JSON: ... (invalid_json)"),
    /// and how many more there are; empty when nothing was skipped.
    pub fn problem_lines(&self, max: usize) -> Vec<String> {
        let mut lines: Vec<String> = self.problems.iter().take(max).map(|p| p.to_string()).collect();
        let more = self.skipped_total().saturating_sub(lines.len());
        if more > 0 {
            lines.push(format!("... and {more} more"));
        }
        lines
    }

    pub fn to_json(&self) -> serde_json::Value {
        let skipped: serde_json::Map<String, serde_json::Value> =
            self.skipped.iter().map(|(r, n)| (r.name().to_string(), (*n).into())).collect();
        let problems: Vec<serde_json::Value> = self
            .problems
            .iter()
            .map(|p| serde_json::json!({"line": p.line, "reason": p.reason.name(), "message": p.message}))
            .collect();
        serde_json::json!({
            "read": self.read, "kept": self.kept, "skipped": skipped, "problems": problems,
            "truncated": self.truncated, "boundary_merges": self.boundary_merges,
        })
    }
}

/// Errors of the fine-tuning data pipeline.
#[derive(Debug)]
pub enum SftError {
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A bad example under `strict`.
    Strict {
        path: String,
        problem: Problem,
    },
    /// Options that cannot work (a zero batch size, a fraction outside (0, 1), ...).
    Config(String),
    Model(ModelError),
}

impl fmt::Display for SftError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SftError::Io { path, source } => write!(f, "{path}: {source}"),
            SftError::Strict { path, problem } => write!(f, "{path}: {problem}"),
            SftError::Config(m) => f.write_str(m),
            SftError::Model(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SftError {}

impl From<ModelError> for SftError {
    fn from(e: ModelError) -> Self {
        SftError::Model(e)
    }
}

impl From<lamina_tensor::Error> for SftError {
    fn from(e: lamina_tensor::Error) -> Self {
        SftError::Model(ModelError::from(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_messages_are_capped() {
        let mut r = DataReport { read: MAX_PROBLEMS_KEPT + 7, kept: 5, ..Default::default() };
        for i in 0..MAX_PROBLEMS_KEPT + 2 {
            let reason = if i % 2 == 0 { SkipReason::InvalidJson } else { SkipReason::EmptyText };
            r.skip(Problem { line: i + 1, reason, message: "x".into() });
        }
        assert_eq!(r.skipped_total() + r.kept, r.read);
        assert_eq!(r.problems.len(), MAX_PROBLEMS_KEPT);
        assert_eq!(r.skipped[&SkipReason::InvalidJson], MAX_PROBLEMS_KEPT / 2 + 1);
        let s = r.summary();
        assert!(s.contains("skipped 1002") && s.contains("invalid_json 501"), "{s}");
        assert_eq!(r.to_json()["skipped"]["empty_text"], 501);
    }

    #[test]
    fn reason_names_are_distinct() {
        let names: std::collections::BTreeSet<_> = SkipReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), SkipReason::ALL.len());
    }
}
