//! Prefixes in Hugging Face PEFT's layout: `adapter_config.json` with `peft_type`
//! PREFIX_TUNING and `adapter_model.safetensors` holding `prompt_embeddings` (K,
//! layers * 2 * token_dim), as PEFT 0.21 saves a `PrefixTuningConfig` for a causal LM.
//! For grouped-query models PEFT's `token_dim` and `num_attention_heads` are the key/value
//! heads' (`_prepare_prompt_learning_config`), so the keys' width. With `prefix_projection`
//! PEFT saves the MLP's output, and loads it into the plain embedding in inference mode,
//! as this reader does. tests/fixtures/peft_methods/prefix/ holds prefixes made by PEFT
//! and read back by PEFT (model/tests/peft_methods.rs).

use super::{PrefixShape, PrefixTuningConfig};
use crate::error::{ModelError, Result};
use crate::lora::peft::{is_unset, read_config, write_dir, CONFIG_FILE, WEIGHTS_FILE};
use crate::safetensors::SafeTensors;
use lamina_tensor::{DType, Tensor};
use serde_json::{json, Value};
use std::path::Path;

/// PEFT's name of the saved prefixes.
pub const TENSOR_NAME: &str = "prompt_embeddings";

/// The `adapter_config.json` PEFT writes for prefixes of `shape`.
pub fn config_json(cfg: &PrefixTuningConfig, base_model: &str, shape: PrefixShape) -> Value {
    json!({
        "peft_type": "PREFIX_TUNING",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "num_virtual_tokens": cfg.num_virtual_tokens,
        "token_dim": shape.kv_dim(),
        "num_attention_heads": shape.kv_heads,
        "num_layers": shape.layers,
        "num_transformer_submodules": 1,
        "encoder_hidden_size": cfg.projection.unwrap_or(shape.kv_dim()),
        "prefix_projection": cfg.projection.is_some(),
        "init_weights": null,
        "inference_mode": true,
        "modules_to_save": null,
        "revision": null
    })
}

/// Write `values` (K, width), keys in Hugging Face's order.
pub fn save(dir: &Path, values: Tensor, cfg: &Value) -> Result<()> {
    write_dir(dir, vec![(TENSOR_NAME.to_string(), values)], cfg)
}

/// Read a prefix-tuning directory for a model of `shape`: its config and the prefixes
/// (K, width) on the CPU, keys in Hugging Face's order.
pub fn load(dir: &Path, shape: PrefixShape) -> Result<(PrefixTuningConfig, Tensor)> {
    let cfg_path = dir.join(CONFIG_FILE);
    let cfg = parse_config(&read_config(dir)?, shape)
        .map_err(|m| ModelError::Invalid(format!("{}: {m}", cfg_path.display())))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let st = SafeTensors::open(&weights_path)?;
    let want = [cfg.num_virtual_tokens, shape.width()];
    match st.tensors() {
        [info] if info.name == TENSOR_NAME && info.shape == want => {}
        other => {
            return Err(ModelError::Invalid(format!(
                "{}: expected one tensor `{TENSOR_NAME}` of shape {want:?} (tokens, layers x 2 x {}), found {:?}",
                weights_path.display(),
                shape.kv_dim(),
                other.iter().map(|i| format!("{} {:?}", i.name, i.shape)).collect::<Vec<_>>()
            )))
        }
    }
    Ok((cfg, st.load(TENSOR_NAME, DType::F32)?))
}

fn parse_config(v: &Value, shape: PrefixShape) -> std::result::Result<PrefixTuningConfig, String> {
    let peft_type = v.get("peft_type").and_then(Value::as_str).unwrap_or("");
    if peft_type != "PREFIX_TUNING" {
        return Err(format!("peft_type `{peft_type}` is not PREFIX_TUNING"));
    }
    let count = |key: &str| v.get(key).and_then(Value::as_u64).map(|n| n as usize);
    let k = count("num_virtual_tokens").ok_or("missing integer `num_virtual_tokens`")?;
    for (key, want) in
        [("token_dim", shape.kv_dim()), ("num_attention_heads", shape.kv_heads), ("num_layers", shape.layers)]
    {
        if let Some(got) = count(key).filter(|&n| n != want) {
            return Err(format!("`{key}` is {got}, the model needs {want} (key/value width, key/value heads, layers)"));
        }
    }
    if count("num_transformer_submodules").is_some_and(|n| n != 1) {
        return Err("`num_transformer_submodules` other than 1 (encoder-decoder models) is not supported".into());
    }
    if v.get("modules_to_save").is_some_and(|x| !is_unset(x)) {
        return Err(format!("`modules_to_save` = {} is not supported", v["modules_to_save"]));
    }
    let projection = match v.get("prefix_projection").and_then(Value::as_bool) {
        Some(true) => Some(count("encoder_hidden_size").unwrap_or(shape.kv_dim())),
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
