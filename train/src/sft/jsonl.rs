//! Reading fine-tuning data: one JSON object per line, in one of three shapes.
//!
//! - `{"text": "..."}`: plain text, every token learned;
//! - `{"prompt": "...", "completion": "...", "system": "..."?}`: a request and its answer,
//!   only the answer learned (`system` is optional);
//! - `{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}`: a
//!   conversation, only the assistant turns learned.
//!
//! Other keys (`"id"`, `"source"`, ...) are ignored. Blank lines are not examples; a
//! UTF-8 byte-order mark at the start of the file is skipped. A bad
//! line is skipped and counted in the `DataReport` with its line number and what is wrong,
//! or, with `strict`, stops the read with that error.

use super::report::{DataReport, Problem, SftError, SkipReason};
use lamina_model::chat::Message;
use serde_json::{Map, Value};
use std::io::BufRead;
use std::path::Path;

/// One training or test example as the file gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Example {
    Text(String),
    PromptCompletion { system: Option<String>, prompt: String, completion: String },
    Chat(Vec<Message>),
}

/// An example and the line it came from (1-based), for messages that point back at the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub example: Example,
}

pub const ROLES: [&str; 3] = ["system", "user", "assistant"];

/// A line's example, or why it is not one.
pub fn parse_line(line: &str) -> Result<Example, (SkipReason, String)> {
    let value: Value =
        serde_json::from_str(line).map_err(|e| (SkipReason::InvalidJson, format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err((SkipReason::BadFields, format!("expected a JSON object, got {}", kind(&value))));
    };
    let has = |k: &str| obj.contains_key(k);
    let shapes = [has("text"), has("prompt") || has("completion"), has("messages")];
    match shapes {
        [true, false, false] => Ok(Example::Text(text_field(&obj, "text")?)),
        [false, true, false] => Ok(Example::PromptCompletion {
            system: match obj.get("system") {
                None | Some(Value::Null) => None,
                Some(_) => Some(text_field(&obj, "system")?),
            },
            prompt: text_field(&obj, "prompt")?,
            completion: text_field(&obj, "completion")?,
        }),
        [false, false, true] => parse_messages(&obj["messages"]).map(Example::Chat),
        [false, false, false] => {
            Err((SkipReason::BadFields, "no `text`, `prompt`/`completion` or `messages` field".to_string()))
        }
        _ => Err((
            SkipReason::BadFields,
            "fields of more than one shape (`text`, `prompt`/`completion`, `messages`): which one is meant?".into(),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required, non-blank string field.
fn text_field(obj: &Map<String, Value>, key: &str) -> Result<String, (SkipReason, String)> {
    match obj.get(key) {
        None => Err((SkipReason::BadFields, format!("missing `{key}`"))),
        Some(Value::String(s)) if s.trim().is_empty() => Err((SkipReason::EmptyText, format!("`{key}` is empty"))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err((SkipReason::BadFields, format!("`{key}` is {}, not a string", kind(v)))),
    }
}

fn parse_messages(v: &Value) -> Result<Vec<Message>, (SkipReason, String)> {
    let Value::Array(items) = v else {
        return Err((SkipReason::BadFields, format!("`messages` is {}, not an array", kind(v))));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err((SkipReason::BadFields, format!("messages[{i}] is {}, not an object", kind(item))));
        };
        let at = |(r, msg): (SkipReason, String)| (r, format!("messages[{i}]: {msg}"));
        let role = match m.get("role") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => return Err(at((SkipReason::BadFields, format!("`role` is {}, not a string", kind(other))))),
            None => return Err(at((SkipReason::BadFields, "missing `role`".into()))),
        };
        if !ROLES.contains(&role.as_str()) {
            return Err(at((
                SkipReason::UnknownRole,
                format!("unknown role {role:?} (expected system, user or assistant)"),
            )));
        }
        if role == "system" && i != 0 {
            return Err(at((SkipReason::BadFields, "a system message must come first".into())));
        }
        let content = text_field(m, "content").map_err(at)?;
        out.push(Message { role, content });
    }
    if !out.iter().any(|m| m.role == "assistant") {
        return Err((SkipReason::NoAssistantTurn, "no assistant turn: nothing to learn or to score".into()));
    }
    Ok(out)
}

/// Read every example of a JSONL stream. `name` labels errors (usually the path).
pub fn read_examples_from(
    mut reader: impl BufRead,
    name: &str,
    strict: bool,
) -> Result<(Vec<Record>, DataReport), SftError> {
    let mut records = Vec::new();
    let mut report = DataReport::default();
    let mut buf = Vec::new();
    // Lines as bytes: a line that is not UTF-8 is one bad example, not a failed read.
    for number in 1.. {
        let Some(line) = next_line(&mut reader, &mut buf, number, name)? else { break };
        // A UTF-8 byte-order mark (editors on Windows write one) is not part of line 1.
        let line = if number == 1 { line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line) } else { line };
        let parsed = match std::str::from_utf8(line) {
            Ok(s) if s.trim().is_empty() => continue,
            Ok(s) => parse_line(s),
            Err(e) => Err((SkipReason::InvalidJson, format!("not UTF-8: {e}"))),
        };
        report.read += 1;
        match parsed {
            Ok(example) => {
                report.kept += 1;
                records.push(Record { line: number, example });
            }
            Err((reason, message)) => {
                let problem = Problem { line: number, reason, message };
                if strict {
                    return Err(SftError::Strict { path: name.to_string(), problem });
                }
                report.skip(problem);
            }
        }
    }
    Ok((records, report))
}

/// The longest line read: one example is far smaller, and a file that is not JSONL (one
/// huge JSON array, a binary file, `/dev/zero`) must not be read into memory whole.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Line `number` without its newline, or `None` at the end of the stream; an error for a
/// line longer than [`MAX_LINE_BYTES`].
fn next_line<'b>(
    reader: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
    number: usize,
    name: &str,
) -> Result<Option<&'b [u8]>, SftError> {
    let io = |source| SftError::Io { path: name.to_string(), source };
    buf.clear();
    let n = std::io::Read::take(reader, MAX_LINE_BYTES as u64 + 1).read_until(b'\n', buf).map_err(io)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE_BYTES {
        let why = format!(
            "line {number} is longer than {} MiB: is this a JSONL file (one example per line)?",
            MAX_LINE_BYTES >> 20
        );
        return Err(io(std::io::Error::new(std::io::ErrorKind::InvalidData, why)));
    }
    Ok(Some(buf))
}

/// Read every example of a JSONL file.
pub fn read_examples(path: &Path, strict: bool) -> Result<(Vec<Record>, DataReport), SftError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| SftError::Io { path: name.clone(), source })?;
    read_examples_from(std::io::BufReader::new(file), &name, strict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_order_mark_does_not_spoil_line_one() {
        let text = "\u{FEFF}{\"text\": \"a\"}\n\u{FEFF}{\"text\": \"b\"}\n";
        let (records, report) = read_examples_from(text.as_bytes(), "bom", false).unwrap();
        assert_eq!(records.len(), 1, "line 1 kept");
        assert_eq!(report.problems[0].line, 2, "a mark inside the file is still an error: {report:?}");
    }

    fn reason(line: &str) -> SkipReason {
        parse_line(line).unwrap_err().0
    }

    #[test]
    fn the_three_shapes() {
        assert_eq!(parse_line(r#"{"text": "hello", "id": 3}"#).unwrap(), Example::Text("hello".into()));
        assert_eq!(
            parse_line(r#"{"prompt": "2+2?", "completion": "4"}"#).unwrap(),
            Example::PromptCompletion { system: None, prompt: "2+2?".into(), completion: "4".into() }
        );
        assert_eq!(
            parse_line(r#"{"system": "Be brief.", "prompt": "2+2?", "completion": "4"}"#).unwrap(),
            Example::PromptCompletion {
                system: Some("Be brief.".into()),
                prompt: "2+2?".into(),
                completion: "4".into()
            }
        );
        let chat = r#"{"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                       {"role": "assistant", "content": "A"}]}"#;
        assert_eq!(
            parse_line(chat).unwrap(),
            Example::Chat(vec![Message::new("system", "S"), Message::new("user", "U"), Message::new("assistant", "A")])
        );
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(reason("{not json"), SkipReason::InvalidJson);
        assert_eq!(reason("[1, 2]"), SkipReason::BadFields);
        assert_eq!(reason(r#"{"txt": "typo"}"#), SkipReason::BadFields);
        assert_eq!(reason(r#"{"text": 5}"#), SkipReason::BadFields);
        assert_eq!(reason(r#"{"text": "a", "messages": []}"#), SkipReason::BadFields);
        assert_eq!(reason(r#"{"prompt": "only a prompt"}"#), SkipReason::BadFields);
        assert_eq!(reason(r#"{"prompt": "p", "completion": "c", "system": 1}"#), SkipReason::BadFields);
        assert_eq!(reason(r#"{"text": "  \n"}"#), SkipReason::EmptyText);
        assert_eq!(reason(r#"{"prompt": "p", "completion": ""}"#), SkipReason::EmptyText);
        assert_eq!(reason(r#"{"messages": {"role": "user"}}"#), SkipReason::BadFields);
        assert_eq!(reason(r#"{"messages": ["hi"]}"#), SkipReason::BadFields);
        assert_eq!(reason(r#"{"messages": [{"content": "x"}]}"#), SkipReason::BadFields);
        assert_eq!(reason(r#"{"messages": [{"role": "tool", "content": "x"}]}"#), SkipReason::UnknownRole);
        assert_eq!(reason(r#"{"messages": [{"role": "user", "content": "x"}]}"#), SkipReason::NoAssistantTurn);
        assert_eq!(reason(r#"{"messages": []}"#), SkipReason::NoAssistantTurn);
        let late_system = r#"{"messages": [{"role": "user", "content": "x"}, {"role": "system", "content": "s"},
                              {"role": "assistant", "content": "a"}]}"#;
        assert_eq!(reason(late_system), SkipReason::BadFields);
        let empty_turn = r#"{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}"#;
        let (r, msg) = parse_line(empty_turn).unwrap_err();
        assert_eq!(r, SkipReason::EmptyText);
        assert!(msg.contains("messages[0]"), "{msg}");
    }

    const FILE: &[u8] = b"{\"text\": \"one\"}\n\n{oops\n{\"prompt\": \"p\", \"completion\": \"c\"}\n   \n\xff\xfe\n{\"text\": \"\"}\n{\"text\": \"last, no newline\"}";

    #[test]
    fn a_file_with_bad_lines_is_counted_line_by_line() {
        let (records, report) = read_examples_from(FILE, "mem", false).unwrap();
        assert_eq!(records.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 4, 8]);
        assert_eq!((report.read, report.kept, report.skipped_total()), (6, 3, 3));
        let lines: Vec<(usize, SkipReason)> = report.problems.iter().map(|p| (p.line, p.reason)).collect();
        assert_eq!(lines, [(3, SkipReason::InvalidJson), (6, SkipReason::InvalidJson), (7, SkipReason::EmptyText)]);
        assert!(report.problems[1].message.contains("UTF-8"));
    }

    #[test]
    fn strict_stops_at_the_first_bad_line() {
        let e = read_examples_from(FILE, "data.jsonl", true).unwrap_err().to_string();
        assert!(e.starts_with("data.jsonl: line 3:") && e.contains("invalid_json"), "{e}");
        assert!(read_examples(Path::new("/no/such/file.jsonl"), false).unwrap_err().to_string().contains("/no/such"));
    }
}
