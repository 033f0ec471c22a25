//! The report for a Hugging Face model directory (config.json, tokenizer files,
//! safetensors weights) or for safetensors weights alone.

use super::{Report, Shown, TensorRow};
use lamina_model::hf::{HfModel, TokenIds};
use lamina_model::safetensors::SafeTensorsSet;
use serde_json::Value;
use std::path::Path;

pub(super) fn directory(dir: &Path, metadata_all: bool) -> Result<Report, Box<dyn std::error::Error>> {
    let m = HfModel::open(dir)?;
    let c = &m.config;
    let mut r = weights(&m.weights, metadata_all);
    r.format = format!("Hugging Face directory, {}", r.format);
    r.name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    r.architecture = c.architectures.first().cloned().or(c.model_type.clone());

    let mut hyper = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            r.hyperparameters.push((k.to_string(), v));
        }
    };
    hyper("model_type", c.model_type.clone().map(Value::from));
    hyper("context_length", c.context_length().map(Value::from));
    hyper("embedding_length", c.embedding_length().map(Value::from));
    hyper("block_count", c.block_count().map(Value::from));
    hyper("feed_forward_length", c.feed_forward_length().map(Value::from));
    hyper("head_count", c.head_count().map(Value::from));
    hyper("head_count_kv", c.head_count_kv().map(Value::from));
    hyper("head_dim", c.head_dim.map(Value::from));
    hyper("rope_freq_base", c.rope_theta.map(Value::from));
    hyper(if c.rms_norm_eps.is_some() { "rms_norm_eps" } else { "layer_norm_eps" }, c.norm_eps().map(Value::from));
    hyper("vocab_size", c.vocab_size.map(Value::from));
    hyper("tie_word_embeddings", c.tie_word_embeddings.map(Value::from));
    hyper("attention_bias", c.attention_bias.map(Value::from));
    hyper("hidden_act", c.hidden_act.clone().map(Value::from));
    hyper("torch_dtype", c.torch_dtype.clone().map(Value::from));

    let tc = &m.tokenizer_config;
    let mut tok = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            r.tokenizer.push((k.to_string(), v));
        }
    };
    let summary = m.tokenizer_summary()?;
    tok("file", m.tokenizer_json.as_ref().map(|p| Value::from(p.display().to_string())));
    tok("model", summary.as_ref().map(|s| Value::from(s.model.as_str())));
    tok("class", tc.tokenizer_class.clone().map(Value::from));
    tok("vocab_size", summary.as_ref().map(|s| Value::from(s.vocab_size)));
    tok("added_tokens", summary.as_ref().map(|s| Value::from(s.added_tokens.len())));
    let first = |ids: &Option<TokenIds>| match ids {
        Some(TokenIds::One(id)) => Some(Value::from(*id)),
        Some(TokenIds::Many(ids)) => Some(Value::from(ids.clone())),
        None => None,
    };
    tok("bos_token_id", first(&c.bos_token_id));
    tok("bos_token", tc.bos_token.as_ref().map(|t| Value::from(t.content())));
    tok("eos_token_id", first(&c.eos_token_id));
    tok("eos_token", tc.eos_token.as_ref().map(|t| Value::from(t.content())));
    tok("add_bos_token", tc.add_bos_token.map(Value::from));

    if let Some(t) = &m.chat_template {
        r.chat_templates.push(("default".into(), t.clone()));
    }
    let config: Vec<(String, Shown)> =
        m.config_json.iter().map(|(k, v)| (format!("config.{k}"), summarise(v, metadata_all))).collect();
    r.metadata.splice(0..0, config);
    Ok(r)
}

/// A `.safetensors` file or a sharded index on its own: tensors and `__metadata__`.
pub(super) fn safetensors(path: &Path, metadata_all: bool) -> Result<Report, Box<dyn std::error::Error>> {
    Ok(weights(&SafeTensorsSet::open(path)?, metadata_all))
}

fn weights(w: &SafeTensorsSet, metadata_all: bool) -> Report {
    let file_bytes = w.shards().iter().map(|s| s.file_size()).sum();
    let n = w.shards().len();
    let tensors = w
        .tensors()
        .map(|t| TensorRow {
            name: t.name.clone(),
            ty: t.dtype.name().to_string(),
            shape: t.shape.clone(),
            params: t.numel() as u64,
            bytes: t.n_bytes(),
        })
        .collect();
    let metadata = w
        .shards()
        .first()
        .map(|s| {
            s.metadata()
                .iter()
                .map(|(k, v)| (format!("safetensors.{k}"), summarise(&Value::from(v.as_str()), metadata_all)))
        })
        .into_iter()
        .flatten()
        .collect();
    Report {
        format: format!("safetensors ({n} file{})", if n == 1 { "" } else { "s" }),
        file_bytes,
        tensors,
        metadata,
        ..Default::default()
    }
}

/// Long values cut to 60 characters unless everything is asked for.
fn summarise(v: &Value, whole: bool) -> Shown {
    let text = v.to_string();
    if whole || text.chars().count() <= 60 {
        return Shown::Whole(v.clone());
    }
    Shown::Summary(format!("{}… ({} chars)", text.chars().take(60).collect::<String>(), text.chars().count()))
}
