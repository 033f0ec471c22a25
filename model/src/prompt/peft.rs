//! Soft prompts in Hugging Face PEFT's layout: `adapter_config.json` with `peft_type`
//! PROMPT_TUNING and `adapter_model.safetensors` holding `prompt_embeddings`
//! (num_virtual_tokens, token_dim), as PEFT 0.21 saves a `PromptTuningConfig` for a
//! causal LM. tests/fixtures/peft_methods/prompt/ holds prompts made by PEFT and read back
//! by PEFT (model/tests/peft_methods.rs).

use super::learning::{self, ConfigDims};
use super::{PTuningConfig, PromptInit, PromptTuningConfig, SoftPrompt};
use crate::error::Result;
use lamina_tensor::Device;
use serde_json::{json, Value};
use std::path::Path;

pub use learning::TENSOR_NAME;

/// The `adapter_config.json` PEFT writes for a model with `dim`-wide embeddings,
/// `layers` blocks and `heads` attention heads.
pub fn config_json(cfg: &PromptTuningConfig, base_model: &str, dim: usize, layers: usize, heads: usize) -> Value {
    let (init, text) = match &cfg.init {
        PromptInit::Random => ("RANDOM", Value::Null),
        PromptInit::Text(t) => ("TEXT", json!(t)),
    };
    let dims = ConfigDims { token_dim: dim, num_attention_heads: heads, num_layers: layers };
    let extra = json!({
        "prompt_tuning_init": init,
        "prompt_tuning_init_text": text,
        "tokenizer_name_or_path": if text.is_null() { Value::Null } else { json!(base_model) },
        "tokenizer_kwargs": null,
    });
    learning::config_json("PROMPT_TUNING", cfg.num_virtual_tokens, base_model, dims, extra)
}

/// Write the virtual tokens (an encoder's output, for P-tuning) and `cfg` to `dir`.
pub fn save(dir: &Path, prompt: &SoftPrompt, cfg: &Value) -> Result<()> {
    learning::save(dir, prompt.tokens()?.detach().to_device(Device::Cpu)?, cfg)
}

/// The `adapter_config.json` PEFT writes for P-tuning with an MLP encoder.
pub fn p_tuning_config_json(cfg: &PTuningConfig, base_model: &str, dim: usize, layers: usize, heads: usize) -> Value {
    let dims = ConfigDims { token_dim: dim, num_attention_heads: heads, num_layers: layers };
    let extra = json!({
        "encoder_reparameterization_type": "MLP",
        "encoder_hidden_size": cfg.hidden,
        "encoder_num_layers": 2,
        "encoder_dropout": 0.0,
    });
    learning::config_json("P_TUNING", cfg.num_virtual_tokens, base_model, dims, extra)
}

/// Read a P-tuning directory for a model with `dim`-wide embeddings: the saved encoder
/// output is the soft prompt (an LSTM encoder's as well as an MLP's).
pub fn load_p_tuning(dir: &Path, dim: usize, device: Device) -> Result<(PTuningConfig, SoftPrompt)> {
    let cfg = learning::read_with(dir, |v| parse_p_tuning_config(v, dim))?;
    let embeddings = learning::load_embeddings(dir, [cfg.num_virtual_tokens, dim])?.to_device(device)?;
    Ok((cfg, SoftPrompt::plain(embeddings)))
}

fn parse_p_tuning_config(v: &Value, dim: usize) -> std::result::Result<PTuningConfig, String> {
    let k = learning::check_config(v, "P_TUNING", &[("token_dim", dim)])?;
    let hidden = v.get("encoder_hidden_size").and_then(Value::as_u64).map_or(dim, |n| n as usize);
    let cfg = PTuningConfig { num_virtual_tokens: k, hidden };
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// Read a prompt-tuning directory for a model with `dim`-wide embeddings.
pub fn load(dir: &Path, dim: usize, device: Device) -> Result<(PromptTuningConfig, SoftPrompt)> {
    let cfg = learning::read_with(dir, |v| parse_config(v, dim))?;
    let embeddings = learning::load_embeddings(dir, [cfg.num_virtual_tokens, dim])?.to_device(device)?;
    Ok((cfg, SoftPrompt::plain(embeddings)))
}

fn parse_config(v: &Value, dim: usize) -> std::result::Result<PromptTuningConfig, String> {
    let k = learning::check_config(v, "PROMPT_TUNING", &[("token_dim", dim)])?;
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
        let p = PTuningConfig { num_virtual_tokens: 3, hidden: 16 };
        let pv = p_tuning_config_json(&p, "tiny", 32, 2, 4);
        assert_eq!(parse_p_tuning_config(&pv, 32).unwrap(), p);
        assert!(parse_config(&pv, 32).is_err() && parse_p_tuning_config(&v, 32).is_err(), "the types differ");
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
