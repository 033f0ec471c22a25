//! IA³ vectors in Hugging Face PEFT's layout: `adapter_config.json` with `peft_type` IA3
//! and `adapter_model.safetensors` holding
//! `base_model.model.model.layers.{i}.self_attn.k_proj.ia3_l` (out, 1) per output-scaled
//! projection and `...mlp.down_proj.ia3_l` (1, in) per feed-forward one, as PEFT 0.21
//! saves an `IA3Config` over a `LlamaForCausalLM`. The tensors' orientation and the
//! config's `feedforward_modules` must agree; settings this code cannot honour are a clear
//! error. tests/fixtures/peft_ia3/ holds adapters made by PEFT and read back by PEFT
//! (model/tests/ia3_interop.rs).

use super::{Ia3Block, Ia3Config, Ia3Vector};
use crate::error::{ModelError, Result};
use crate::lora::peft::{is_unset, module_name, read_config, split_name, write_dir, CONFIG_FILE, WEIGHTS_FILE};
use crate::lora::{LoraConfig, Target};
use crate::safetensors::SafeTensors;
use lamina_tensor::{DType, Device};
use serde_json::{json, Value};
use std::path::Path;

/// PEFT's tensor name of one vector.
pub fn tensor_name(layer: usize, t: Target) -> String {
    format!("{}.ia3_l", module_name(layer, t))
}

/// The `adapter_config.json` PEFT writes for these settings.
pub fn config_json(cfg: &Ia3Config, base_model: &str) -> Value {
    let names = |ts: &[Target]| ts.iter().map(|t| t.hf_module()).collect::<Vec<_>>();
    json!({
        "peft_type": "IA3",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "target_modules": names(&cfg.targets),
        "feedforward_modules": names(&cfg.feedforward),
        "exclude_modules": null,
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_ia3_weights": true,
        "modules_to_save": null,
        "revision": null
    })
}

/// Write `layers` (one entry per decoder block) to `dir`: each vector as PEFT shapes it.
pub fn save(dir: &Path, cfg: &Ia3Config, base_model: &str, layers: &[Ia3Block]) -> Result<()> {
    let mut owned = Vec::new();
    for (i, block) in layers.iter().enumerate() {
        for (t, v) in block.iter() {
            let n = v.l.numel();
            let shape = if v.feedforward { [1, n] } else { [n, 1] };
            owned.push((tensor_name(i, t), v.l.detach().reshape(&shape)?));
        }
    }
    write_dir(dir, owned, &config_json(cfg, base_model))
}

/// Read an IA³ adapter directory for a model with `n_layers` blocks; `shape_of(t)` gives
/// the (out, in) of each projection (`None`: the model has no such projection). The
/// vectors are 1-D on `device`.
pub fn load(
    dir: &Path,
    n_layers: usize,
    shape_of: impl Fn(Target) -> Option<(usize, usize)>,
    device: Device,
) -> Result<(Ia3Config, Vec<Ia3Block>)> {
    let cfg_path = dir.join(CONFIG_FILE);
    let in_config = |m: String| ModelError::Invalid(format!("{}: {m}", cfg_path.display()));
    let cfg = parse_config(&read_config(dir)?).map_err(in_config)?;
    let weights_path = dir.join(WEIGHTS_FILE);
    let in_weights = |m: String| ModelError::Invalid(format!("{}: {m}", weights_path.display()));
    let st = SafeTensors::open(&weights_path)?;
    let mut layers = vec![Ia3Block::default(); n_layers];
    for info in st.tensors() {
        let (layer, t) = match split_name(&info.name) {
            Some((layer, t, rest)) if rest == ["ia3_l"] => (layer, t),
            _ => {
                return Err(ModelError::Unsupported(format!(
                    "{}: tensor `{}` is not an IA3 vector of a LLaMA projection",
                    weights_path.display(),
                    info.name
                )))
            }
        };
        if layer >= n_layers {
            return Err(in_weights(format!("`{}` is for layer {layer}, the model has {n_layers}", info.name)));
        }
        let (out, inp) = shape_of(t)
            .ok_or_else(|| in_weights(format!("adapts `{}`, which this model does not have", t.hf_module())))?;
        let feedforward = cfg.feedforward.contains(&t);
        let want = if feedforward { [1, inp] } else { [out, 1] };
        if info.shape != want {
            return Err(in_weights(format!(
                "`{}` has shape {:?}; a {} vector of this projection (out {out}, in {inp}) is {want:?}",
                info.name,
                info.shape,
                if feedforward { "feed-forward (input)" } else { "output" }
            )));
        }
        let l = st.load(&info.name, DType::F32)?.reshape(&[want[0] * want[1]])?.to_device(device)?;
        layers[layer].set(t, Some(Ia3Vector { l, feedforward }));
    }
    if layers.iter().all(Ia3Block::is_empty) {
        return Err(in_weights("holds no IA3 vectors".into()));
    }
    Ok((cfg, layers))
}

fn parse_config(v: &Value) -> std::result::Result<Ia3Config, String> {
    let peft_type = v.get("peft_type").and_then(Value::as_str).unwrap_or("");
    if peft_type != "IA3" {
        return Err(format!("peft_type `{peft_type}` is not IA3"));
    }
    let modules = |key: &str| -> std::result::Result<Vec<Target>, String> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => {
                let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                LoraConfig::parse_targets(&names.join(",")).map_err(|e| format!("`{key}`: {e}"))
            }
            Some(Value::String(s)) if s == "all-linear" && key == "target_modules" => Ok(Target::ALL.to_vec()),
            Some(other) => Err(format!("`{key}` = {other} is not supported (give a list of module names)")),
        }
    };
    for key in ["modules_to_save", "exclude_modules"] {
        if v.get(key).is_some_and(|x| !is_unset(x)) {
            return Err(format!("`{key}` = {} is not supported", v[key]));
        }
    }
    if v.get("fan_in_fan_out").is_some_and(|x| x != false) {
        return Err("`fan_in_fan_out` = true is not supported (LLaMA projections are (out, in))".into());
    }
    // PEFT keeps these as sets: written in any order, read back in `Target`'s.
    let (mut targets, mut feedforward) = (modules("target_modules")?, modules("feedforward_modules")?);
    targets.sort();
    feedforward.sort();
    let cfg = Ia3Config { targets, feedforward };
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_what_it_cannot_honour() {
        let cfg = Ia3Config { targets: vec![Target::K, Target::V, Target::Down], feedforward: vec![Target::Down] };
        let v = config_json(&cfg, "tiny");
        assert_eq!(parse_config(&v).unwrap(), cfg);
        for (key, bad) in [
            ("peft_type", json!("LORA")),
            ("fan_in_fan_out", json!(true)),
            ("modules_to_save", json!(["lm_head"])),
            ("feedforward_modules", json!(["up_proj"])),
            ("target_modules", json!(".*proj")),
            ("target_modules", json!(["lm_head"])),
        ] {
            let mut v = v.clone();
            v[key] = bad;
            assert!(parse_config(&v).is_err(), "{key}");
        }
    }

    #[test]
    fn names_are_peft_names() {
        assert_eq!(tensor_name(1, Target::Down), "base_model.model.model.layers.1.mlp.down_proj.ia3_l");
        assert_eq!(split_name(&tensor_name(3, Target::K)), Some((3, Target::K, vec!["ia3_l"])));
    }
}
