//! Soft prompts in Hugging Face PEFT's layout: `adapter_config.json` with `peft_type`
//! PROMPT_TUNING and `adapter_model.safetensors` holding `prompt_embeddings`
//! (num_virtual_tokens, token_dim), as PEFT 0.21 saves a `PromptTuningConfig` for a
//! causal LM. tests/fixtures/peft_methods/prompt/ holds prompts made by PEFT and read back
//! by PEFT (model/tests/peft_methods.rs).

use super::{PromptInit, PromptTuningConfig, SoftPrompt};
use crate::error::{ModelError, Result};
use crate::lora::peft::{is_unset, read_config, write_dir, CONFIG_FILE, WEIGHTS_FILE};
use crate::safetensors::SafeTensors;
use lamina_tensor::{DType, Device};
use serde_json::{json, Value};
use std::path::Path;

/// PEFT's name of the virtual tokens' tensor.
pub const TENSOR_NAME: &str = "prompt_embeddings";

/// The `adapter_config.json` PEFT writes for a model with `dim`-wide embeddings,
/// `layers` blocks and `heads` attention heads.
pub fn config_json(cfg: &PromptTuningConfig, base_model: &str, dim: usize, layers: usize, heads: usize) -> Value {
    let (init, text) = match &cfg.init {
        PromptInit::Random => ("RANDOM", Value::Null),
        PromptInit::Text(t) => ("TEXT", json!(t)),
    };
    json!({
        "peft_type": "PROMPT_TUNING",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "num_virtual_tokens": cfg.num_virtual_tokens,
        "token_dim": dim,
        "num_transformer_submodules": 1,
        "num_attention_heads": heads,
        "num_layers": layers,
        "prompt_tuning_init": init,
        "prompt_tuning_init_text": text,
        "tokenizer_name_or_path": if text.is_null() { Value::Null } else { json!(base_model) },
        "tokenizer_kwargs": null,
        "inference_mode": true,
        "modules_to_save": null,
        "revision": null
    })
}

pub fn save(dir: &Path, prompt: &SoftPrompt, cfg: &Value) -> Result<()> {
    write_dir(dir, vec![(TENSOR_NAME.to_string(), prompt.embeddings.clone())], cfg)
}

/// Read a prompt-tuning directory for a model with `dim`-wide embeddings.
pub fn load(dir: &Path, dim: usize, device: Device) -> Result<(PromptTuningConfig, SoftPrompt)> {
    let cfg_path = dir.join(CONFIG_FILE);
    let cfg = parse_config(&read_config(dir)?, dim)
        .map_err(|m| ModelError::Invalid(format!("{}: {m}", cfg_path.display())))?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let st = SafeTensors::open(&weights_path)?;
    let want = [cfg.num_virtual_tokens, dim];
    match st.tensors() {
        [info] if info.name == TENSOR_NAME && info.shape == want => {}
        other => {
            return Err(ModelError::Invalid(format!(
                "{}: expected one tensor `{TENSOR_NAME}` of shape {want:?}, found {:?}",
                weights_path.display(),
                other.iter().map(|i| format!("{} {:?}", i.name, i.shape)).collect::<Vec<_>>()
            )))
        }
    }
    let embeddings = st.load(TENSOR_NAME, DType::F32)?.to_device(device)?;
    Ok((cfg, SoftPrompt { embeddings }))
}

fn parse_config(v: &Value, dim: usize) -> std::result::Result<PromptTuningConfig, String> {
    let peft_type = v.get("peft_type").and_then(Value::as_str).unwrap_or("");
    if peft_type != "PROMPT_TUNING" {
        return Err(format!("peft_type `{peft_type}` is not PROMPT_TUNING"));
    }
    let count = |key: &str| v.get(key).and_then(Value::as_u64).map(|n| n as usize);
    let k = count("num_virtual_tokens").ok_or("missing integer `num_virtual_tokens`")?;
    if let Some(d) = count("token_dim").filter(|&d| d != dim) {
        return Err(format!("`token_dim` is {d}, the model's embeddings are {dim} wide"));
    }
    if count("num_transformer_submodules").is_some_and(|n| n != 1) {
        return Err("`num_transformer_submodules` other than 1 (encoder-decoder models) is not supported".into());
    }
    if v.get("modules_to_save").is_some_and(|x| !is_unset(x)) {
        return Err(format!("`modules_to_save` = {} is not supported", v["modules_to_save"]));
    }
    let init = match (v.get("prompt_tuning_init").and_then(Value::as_str), v.get("prompt_tuning_init_text")) {
        (Some("TEXT"), Some(Value::String(t))) => PromptInit::Text(t.clone()),
        _ => PromptInit::Random,
    };
    let cfg = PromptTuningConfig { num_virtual_tokens: k, init };
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_what_it_cannot_honour() {
        let cfg = PromptTuningConfig { num_virtual_tokens: 7, init: PromptInit::Text("Answer:".into()) };
        let v = config_json(&cfg, "tiny", 32, 2, 4);
        assert_eq!(parse_config(&v, 32).unwrap(), cfg);
        assert!(parse_config(&v, 64).unwrap_err().contains("token_dim"));
        for (key, bad) in [
            ("peft_type", json!("PREFIX_TUNING")),
            ("num_virtual_tokens", json!(0)),
            ("num_transformer_submodules", json!(2)),
            ("modules_to_save", json!(["lm_head"])),
        ] {
            let mut v = v.clone();
            v[key] = bad;
            assert!(parse_config(&v, 32).is_err(), "{key}");
        }
    }
}
