//! The report for a GGUF file: hyperparameters from the `<arch>.*` keys, the tokenizer from
//! `tokenizer.ggml.*`, the chat template(s) from `tokenizer.chat_template*`.

use super::{Report, Shown, TensorRow};
use lamina_model::gguf::{GgufFile, MetaArray, MetaValue};
use serde_json::Value;
use std::path::Path;

/// `<arch>.` keys shown as hyperparameters, in this order, with their labels.
const HYPERPARAMETERS: [(&str, &str); 14] = [
    ("context_length", "context_length"),
    ("embedding_length", "embedding_length"),
    ("block_count", "block_count"),
    ("feed_forward_length", "feed_forward_length"),
    ("attention.head_count", "head_count"),
    ("attention.head_count_kv", "head_count_kv"),
    ("attention.key_length", "head_dim_k"),
    ("attention.value_length", "head_dim_v"),
    ("rope.dimension_count", "rope_dimension_count"),
    ("rope.freq_base", "rope_freq_base"),
    ("rope.scaling.type", "rope_scaling"),
    ("attention.layer_norm_rms_epsilon", "rms_norm_eps"),
    ("attention.layer_norm_epsilon", "layer_norm_eps"),
    ("vocab_size", "vocab_size"),
];

/// Arrays with one entry per token: summarised even with --metadata-all.
const TOKEN_ARRAYS: [&str; 4] =
    ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges", "tokenizer.ggml.scores"];

pub(super) fn report(path: &Path, metadata_all: bool) -> Result<Report, Box<dyn std::error::Error>> {
    let f = GgufFile::open(path)?;
    let arch = f.get("general.architecture").and_then(MetaValue::as_str).map(str::to_string);
    let mut r = Report {
        format: format!("GGUF v{} (alignment {}, {} metadata keys)", f.version, f.alignment, f.metadata.len()),
        file_bytes: f.file_size(),
        name: f.get("general.name").and_then(MetaValue::as_str).map(str::to_string),
        ..Default::default()
    };

    if let Some(arch) = &arch {
        let prefix = format!("{arch}.");
        for (key, label) in HYPERPARAMETERS {
            if let Some(v) = f.get(&format!("{prefix}{key}")) {
                r.hyperparameters.push((label.to_string(), to_json(v, false)));
            }
        }
        // Any other `<arch>.` keys (experts, sliding windows, ...) under their own names.
        for (k, v) in f.metadata_in_order() {
            let Some(rest) = k.strip_prefix(&prefix) else { continue };
            if !HYPERPARAMETERS.iter().any(|(key, _)| *key == rest) {
                r.hyperparameters.push((rest.replace('.', "_"), to_json(v, false)));
            }
        }
    }
    r.architecture = arch;

    tokenizer(&f, &mut r.tokenizer);
    for (k, v) in f.metadata_in_order() {
        if let (Some(rest), Some(text)) = (k.strip_prefix("tokenizer.chat_template"), v.as_str()) {
            let name = rest.strip_prefix('.').unwrap_or("default");
            r.chat_templates.push((name.to_string(), text.to_string()));
        }
    }
    r.tensors = f
        .tensors
        .iter()
        .map(|t| TensorRow {
            name: t.name.clone(),
            ty: t.ty.name().to_string(),
            shape: t.shape(),
            params: t.n_elements(),
            bytes: t.n_bytes,
        })
        .collect();
    r.metadata = f
        .metadata_in_order()
        .map(|(k, v)| (k.to_string(), shown(v, metadata_all && !TOKEN_ARRAYS.contains(&k))))
        .collect();
    Ok(r)
}

fn tokenizer(f: &GgufFile, out: &mut Vec<(String, Value)>) {
    let mut put = |k: &str, v: Value| out.push((k.to_string(), v));
    let tokens = f.get("tokenizer.ggml.tokens").and_then(MetaValue::as_array).and_then(MetaArray::as_strings);
    for (key, label) in [("tokenizer.ggml.model", "model"), ("tokenizer.ggml.pre", "pre")] {
        if let Some(v) = f.get(key) {
            put(label, to_json(v, false));
        }
    }
    if let Some(t) = tokens {
        put("vocab_size", t.len().into());
    }
    if let Some(m) = f.get("tokenizer.ggml.merges").and_then(MetaValue::as_array) {
        put("merges", m.len().into());
    }
    for role in ["bos", "eos", "eot", "unknown", "padding", "sep", "mask"] {
        let Some(id) = f.get(&format!("tokenizer.ggml.{role}_token_id")).and_then(MetaValue::as_u64) else { continue };
        put(&format!("{role}_token_id"), id.into());
        let text = tokens.and_then(|t| t.get(id as usize)).map_or(Value::Null, |s| Value::from(s.as_str()));
        put(&format!("{role}_token"), text);
    }
    for flag in ["add_bos_token", "add_eos_token", "add_space_prefix"] {
        if let Some(v) = f.get(&format!("tokenizer.ggml.{flag}")) {
            put(flag, to_json(v, false));
        }
    }
}

/// A metadata value for the listing: whole, or summarised when long.
fn shown(v: &MetaValue, whole: bool) -> Shown {
    match v {
        MetaValue::String(s) if !whole && s.chars().count() > 60 => Shown::Summary(v.summary()),
        MetaValue::Array(a) if !whole && a.len() > 8 => Shown::Summary(v.summary()),
        _ => Shown::Whole(to_json(v, true)),
    }
}

/// A metadata value as JSON: whole, or with long strings and arrays summarised.
fn to_json(v: &MetaValue, whole: bool) -> Value {
    match v {
        MetaValue::String(s) if whole || s.chars().count() <= 60 => Value::from(s.as_str()),
        MetaValue::Array(a) if whole => array_json(a),
        MetaValue::String(_) | MetaValue::Array(_) => Value::from(v.summary()),
        MetaValue::Bool(b) => Value::from(*b),
        MetaValue::F32(x) => f32_json(*x),
        MetaValue::F64(x) => f64_json(*x),
        MetaValue::I64(x) => Value::from(*x),
        other => other.as_u64().map(Value::from).or(other.as_i64().map(Value::from)).unwrap_or(Value::Null),
    }
}

/// An f32 as its shortest decimal (1e-5, not 9.999999747378752e-6). NaN and infinities,
/// which JSON cannot hold, become null.
fn f32_json(x: f32) -> Value {
    f64_json(x.to_string().parse().unwrap_or(x as f64))
}

fn f64_json(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn array_json(a: &MetaArray) -> Value {
    match a {
        MetaArray::String(v) => v.iter().map(|s| Value::from(s.as_str())).collect(),
        MetaArray::Bool(v) => v.iter().map(|&b| Value::from(b)).collect(),
        MetaArray::F32(v) => v.iter().map(|&x| f32_json(x)).collect(),
        MetaArray::F64(v) => v.iter().map(|&x| f64_json(x)).collect(),
        MetaArray::U64(v) => v.iter().map(|&x| Value::from(x)).collect(),
        MetaArray::Array(v) => v.iter().map(array_json).collect(),
        other => other.to_i64s().unwrap_or_default().into_iter().map(Value::from).collect(),
    }
}
