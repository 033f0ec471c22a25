//! Adapters in Hugging Face PEFT's layout: a directory with `adapter_config.json` and
//! `adapter_model.safetensors`, tensors named as PEFT saves a LoRA over a
//! `LlamaForCausalLM`:
//! `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight` (r, in) and
//! `...lora_B.weight` (out, r). `PeftModel.from_pretrained(base, dir)` loads what `save`
//! writes, and `load` reads what PEFT writes (plain LoRA: no bias, no modules_to_save,
//! no per-module rank patterns; anything else is a clear error, not a silent skip).
//! `layers_to_transform` is honoured as it is in PEFT: the file holds fewer tensors.
//! tests/fixtures/peft/ holds an adapter saved by PEFT itself (model/tests/peft_interop.rs).

use super::{BlockAdapters, LoraConfig, LoraLayer, Target};
use crate::atomic::{io_err, write_atomic};
use crate::error::{ModelError, Result};
use crate::safetensors::{write_safetensors, SafeTensors};
use lamina_tensor::{DType, Device, Tensor};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub const CONFIG_FILE: &str = "adapter_config.json";
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// PEFT's name of a projection of a `LlamaForCausalLM`, the prefix of its adapter tensors.
pub fn module_name(layer: usize, t: Target) -> String {
    format!("base_model.model.model.layers.{layer}.{}.{}", t.hf_parent(), t.hf_module())
}

/// PEFT's tensor name for one half of an adapter.
pub fn tensor_name(layer: usize, t: Target, half: char) -> String {
    format!("{}.lora_{half}.weight", module_name(layer, t))
}

/// Write `layers` (one entry per decoder block) to `dir` (created if needed).
pub fn save(dir: &Path, cfg: &LoraConfig, base_model: &str, layers: &[BlockAdapters]) -> Result<()> {
    let mut owned = Vec::new();
    for (i, block) in layers.iter().enumerate() {
        for (t, l) in block.iter() {
            owned.push((tensor_name(i, t, 'A'), l.a.clone()));
            owned.push((tensor_name(i, t, 'B'), l.b.clone()));
        }
    }
    write_dir(dir, owned, &config_json(cfg, base_model))
}

/// Write an adapter directory: the tensors (detached, to the CPU) and the config. Each
/// file is written atomically; the weights go first so a config never names missing weights.
pub(crate) fn write_dir(dir: &Path, tensors: Vec<(String, Tensor)>, config: &Value) -> Result<()> {
    if tensors.is_empty() {
        return Err(ModelError::Invalid("there are no adapters to save".into()));
    }
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let owned: Vec<(String, Tensor)> =
        tensors.into_iter().map(|(n, t)| Ok((n, t.detach().to_device(Device::Cpu)?))).collect::<Result<_>>()?;
    let tensors: Vec<(&str, &Tensor)> = owned.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    write_safetensors(dir.join(WEIGHTS_FILE), &tensors, &meta)?;
    let path = dir.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(config).map_err(|e| ModelError::Invalid(e.to_string()))?;
    write_atomic(&path, |w| w.write_all(text.as_bytes()).map_err(|e| io_err(&path, e)))
}

/// The parsed `adapter_config.json` of an adapter directory.
pub fn read_config(dir: &Path) -> Result<Value> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    serde_json::from_str(&text).map_err(|e| ModelError::Invalid(format!("{}: not valid JSON: {e}", path.display())))
}

/// The `adapter_config.json` PEFT writes for these settings.
pub fn config_json(cfg: &LoraConfig, base_model: &str) -> Value {
    let targets: Vec<&str> = cfg.targets.iter().map(|t| t.hf_module()).collect();
    json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": cfg.rank,
        "lora_alpha": shortest(cfg.alpha),
        "lora_dropout": shortest(cfg.dropout),
        "use_rslora": cfg.rslora,
        "target_modules": targets,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "modules_to_save": null,
        "layers_to_transform": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "use_dora": false,
        "revision": null
    })
}

/// The f64 whose decimal form is the f32's shortest one (0.05, not 0.05000000074505806),
/// so the config reads as it was given; it parses back to the same f32.
pub(crate) fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(x as f64)
}

/// A loaded adapter: its settings and one `BlockAdapters` per decoder block.
pub struct PeftAdapter {
    pub config: LoraConfig,
    pub base_model: Option<String>,
    pub layers: Vec<BlockAdapters>,
}

/// Read an adapter directory for a model with `n_layers` blocks; `shape_of(t)` gives the
/// (out, in) of each target projection, against which every tensor is checked (`None`: the
/// model has no such projection).
pub fn load(
    dir: &Path,
    n_layers: usize,
    shape_of: impl Fn(Target) -> Option<(usize, usize)>,
    device: Device,
) -> Result<PeftAdapter> {
    let cfg_path = dir.join(CONFIG_FILE);
    let v = read_config(dir)?;
    let config = parse_config(&v).map_err(|m| ModelError::Invalid(format!("{}: {m}", cfg_path.display())))?;
    let only_layers = parse_layers(&v).map_err(|m| ModelError::Invalid(format!("{}: {m}", cfg_path.display())))?;
    let base_model = v.get("base_model_name_or_path").and_then(Value::as_str).map(str::to_string);

    let weights_path = dir.join(WEIGHTS_FILE);
    let st = SafeTensors::open(&weights_path)?;
    let mut halves: BTreeMap<(usize, Target), [Option<Tensor>; 2]> = BTreeMap::new();
    for info in st.tensors() {
        let (layer, t, half) = parse_name(&info.name).ok_or_else(|| {
            ModelError::Unsupported(format!(
                "{}: tensor `{}` is not a LoRA A/B weight of a LLaMA projection",
                weights_path.display(),
                info.name
            ))
        })?;
        if layer >= n_layers {
            return Err(ModelError::Invalid(format!(
                "{}: `{}` is for layer {layer}, the model has {n_layers}",
                weights_path.display(),
                info.name
            )));
        }
        if only_layers.as_ref().is_some_and(|l| !l.contains(&layer)) {
            return Err(ModelError::Invalid(format!(
                "{}: `{}` is for layer {layer}, which `layers_to_transform` in {CONFIG_FILE} leaves out",
                weights_path.display(),
                info.name
            )));
        }
        let tensor = st.load(&info.name, DType::F32)?.to_device(device)?;
        halves.entry((layer, t)).or_default()[usize::from(half == 'B')] = Some(tensor);
    }
    if halves.is_empty() {
        return Err(ModelError::Invalid(format!("{}: holds no LoRA weights", weights_path.display())));
    }
    let mut layers = vec![BlockAdapters::default(); n_layers];
    for ((layer, t), [a, b]) in halves {
        let (Some(a), Some(b)) = (a, b) else {
            return Err(ModelError::Invalid(format!(
                "{}: layer {layer} {} has only one of lora_A / lora_B",
                weights_path.display(),
                t.hf_module()
            )));
        };
        let (out, inp) = shape_of(t).ok_or_else(|| {
            ModelError::Invalid(format!(
                "{}: adapts `{}`, which this model does not have (it has {})",
                weights_path.display(),
                t.hf_module(),
                Target::ALL
                    .iter()
                    .filter(|&&t| shape_of(t).is_some())
                    .map(|t| t.hf_module())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let l = LoraLayer::from_tensors(a, b, config.scale(), out, inp)
            .map_err(|e| ModelError::Invalid(format!("layer {layer} {}: {e}", t.hf_module())))?;
        if l.rank() != config.rank {
            return Err(ModelError::Invalid(format!(
                "layer {layer} {}: rank {} but adapter_config.json says r = {}",
                t.hf_module(),
                l.rank(),
                config.rank
            )));
        }
        layers[layer].set(t, Some(l));
    }
    Ok(PeftAdapter { config, base_model, layers })
}

fn parse_config(v: &Value) -> std::result::Result<LoraConfig, String> {
    let peft_type = v.get("peft_type").and_then(Value::as_str).unwrap_or("LORA");
    if peft_type != "LORA" {
        return Err(format!("peft_type {peft_type} is not supported (only LORA)"));
    }
    let rank = match v.get("r") {
        None => return Err("missing `r` (the rank)".into()),
        Some(r) => {
            r.as_u64().filter(|&r| r > 0).ok_or_else(|| format!("`r` = {r}: the rank must be a positive integer"))?
        }
    } as usize;
    let alpha = match v.get("lora_alpha") {
        None => return Err("missing `lora_alpha`".into()),
        Some(a) => a.as_f64().ok_or_else(|| format!("`lora_alpha` = {a} is not a number"))?,
    } as f32;
    let dropout = v.get("lora_dropout").and_then(Value::as_f64).unwrap_or(0.0) as f32;
    let rslora = v.get("use_rslora").and_then(Value::as_bool).unwrap_or(false);
    let unsupported = |key: &str, ok: &dyn Fn(&Value) -> bool| match v.get(key) {
        Some(x) if !ok(x) => Err(format!("`{key}` = {x} is not supported")),
        _ => Ok(()),
    };
    unsupported("bias", &|x| x == "none")?;
    unsupported("fan_in_fan_out", &|x| x == false)?;
    unsupported("use_dora", &|x| x == false)?;
    unsupported("modules_to_save", &|x| x.is_null() || x.as_array().is_some_and(|a| a.is_empty()))?;
    unsupported("rank_pattern", &|x| x.as_object().is_some_and(|m| m.is_empty()))?;
    unsupported("alpha_pattern", &|x| x.as_object().is_some_and(|m| m.is_empty()))?;
    // Newer PEFT versions write these keys in every config; each, when set, changes what
    // the adapter computes or which weights it needs (a bias on B, adapters that act only
    // after invocation tokens, replicated layers, extra embedding rows, block-diagonal or
    // routed factors, a rewritten base weight), none of which is implemented here.
    for key in [
        "lora_bias",
        "use_qalora",
        "alora_invocation_tokens",
        "layer_replication",
        "trainable_token_indices",
        "target_parameters",
        "use_bdlora",
        "arrow_config",
        "kasa_config",
        "monteclora_config",
    ] {
        unsupported(key, &is_unset)?;
    }
    // PiSSA, OLoRA, CorDA and LoftQ start by rewriting the base weights; an adapter saved
    // that way only works on the rewritten base (PEFT converts it to plain LoRA when saved
    // with `path_initial_model_for_weight_conversion`, which writes `true` here).
    unsupported("init_lora_weights", &|x| {
        x.as_str().is_none_or(|s| !["pissa", "olora", "corda", "loftq"].iter().any(|p| s.starts_with(p)))
    })?;
    let targets = match v.get("target_modules") {
        Some(Value::Array(a)) => {
            let names: Vec<&str> = a.iter().filter_map(Value::as_str).collect();
            LoraConfig::parse_targets(&names.join(",")).map_err(|e| e.to_string())?
        }
        Some(Value::String(s)) if s == "all-linear" => Target::ALL.to_vec(),
        Some(other) => return Err(format!("target_modules {other} is not supported (give a list of module names)")),
        None => return Err("missing `target_modules`".into()),
    };
    let cfg = LoraConfig { rank, alpha, dropout, rslora, targets };
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// Null, false, or an empty list, map or string: PEFT's "not used" for an optional key.
pub(crate) fn is_unset(x: &Value) -> bool {
    match x {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

/// PEFT's `layers_to_transform` (an index or a list of them; absent or null for every
/// layer). The adapter then simply holds tensors for those layers only; `load` checks
/// that it holds none for the others.
pub(crate) fn parse_layers(v: &Value) -> std::result::Result<Option<Vec<usize>>, String> {
    let index = |x: &Value| x.as_u64().map(|i| i as usize);
    match v.get("layers_to_transform") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| index(x).ok_or_else(|| format!("`layers_to_transform` holds {x}, not a layer index")))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(Some),
        Some(x) => index(x)
            .map(|i| Some(vec![i]))
            .ok_or_else(|| format!("`layers_to_transform` = {x} is not a layer index or a list of them")),
    }
}

/// `(layer, target, rest)` from a PEFT tensor name of a projection's adapter
/// (`...layers.3.self_attn.q_proj.lora_A.weight` -> (3, Q, ["lora_A", "weight"])).
pub(crate) fn split_name(name: &str) -> Option<(usize, Target, Vec<&str>)> {
    let rest = &name[name.find("layers.")? + "layers.".len()..];
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let mut parts = rest.split('.');
    let parent = parts.next()?;
    let t = Target::parse(parts.next()?)?;
    (parent == t.hf_parent()).then(|| (layer, t, parts.collect()))
}

/// `(layer, target, 'A' | 'B')` from a PEFT tensor name; accepts the adapter-name infix
/// (`lora_A.default.weight`) that some PEFT versions keep.
fn parse_name(name: &str) -> Option<(usize, Target, char)> {
    let (layer, t, rest) = split_name(name)?;
    let half = match *rest.first()? {
        "lora_A" => 'A',
        "lora_B" => 'B',
        _ => return None,
    };
    (rest[1..] == ["weight"] || rest[1..] == ["default", "weight"]).then_some((layer, t, half))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for t in Target::ALL {
            for half in ['A', 'B'] {
                assert_eq!(parse_name(&tensor_name(17, t, half)), Some((17, t, half)));
            }
        }
        assert_eq!(
            parse_name("base_model.model.model.layers.3.mlp.down_proj.lora_B.default.weight"),
            Some((3, Target::Down, 'B'))
        );
        assert_eq!(parse_name("base_model.model.model.layers.3.mlp.q_proj.lora_A.weight"), None);
        assert_eq!(parse_name("base_model.model.lm_head.lora_A.weight"), None);
        assert_eq!(parse_name("base_model.model.model.layers.x.self_attn.q_proj.lora_A.weight"), None);
    }

    #[test]
    fn config_round_trips_and_rejects_what_it_cannot_honour() {
        let cfg =
            LoraConfig { rank: 4, alpha: 8.0, dropout: 0.1, rslora: true, targets: vec![Target::Q, Target::Down] };
        let v = config_json(&cfg, "SmolLM2");
        assert_eq!(parse_config(&v).unwrap(), cfg);
        assert_eq!(v["lora_dropout"].to_string(), "0.1", "written as given, not widened from f32");
        for (key, bad) in [
            ("bias", json!("all")),
            ("modules_to_save", json!(["lm_head"])),
            ("use_dora", json!(true)),
            ("rank_pattern", json!({"q_proj": 2})),
            ("target_modules", json!(".*proj")),
            ("r", json!(0)),
            ("lora_bias", json!(true)),
            ("alora_invocation_tokens", json!([1, 2])),
            ("layer_replication", json!([[0, 4], [2, 5]])),
            ("trainable_token_indices", json!([7])),
            ("target_parameters", json!(["mlp.experts.down_proj"])),
            ("init_lora_weights", json!("pissa_niter_4")),
            ("init_lora_weights", json!("loftq")),
        ] {
            let mut v = v.clone();
            v[key] = bad;
            assert!(parse_config(&v).is_err(), "{key}");
        }
        // What PEFT 0.21 writes when these features are off, and init schemes that leave
        // the base weights alone, load.
        let mut v = v.clone();
        for (key, unset) in [
            ("lora_bias", json!(false)),
            ("alora_invocation_tokens", json!(null)),
            ("trainable_token_indices", json!(null)),
            ("loftq_config", json!({})),
            ("init_lora_weights", json!("gaussian")),
            ("use_bdlora", json!(null)),
        ] {
            v[key] = unset;
        }
        assert_eq!(parse_config(&v).unwrap(), cfg);
    }

    #[test]
    fn layers_to_transform_is_an_index_or_a_list() {
        let parse = |x: Value| parse_layers(&json!({ "layers_to_transform": x }));
        assert_eq!(parse(json!(null)).unwrap(), None);
        assert_eq!(parse(json!(3)).unwrap(), Some(vec![3]));
        assert_eq!(parse(json!([0, 1, 2])).unwrap(), Some(vec![0, 1, 2]));
        assert!(parse(json!([0, -1])).is_err());
        assert!(parse(json!("0-2")).is_err());
        assert_eq!(parse_layers(&json!({})).unwrap(), None);
    }
}
