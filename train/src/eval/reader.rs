//! Reading a task file: the header (first non-blank line), then its items, or the items of
//! the file its `data` names; few-shot examples from `"split": "train"` items or the file
//! `fewshot_data` names. Any bad line is an error naming the file and the line: a score over
//! silently skipped items would not be the score of the task.

use super::error::{EvalError, Result};
use super::item::{parse_item, Item};
use super::task::{Kind, TaskSpec};
use std::path::{Path, PathBuf};

/// Task files larger than this are refused (the shipped ones are a few tens of KiB).
pub const MAX_TASK_BYTES: u64 = 256 << 20;

#[derive(Clone, Debug)]
pub struct Task {
    pub spec: TaskSpec,
    pub path: PathBuf,
    /// The items to evaluate, in file order.
    pub items: Vec<Item>,
    /// Few-shot examples.
    pub fewshot: Vec<Item>,
}

/// Read the task file at `path`.
pub fn read_task(path: &Path) -> Result<Task> {
    let shown = path.display().to_string();
    let text = read_text(path)?;
    let mut lines = numbered(&text);
    let Some((header_line, header)) = lines.next() else {
        return Err(EvalError::task(&shown, None, "empty file: a task file starts with its header line"));
    };
    let header: serde_json::Value = serde_json::from_str(header)
        .map_err(|e| EvalError::task(&shown, Some(header_line), format!("the header is not valid JSON: {e}")))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let spec = TaskSpec::parse(&header, dir, &stem).map_err(|m| EvalError::task(&shown, Some(header_line), m))?;

    if spec.kind == Kind::Group || spec.kind.reads_text() {
        if let Some((n, line)) = lines.next() {
            let message = parse_item(line, n, spec.kind).err().unwrap_or_default();
            return Err(EvalError::task(&shown, Some(n), message));
        }
        return Ok(Task { spec, path: path.to_path_buf(), items: Vec::new(), fewshot: Vec::new() });
    }
    let mut all = parse_items(lines, &shown, spec.kind)?;
    if let Some(data) = &spec.data {
        if !all.is_empty() {
            return Err(EvalError::task(&shown, Some(all[0].line), "items here and a `data` file: which is meant?"));
        }
        let data_shown = data.display().to_string();
        all = parse_items(numbered(&read_text(data)?), &data_shown, spec.kind)?;
    }
    let (mut fewshot, items): (Vec<Item>, Vec<Item>) = all.into_iter().partition(|i| i.train);
    if let Some(extra) = &spec.fewshot_data {
        let extra_shown = extra.display().to_string();
        fewshot.extend(parse_items(numbered(&read_text(extra)?), &extra_shown, spec.kind)?);
    }
    if items.is_empty() {
        let source = spec.data.as_ref().map_or(shown.clone(), |d| d.display().to_string());
        return Err(EvalError::task(&source, None, "no items to evaluate (only a header, or only train items)"));
    }
    Ok(Task { spec, path: path.to_path_buf(), items, fewshot })
}

/// Non-blank lines with their 1-based numbers.
fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l)).filter(|(_, l)| !l.trim().is_empty())
}

fn parse_items<'a>(lines: impl Iterator<Item = (usize, &'a str)>, shown: &str, kind: Kind) -> Result<Vec<Item>> {
    lines.map(|(n, l)| parse_item(l, n, kind).map_err(|m| EvalError::task(shown, Some(n), m))).collect()
}

/// A task file or the file its header names, which may be anything: only a regular file
/// is read (a FIFO would block and `/dev/zero` never end), and at most `MAX_TASK_BYTES`
/// of it, however large it says it is.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let shown = path.display().to_string();
    let fail = |m: String| EvalError::task(&shown, None, m);
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file: a task's items are read from a file".into()));
    }
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_TASK_BYTES + 1).read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_TASK_BYTES {
        return Err(fail(format!("larger than {MAX_TASK_BYTES} bytes")));
    }
    // A UTF-8 byte-order mark (editors on Windows write one) is not part of the header.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        EvalError::task(&shown, Some(line), "not UTF-8 text")
    })
}

/// The task file a name on the command line means: an existing path as given, else
/// `<dir>/<name>.jsonl` in the first of `dirs` that has it.
pub fn resolve(name: &str, dirs: &[PathBuf]) -> Result<PathBuf> {
    let given = Path::new(name);
    if given.is_file() {
        return Ok(given.to_path_buf());
    }
    if let Some(p) = dirs.iter().map(|d| d.join(format!("{name}.jsonl"))).find(|p| p.is_file()) {
        return Ok(p);
    }
    let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(EvalError::Config(format!(
        "no task `{name}`: not a file, and no {name}.jsonl in {}",
        if looked.is_empty() { "any task directory".into() } else { looked.join(", ") }
    )))
}

/// The tasks `names` mean, groups expanded in place (members looked up next to the group
/// file first), each file once, in order.
pub fn expand(names: &[String], dirs: &[PathBuf]) -> Result<Vec<Task>> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for name in names {
        expand_into(name, dirs, &mut out, &mut seen, 0)?;
    }
    Ok(out)
}

fn expand_into(name: &str, dirs: &[PathBuf], out: &mut Vec<Task>, seen: &mut Vec<PathBuf>, depth: usize) -> Result<()> {
    if depth > 8 {
        return Err(EvalError::Config(format!("task `{name}`: groups nested more than 8 deep (a cycle?)")));
    }
    let path = resolve(name, dirs)?;
    let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
    if seen.contains(&canonical) {
        return Ok(());
    }
    let task = read_task(&path)?;
    if task.spec.kind != Kind::Group {
        seen.push(canonical);
        out.push(task);
        return Ok(());
    }
    let mut member_dirs = vec![path.parent().unwrap_or(Path::new(".")).to_path_buf()];
    member_dirs.extend(dirs.iter().cloned());
    for member in &task.spec.tasks {
        expand_into(member, &member_dirs, out, seen, depth + 1)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lamina-eval-reader-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const HEADER: &str = r#"{"lamina_task": 1, "kind": "multiple_choice"}"#;
    const ITEM: &str = r#"{"context": "2+2=", "choices": ["4", "5"], "answer": 0}"#;

    #[test]
    fn reads_items_few_shot_examples_and_data_files() {
        let d = tmp("good");
        let train = r#"{"context": "1+1=", "choices": ["2", "3"], "answer": 0, "split": "train"}"#;
        let p = write(&d, "t.jsonl", &format!("\n{HEADER}\n{ITEM}\n\n{train}\n{ITEM}\n"));
        let t = read_task(&p).unwrap();
        assert_eq!(t.spec.name, "t");
        assert_eq!(t.items.iter().map(|i| i.line).collect::<Vec<_>>(), [3, 6]);
        assert_eq!(t.fewshot.len(), 1);
        write(&d, "items.jsonl", &format!("{ITEM}\n{ITEM}\n{ITEM}\n"));
        let p = write(&d, "ref.jsonl", r#"{"lamina_task": 1, "kind": "multiple_choice", "data": "items.jsonl"}"#);
        assert_eq!(read_task(&p).unwrap().items.len(), 3);
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn bad_files_name_the_file_and_line() {
        let d = tmp("bad");
        let cases = [
            ("empty.jsonl", "\n  \n".to_string(), "empty file"),
            ("header.jsonl", "{not json\n".to_string(), "line 1: the header is not valid JSON"),
            ("nohead.jsonl", format!("{ITEM}\n"), "line 1: the first line is not a task header"),
            (
                "metric.jsonl",
                r#"{"lamina_task": 1, "kind": "multiple_choice", "metrics": ["f2"]}"#.to_string(),
                "unknown metric `f2`",
            ),
            ("badline.jsonl", format!("{HEADER}\n{ITEM}\n\n{{\"context\": oops}}\n"), "line 4: not valid JSON"),
            (
                "missing.jsonl",
                format!("{HEADER}\n{{\"context\": \"x\", \"answer\": 0}}\n"),
                "line 2: missing `choices`",
            ),
            ("onlyhead.jsonl", format!("{HEADER}\n"), "no items to evaluate"),
            (
                "data.jsonl",
                r#"{"lamina_task": 1, "kind": "minimal_pairs", "data": "nope.jsonl"}"#.to_string(),
                "nope.jsonl",
            ),
        ];
        for (name, text, want) in cases {
            let p = write(&d, name, &text);
            let e = read_task(&p).unwrap_err().to_string();
            assert!(e.contains(want), "{name}: {e}");
            assert!(e.contains(name) || name == "data.jsonl", "{name}: {e}");
        }
        let p = d.join("latin1.jsonl");
        std::fs::write(&p, b"{\"lamina_task\": 1, \"kind\": \"multiple_choice\"}\n{\"context\": \"caf\xe9\"}\n")
            .unwrap();
        assert!(read_task(&p).unwrap_err().to_string().contains("line 2: not UTF-8"));
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn groups_expand_in_order_once() {
        let d = tmp("group");
        write(&d, "a.jsonl", &format!("{HEADER}\n{ITEM}\n"));
        write(&d, "b.jsonl", &format!("{HEADER}\n{ITEM}\n"));
        write(&d, "g.jsonl", r#"{"lamina_task": 1, "kind": "group", "tasks": ["b", "a"]}"#);
        write(&d, "loop.jsonl", r#"{"lamina_task": 1, "kind": "group", "tasks": ["loop"]}"#);
        let dirs = vec![d.clone()];
        let names: Vec<String> = ["g", "a", "b"].iter().map(|s| s.to_string()).collect();
        let tasks = expand(&names, &dirs).unwrap();
        assert_eq!(tasks.iter().map(|t| t.spec.name.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert!(expand(&["loop".to_string()], &dirs).unwrap_err().to_string().contains("nested"));
        let e = expand(&["nope".to_string()], &dirs).unwrap_err().to_string();
        assert!(e.contains("no task `nope`"), "{e}");
        std::fs::remove_dir_all(d).unwrap();
    }
}
