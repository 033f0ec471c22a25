//! A task's header: what kind of task it is, how its prompts are laid out and which
//! metrics it reports. The header is the first non-blank line of a task file, a JSON
//! object with `"lamina_task": 1`:
//!
//! ```json
//! {"lamina_task": 1, "name": "mc-arith", "kind": "multiple_choice", "metrics": ["acc", "acc_norm"]}
//! ```
//!
//! Every field but `lamina_task` and `kind` is optional; a field the kind does not use is
//! an error (a typo should not be silently ignored). Paths (`data`, `fewshot_data`, `text`,
//! `wordlist`) are relative to the task file.

use super::metric::Metric;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The version of the task-file format this build reads.
pub const FORMAT_VERSION: u64 = 1;

/// What a task measures and how its items are scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A context and choices, scored by log-likelihood (lm-evaluation-harness's multiple_choice).
    MultipleChoice,
    /// A grammatical and an ungrammatical sentence (BLiMP): is the grammatical one more likely?
    MinimalPairs,
    /// A stereotyping and a less stereotyping sentence (CrowS-Pairs): which is more likely?
    BiasPairs,
    /// A prompt and reference answers: the generated answer is scored against them.
    Generation,
    /// Harmful requests and harmless look-alikes: which does the model refuse?
    Refusal,
    /// Neutral and provocative prompts: how often is the answer toxic (by a word list)?
    Toxicity,
    /// Prompts whose context holds a planted secret: does the answer give it back?
    Privacy,
    /// Perplexity of a text, as llama-perplexity measures it.
    Perplexity,
    /// KL divergence from a base model on a text, as llama-perplexity --kl-divergence measures it.
    Kl,
    /// Time to first token, per-token latency, prefill and decode speed, peak memory.
    Efficiency,
    /// A list of other tasks, run in order.
    Group,
}

/// Every kind, for messages and tests.
pub const KINDS: [Kind; 11] = [
    Kind::MultipleChoice,
    Kind::MinimalPairs,
    Kind::BiasPairs,
    Kind::Generation,
    Kind::Refusal,
    Kind::Toxicity,
    Kind::Privacy,
    Kind::Perplexity,
    Kind::Kl,
    Kind::Efficiency,
    Kind::Group,
];

/// The header fields of a task that generates answers.
const DECODING: [&str; 7] =
    ["format", "stop", "max_tokens", "temperature", "target_delimiter", "fewshot_delimiter", "fewshot_data"];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::MultipleChoice => "multiple_choice",
            Kind::MinimalPairs => "minimal_pairs",
            Kind::BiasPairs => "bias_pairs",
            Kind::Generation => "generation",
            Kind::Refusal => "refusal",
            Kind::Toxicity => "toxicity",
            Kind::Privacy => "privacy",
            Kind::Perplexity => "perplexity",
            Kind::Kl => "kl",
            Kind::Efficiency => "efficiency",
            Kind::Group => "group",
        }
    }

    pub fn parse(name: &str) -> Result<Kind, String> {
        KINDS.iter().copied().find(|k| k.name() == name).ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|k| k.name()).collect();
            format!("unknown task kind `{name}` (known: {})", names.join(", "))
        })
    }

    /// Whether items are scored by comparing log-likelihoods of fixed texts.
    pub fn is_choice(self) -> bool {
        matches!(self, Kind::MultipleChoice | Kind::MinimalPairs | Kind::BiasPairs)
    }

    /// Whether the task has no items: it reads a text (`text`).
    pub fn reads_text(self) -> bool {
        matches!(self, Kind::Perplexity | Kind::Kl)
    }

    /// The header fields a task of this kind may have, besides the common ones.
    fn fields(self) -> Vec<&'static str> {
        match self {
            Kind::MultipleChoice => vec!["target_delimiter", "fewshot_delimiter", "fewshot_data", "format"],
            Kind::MinimalPairs | Kind::BiasPairs => vec!["target_delimiter"],
            Kind::Generation | Kind::Refusal => DECODING.to_vec(),
            Kind::Privacy => [&DECODING[..], &["patterns"]].concat(),
            Kind::Toxicity => [&DECODING[..], &["wordlist", "threshold"]].concat(),
            Kind::Efficiency => vec!["format", "max_tokens", "warmup"],
            Kind::Perplexity | Kind::Kl => vec!["text", "n_ctx", "chunks"],
            Kind::Group => vec!["tasks"],
        }
    }
}

/// How a prompt is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptFormat {
    /// Plain text, no special tokens added (lm-evaluation-harness's default for causal models).
    Raw,
    /// Through the model's chat template: few-shot examples as earlier turns.
    Chat,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TaskSpec {
    pub name: String,
    pub kind: Kind,
    /// Text put before every prompt (the harness's `description`).
    pub description: String,
    pub format: PromptFormat,
    /// The metrics to report, in the order given (default: all the kind has).
    pub metrics: Vec<Metric>,
    /// Where the items are, when not in the task file itself.
    pub data: Option<PathBuf>,
    /// Where few-shot examples come from, when not from the items marked `"split": "train"`.
    pub fewshot_data: Option<PathBuf>,
    /// Between a context and its answer (" " by default, as in the harness).
    pub target_delimiter: String,
    /// Between few-shot examples ("\n\n").
    pub fewshot_delimiter: String,
    /// For a group: the tasks it runs (names or paths).
    pub tasks: Vec<String>,
    /// How answers are generated (tasks that generate).
    pub decoding: Decoding,
    /// Toxicity: the word list (required) and the severity (1 to 3) at which an answer
    /// counts as toxic (default 2).
    pub wordlist: Option<PathBuf>,
    pub threshold: u8,
    /// Privacy: (name, regular expression) of what counts as personal data; empty: the defaults.
    pub patterns: Vec<(String, String)>,
    /// Perplexity and KL: the text, the chunk size in tokens and how many chunks at most.
    pub text: Option<PathBuf>,
    pub n_ctx: usize,
    pub chunks: Option<usize>,
    /// Efficiency: untimed runs first (page faults, caches).
    pub warmup: usize,
}

/// How a task's answers are generated.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoding {
    /// The answer ends before the first of these (lm-evaluation-harness's `until`).
    pub stop: Vec<String>,
    pub max_tokens: usize,
    /// 0: greedy; otherwise sampled with this temperature, seeded per item.
    pub temperature: f32,
}

/// Limits on header numbers: a typo should not ask for a billion tokens.
const MAX_TOKENS: usize = 4096;
const MAX_N_CTX: usize = 1 << 16;

/// The fields every kind may have.
const COMMON: [&str; 6] = ["lamina_task", "name", "kind", "description", "metrics", "data"];

impl TaskSpec {
    /// Parse a header. `dir` is the task file's directory (relative paths start there);
    /// `default_name` names a task whose header has no `name`.
    pub fn parse(header: &Value, dir: &Path, default_name: &str) -> Result<TaskSpec, String> {
        let Value::Object(obj) = header else {
            return Err("the first line must be the task header, a JSON object".into());
        };
        match obj.get("lamina_task") {
            Some(Value::Number(n)) if n.as_u64() == Some(FORMAT_VERSION) => {}
            Some(v) => return Err(format!("`lamina_task` is {v}: this build reads version {FORMAT_VERSION}")),
            None => {
                return Err("the first line is not a task header: it needs `\"lamina_task\": 1` and a `kind`".into())
            }
        }
        let kind = Kind::parse(&string(obj, "kind")?.ok_or("the header has no `kind`")?)?;
        check_fields(obj, kind)?;
        let path = |key: &str| -> Result<Option<PathBuf>, String> { Ok(string(obj, key)?.map(|p| dir.join(p))) };
        let spec = TaskSpec {
            name: string(obj, "name")?.unwrap_or_else(|| default_name.to_string()),
            kind,
            description: string(obj, "description")?.unwrap_or_default(),
            format: match string(obj, "format")?.as_deref() {
                None | Some("raw") => PromptFormat::Raw,
                Some("chat") => PromptFormat::Chat,
                Some(other) => return Err(format!("unknown `format` `{other}` (raw or chat)")),
            },
            metrics: metrics(obj, kind)?,
            data: path("data")?,
            fewshot_data: path("fewshot_data")?,
            target_delimiter: string(obj, "target_delimiter")?.unwrap_or_else(|| " ".into()),
            fewshot_delimiter: string(obj, "fewshot_delimiter")?.unwrap_or_else(|| "\n\n".into()),
            tasks: strings(obj, "tasks")?.unwrap_or_default(),
            decoding: Decoding {
                stop: strings(obj, "stop")?.unwrap_or_default(),
                max_tokens: number(obj, "max_tokens", 1, MAX_TOKENS)?.unwrap_or(if kind == Kind::Efficiency {
                    64
                } else {
                    128
                }),
                temperature: match obj.get("temperature") {
                    None | Some(Value::Null) => 0.0,
                    Some(v) => match v.as_f64() {
                        Some(t) if (0.0..=10.0).contains(&t) => t as f32,
                        _ => return Err(format!("`temperature` must be a number from 0 to 10, got {v}")),
                    },
                },
            },
            wordlist: path("wordlist")?,
            threshold: number(obj, "threshold", 1, 3)?.unwrap_or(2) as u8,
            patterns: patterns(obj)?,
            text: path("text")?,
            n_ctx: number(obj, "n_ctx", 4, MAX_N_CTX)?.unwrap_or(512),
            chunks: number(obj, "chunks", 1, usize::MAX)?,
            warmup: number(obj, "warmup", 0, 16)?.unwrap_or(1),
        };
        if kind.reads_text() && spec.text.is_none() {
            return Err(format!("a {} task needs `text`: the file to score", kind.name()));
        }
        if kind == Kind::Group && spec.tasks.is_empty() {
            return Err("a group needs `tasks`: a non-empty list of task names or files".into());
        }
        Ok(spec)
    }
}

/// Refuse fields this kind does not use (naming the ones it does).
fn check_fields(obj: &Map<String, Value>, kind: Kind) -> Result<(), String> {
    let own = kind.fields();
    let known = |k: &str| COMMON.contains(&k) || own.contains(&k);
    if let Some(bad) = obj.keys().find(|k| !known(k)) {
        let mut names: Vec<&str> = COMMON.iter().chain(&own).copied().collect();
        names.sort_unstable();
        return Err(format!("unknown field `{bad}` for a {} task (known: {})", kind.name(), names.join(", ")));
    }
    Ok(())
}

fn metrics(obj: &Map<String, Value>, kind: Kind) -> Result<Vec<Metric>, String> {
    let Some(names) = strings(obj, "metrics")? else { return Ok(Metric::of(kind)) };
    if names.is_empty() {
        return Err("`metrics` is empty: leave it out to report every metric of the kind".into());
    }
    names.iter().map(|n| Metric::parse(n, kind)).collect()
}

/// `"patterns": {"name": "regex", ...}` as (name, regex) pairs, sorted by name.
fn patterns(obj: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    match obj.get("patterns") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(re) => Ok((k.clone(), re.clone())),
                _ => Err(format!("`patterns.{k}` must be a regular expression (a string), got {v}")),
            })
            .collect(),
        Some(v) => Err(format!("`patterns` must be a non-empty object of name: regular expression, got {v}")),
    }
}

/// An optional whole number in `lo..=hi`.
fn number(obj: &Map<String, Value>, key: &str, lo: usize, hi: usize) -> Result<Option<usize>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (lo as u64..=hi as u64).contains(&n) => Ok(Some(n as usize)),
            _ => Err(format!("`{key}` must be a whole number from {lo} to {hi}, got {v}")),
        },
    }
}

/// An optional string field.
pub(crate) fn string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("`{key}` must be a string, got {v}")),
    }
}

/// An optional list of strings.
pub(crate) fn strings(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from).ok_or_else(|| format!("`{key}` must hold strings, got {v}")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => Err(format!("`{key}` must be a list of strings, got {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<TaskSpec, String> {
        TaskSpec::parse(&v, Path::new("/tasks"), "file-name")
    }

    #[test]
    fn defaults_follow_the_harness() {
        let t = parse(json!({"lamina_task": 1, "kind": "multiple_choice"})).unwrap();
        assert_eq!(t.name, "file-name");
        assert_eq!(t.target_delimiter, " ");
        assert_eq!(t.fewshot_delimiter, "\n\n");
        assert_eq!(t.format, PromptFormat::Raw);
        assert_eq!(t.metrics, vec![Metric::Acc, Metric::AccNorm]);
        let t = parse(json!({"lamina_task": 1, "kind": "minimal_pairs", "data": "x.jsonl"})).unwrap();
        assert_eq!(t.metrics, vec![Metric::Acc]);
        assert_eq!(t.data.as_deref(), Some(Path::new("/tasks/x.jsonl")));
        let t = parse(json!({"lamina_task": 1, "kind": "generation", "stop": ["\n"], "metrics": ["f1"]})).unwrap();
        assert_eq!(t.decoding, Decoding { stop: vec!["\n".into()], max_tokens: 128, temperature: 0.0 });
        assert_eq!(t.metrics, vec![Metric::F1]);
        let t = parse(json!({"lamina_task": 1, "kind": "perplexity", "text": "c.txt", "chunks": 4})).unwrap();
        assert_eq!((t.n_ctx, t.chunks, t.text.unwrap()), (512, Some(4), PathBuf::from("/tasks/c.txt")));
    }

    #[test]
    fn bad_headers_say_what_is_wrong() {
        let cases = [
            (json!({"kind": "multiple_choice"}), "not a task header"),
            (json!({"lamina_task": 2, "kind": "multiple_choice"}), "version 1"),
            (json!({"lamina_task": 1}), "no `kind`"),
            (json!({"lamina_task": 1, "kind": "essay"}), "unknown task kind `essay`"),
            (json!({"lamina_task": 1, "kind": "multiple_choice", "metrics": ["acc", "bleu"]}), "unknown metric `bleu`"),
            (json!({"lamina_task": 1, "kind": "multiple_choice", "metrics": []}), "`metrics` is empty"),
            (json!({"lamina_task": 1, "kind": "multiple_choice", "stop": ["\n"]}), "unknown field `stop`"),
            (json!({"lamina_task": 1, "kind": "multiple_choice", "format": "jinja"}), "unknown `format`"),
            (json!({"lamina_task": 1, "kind": "multiple_choice", "name": 3}), "`name` must be a string"),
            (json!({"lamina_task": 1, "kind": "group"}), "needs `tasks`"),
            (
                json!({"lamina_task": 1, "kind": "generation", "max_tokens": 0}),
                "`max_tokens` must be a whole number from 1",
            ),
            (json!({"lamina_task": 1, "kind": "generation", "max_tokens": 1e12}), "`max_tokens`"),
            (json!({"lamina_task": 1, "kind": "generation", "temperature": -1}), "`temperature`"),
            (json!({"lamina_task": 1, "kind": "toxicity", "threshold": 4}), "`threshold`"),
            (json!({"lamina_task": 1, "kind": "perplexity"}), "needs `text`"),
            (json!({"lamina_task": 1, "kind": "generation", "stop": "\n"}), "`stop` must be a list"),
            (json!({"lamina_task": 1, "kind": "efficiency", "stop": ["x"]}), "unknown field `stop`"),
            (json!([1, 2]), "JSON object"),
        ];
        for (v, want) in cases {
            let e = parse(v.clone()).unwrap_err();
            assert!(e.contains(want), "{v}: {e}");
        }
    }
}
