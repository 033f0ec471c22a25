//! Prefixes in Hugging Face PEFT's layout: `adapter_config.json` with `peft_type`
//! PREFIX_TUNING and `adapter_model.safetensors` holding `prompt_embeddings` (K,
//! layers * 2 * token_dim), as PEFT 0.21 saves a `PrefixTuningConfig` for a causal LM.
//! For grouped-query models PEFT's `token_dim` and `num_attention_heads` are the key/value
//! heads' (`_prepare_prompt_learning_config`), so the keys' width. With `prefix_projection`
//! PEFT saves the MLP's output, and loads it into the plain embedding in inference mode,
//! as this reader does. tests/fixtures/peft_methods/prefix/ holds prefixes made by PEFT
//! and read back by PEFT (model/tests/peft_methods.rs).

use super::{PrefixShape, PrefixTuningConfig};
use crate::error::Result;
use crate::prompt::learning::{self, ConfigDims};
use lamina_tensor::Tensor;
use serde_json::{json, Value};
use std::path::Path;

/// The `adapter_config.json` PEFT writes for prefixes of `shape`.
pub fn config_json(cfg: &PrefixTuningConfig, base_model: &str, shape: PrefixShape) -> Value {
    let dims = ConfigDims { token_dim: shape.kv_dim(), num_attention_heads: shape.kv_heads, num_layers: shape.layers };
    let extra = json!({
        "encoder_hidden_size": cfg.projection.unwrap_or(shape.kv_dim()),
        "prefix_projection": cfg.projection.is_some(),
        "init_weights": null,
    });
    learning::config_json("PREFIX_TUNING", cfg.num_virtual_tokens, base_model, dims, extra)
}

/// Write `values` (K, width), keys in Hugging Face's order.
pub fn save(dir: &Path, values: Tensor, cfg: &Value) -> Result<()> {
    learning::save(dir, values, cfg)
}

/// Read a prefix-tuning directory for a model of `shape`: its config and the prefixes
/// (K, width) on the CPU, keys in Hugging Face's order.
pub fn load(dir: &Path, shape: PrefixShape) -> Result<(PrefixTuningConfig, Tensor)> {
    let cfg = learning::read_with(dir, |v| parse_config(v, shape))?;
    let values = learning::load_embeddings(dir, [cfg.num_virtual_tokens, shape.width()])?;
    Ok((cfg, values))
}

fn parse_config(v: &Value, shape: PrefixShape) -> std::result::Result<PrefixTuningConfig, String> {
    let must_match =
        [("token_dim", shape.kv_dim()), ("num_attention_heads", shape.kv_heads), ("num_layers", shape.layers)];
    let k = learning::check_config(v, "PREFIX_TUNING", &must_match)?;
    let projection = match v.get("prefix_projection").and_then(Value::as_bool) {
        Some(true) => Some(v.get("encoder_hidden_size").and_then(Value::as_u64).map_or(shape.kv_dim(), |n| n as usize)),
        _ => None,
    };
    let cfg = PrefixTuningConfig { num_virtual_tokens: k, projection };
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_what_it_cannot_honour() {
        let shape = PrefixShape { layers: 2, kv_heads: 2, head_dim: 8 };
        let cfg = PrefixTuningConfig { num_virtual_tokens: 3, projection: Some(16) };
        let v = config_json(&cfg, "tiny", shape);
        assert_eq!(v["token_dim"], 16);
        assert_eq!(parse_config(&v, shape).unwrap(), cfg);
        let plain = PrefixTuningConfig { projection: None, ..cfg };
        assert_eq!(parse_config(&config_json(&plain, "tiny", shape), shape).unwrap(), plain);
        assert!(parse_config(&v, PrefixShape { layers: 3, ..shape }).unwrap_err().contains("num_layers"));
        assert!(parse_config(&v, PrefixShape { kv_heads: 4, head_dim: 4, ..shape })
            .unwrap_err()
            .contains("num_attention_heads"));
        for (key, bad) in [
            ("peft_type", json!("PROMPT_TUNING")),
            ("num_virtual_tokens", json!(0)),
            ("token_dim", json!(32)),
            ("num_transformer_submodules", json!(2)),
            ("modules_to_save", json!(["lm_head"])),
        ] {
            let mut v = v.clone();
            v[key] = bad;
            assert!(parse_config(&v, shape).is_err(), "{key}");
        }
    }
}
