//! `lamina info MODEL`: what a model file holds. Architecture, hyperparameters, tokenizer,
//! chat template, a quantization summary and the tensor table, for a GGUF file, a
//! safetensors file (or sharded index), or a Hugging Face model directory.
//!
//! Each format is read into one [`Report`]; the report is printed as text or JSON.

mod gguf;
mod hf;

use clap::Args;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// A .gguf file, a .safetensors file, a model.safetensors.index.json, or a Hugging Face
    /// model directory (config.json, tokenizer.json, *.safetensors).
    model: PathBuf,
    /// List every metadata key with its whole value (token lists are still summarised).
    #[arg(long)]
    metadata_all: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// What a model file holds, whatever its format.
#[derive(Default)]
struct Report {
    path: String,
    /// E.g. "GGUF v3".
    format: String,
    file_bytes: u64,
    name: Option<String>,
    architecture: Option<String>,
    /// (key, value) in display order; keys are snake_case.
    hyperparameters: Vec<(String, Value)>,
    tokenizer: Vec<(String, Value)>,
    /// (name, template): the default template is named "default".
    chat_templates: Vec<(String, String)>,
    tensors: Vec<TensorRow>,
    /// Every metadata key, its value summarised or (with --metadata-all) whole.
    metadata: Vec<(String, Shown)>,
}

/// A metadata value as listed: whole, or summarised (long strings and arrays cut short).
enum Shown {
    Whole(Value),
    Summary(String),
}

impl Shown {
    fn to_json(&self) -> Value {
        match self {
            Shown::Whole(v) => v.clone(),
            Shown::Summary(s) => Value::from(s.as_str()),
        }
    }
}

struct TensorRow {
    name: String,
    ty: String,
    /// Row-major, outermost first.
    shape: Vec<usize>,
    params: u64,
    bytes: u64,
}

pub fn run(args: InfoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let report = read(&args.model, args.metadata_all)?;
    let text = if args.json { serde_json::to_string_pretty(&to_json(&report))? + "\n" } else { to_text(&report) };
    // `lamina info m.gguf | head` closes the pipe early; that is not an error.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn read(path: &Path, metadata_all: bool) -> Result<Report, Box<dyn std::error::Error>> {
    let mut report = if path.is_dir() {
        hf::directory(path, metadata_all)?
    } else if is_gguf(path)? || has_extension(path, "gguf") {
        // A .gguf without the magic (empty, truncated, random) gets the GGUF parser's
        // error, not the safetensors one.
        gguf::report(path, metadata_all)?
    } else {
        hf::safetensors(path, metadata_all)?
    };
    report.path = path.display().to_string();
    Ok(report)
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// GGUF by its magic bytes, whatever the file is called.
fn is_gguf(path: &Path) -> Result<bool, Box<dyn std::error::Error>> {
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = f.read(&mut magic).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(n == 4 && &magic == b"GGUF")
}

/// Tensors, parameters and bytes per type, most bytes first.
fn type_summary(tensors: &[TensorRow]) -> Vec<(String, usize, u64, u64)> {
    let mut by_type: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    for t in tensors {
        let e = by_type.entry(&t.ty).or_default();
        *e = (e.0 + 1, e.1 + t.params, e.2 + t.bytes);
    }
    let mut rows: Vec<_> = by_type.into_iter().map(|(ty, (n, p, b))| (ty.to_string(), n, p, b)).collect();
    rows.sort_by(|a, b| b.3.cmp(&a.3).then(a.0.cmp(&b.0)));
    rows
}

fn bits_per_weight(params: u64, bytes: u64) -> f64 {
    if params == 0 {
        0.0
    } else {
        bytes as f64 * 8.0 / params as f64
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

fn human_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.2} K", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} M", n as f64 / 1e6),
        _ => format!("{:.2} B", n as f64 / 1e9),
    }
}

/// A value as text: strings as they are, everything else as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn to_text(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "file          {} ({})", r.path, human_bytes(r.file_bytes));
    let _ = writeln!(w, "format        {}", r.format);
    if let Some(name) = &r.name {
        let _ = writeln!(w, "name          {name}");
    }
    let _ = writeln!(w, "architecture  {}", r.architecture.as_deref().unwrap_or("unknown"));
    for (title, rows) in [("hyperparameters", &r.hyperparameters), ("tokenizer", &r.tokenizer)] {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(w, "\n{title}");
        for (k, v) in rows {
            let _ = writeln!(w, "  {:<24}{}", k.replace('_', " "), plain(v));
        }
    }
    for (name, template) in &r.chat_templates {
        let title = if name == "default" { "chat template".to_string() } else { format!("chat template `{name}`") };
        let _ = writeln!(w, "\n{title} ({} chars)\n{}", template.chars().count(), template.trim_end());
    }

    let total_params: u64 = r.tensors.iter().map(|t| t.params).sum();
    let total_bytes: u64 = r.tensors.iter().map(|t| t.bytes).sum();
    let _ = writeln!(w, "\nquantization");
    let _ = writeln!(w, "  {:<8} {:>7} {:>12} {:>12} {:>7}", "type", "tensors", "params", "bytes", "bpw");
    for (ty, n, p, b) in type_summary(&r.tensors) {
        let bpw = bits_per_weight(p, b);
        let _ = writeln!(w, "  {ty:<8} {n:>7} {:>12} {:>12} {bpw:>7.2}", human_count(p), human_bytes(b));
    }
    let _ = writeln!(
        w,
        "  {:<8} {:>7} {:>12} {:>12} {:>7.2}",
        "total",
        r.tensors.len(),
        human_count(total_params),
        human_bytes(total_bytes),
        bits_per_weight(total_params, total_bytes)
    );

    let width = r.tensors.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(w, "\ntensors (shape row-major, outermost first)");
    let _ = writeln!(w, "  {:<width$}  {:<6} {:<20} {:>12}", "name", "type", "shape", "bytes");
    for t in &r.tensors {
        let shape = format!("{:?}", t.shape);
        let _ = writeln!(w, "  {:<width$}  {:<6} {:<20} {:>12}", t.name, t.ty, shape, t.bytes);
    }

    if !r.metadata.is_empty() {
        let _ = writeln!(w, "\nmetadata");
        let width = r.metadata.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        // Values as JSON (strings quoted and escaped), so that each key stays on one line.
        for (k, v) in &r.metadata {
            match v {
                Shown::Whole(v) => writeln!(w, "  {k:<width$}  {v}"),
                Shown::Summary(s) => writeln!(w, "  {k:<width$}  {s}"),
            }
            .unwrap_or(());
        }
    }
    s
}

fn to_json(r: &Report) -> Value {
    let map = |rows: &[(String, Value)]| Value::Object(rows.iter().cloned().collect());
    let total_params: u64 = r.tensors.iter().map(|t| t.params).sum();
    let total_bytes: u64 = r.tensors.iter().map(|t| t.bytes).sum();
    let types: Vec<Value> = type_summary(&r.tensors)
        .into_iter()
        .map(|(ty, n, p, b)| json!({"type": ty, "tensors": n, "params": p, "bytes": b, "bits_per_weight": bits_per_weight(p, b)}))
        .collect();
    json!({
        "path": r.path,
        "format": r.format,
        "file_bytes": r.file_bytes,
        "name": r.name,
        "architecture": r.architecture,
        "hyperparameters": map(&r.hyperparameters),
        "tokenizer": map(&r.tokenizer),
        "chat_templates": r.chat_templates.iter().map(|(n, t)| (n.clone(), Value::from(t.as_str()))).collect::<serde_json::Map<_, _>>(),
        "quantization": {
            "types": types,
            "tensors": r.tensors.len(),
            "params": total_params,
            "bytes": total_bytes,
            "bits_per_weight": bits_per_weight(total_params, total_bytes),
        },
        "tensors": r.tensors.iter().map(|t| json!({"name": t.name, "type": t.ty, "shape": t.shape, "params": t.params, "bytes": t.bytes})).collect::<Vec<_>>(),
        "metadata": r.metadata.iter().map(|(k, v)| (k.clone(), v.to_json())).collect::<serde_json::Map<_, _>>(),
    })
}
