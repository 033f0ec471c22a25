//! Bottleneck adapters on disk, in a layout of our own (PEFT has no such method), shaped
//! like a PEFT adapter directory so `--adapter DIR` takes it:
//!
//! - `adapter_config.json`: `{"peft_type": "LAMINA_BOTTLENECK", "format_version": 1,
//!   "task_type": "CAUSAL_LM", "base_model_name_or_path", "bottleneck_size",
//!   "placement": "houlsby" | "pfeiffer", "non_linearity": "relu" | "silu" | "gelu",
//!   "hidden_size", "num_layers"}`;
//! - `adapter_model.safetensors`, f32: for each layer i and site s (`attn_adapter` after the
//!   attention's output projection, Houlsby only; `mlp_adapter` after the MLP's down
//!   projection), `model.layers.{i}.{s}.down.weight` (size, hidden), `.down.bias` (size),
//!   `.up.weight` (hidden, size), `.up.bias` (hidden); y + up(act(down(y))), weights used
//!   as `x W^T` (PyTorch's `nn.Linear`).

use super::{Bottleneck, BottleneckAct, BottleneckBlock, BottleneckConfig, Placement};
use crate::error::{ModelError, Result};
use crate::lora::peft::{read_config, write_dir, CONFIG_FILE, WEIGHTS_FILE};
use crate::nn::Linear;
use crate::safetensors::SafeTensors;
use lamina_tensor::{DType, Device, Tensor};
use serde_json::{json, Value};
use std::path::Path;

pub const PEFT_TYPE: &str = "LAMINA_BOTTLENECK";
const FORMAT_VERSION: u64 = 1;

/// The tensor name of `site`'s `part` (`down.weight`...) in layer `layer`.
pub fn tensor_name(layer: usize, site: &str, part: &str) -> String {
    format!("model.layers.{layer}.{site}.{part}")
}

pub fn config_json(cfg: &BottleneckConfig, base_model: &str, dim: usize, layers: usize) -> Value {
    json!({
        "peft_type": PEFT_TYPE,
        "format_version": FORMAT_VERSION,
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "bottleneck_size": cfg.size,
        "placement": cfg.placement.name(),
        "non_linearity": cfg.activation.name(),
        "hidden_size": dim,
        "num_layers": layers,
    })
}

fn parts(b: &Bottleneck) -> [(&'static str, &Tensor); 4] {
    [
        ("down.weight", &b.down.weight),
        ("down.bias", b.down.bias.as_ref().expect("adapter projections have biases")),
        ("up.weight", &b.up.weight),
        ("up.bias", b.up.bias.as_ref().expect("adapter projections have biases")),
    ]
}

/// Every tensor of `layers`' adapters with its name.
pub fn named_tensors(layers: &[BottleneckBlock]) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (i, block) in layers.iter().enumerate() {
        for (site, b) in block.sites() {
            out.extend(parts(b).into_iter().map(|(part, t)| (tensor_name(i, site, part), t.clone())));
        }
    }
    out
}

pub fn save(dir: &Path, cfg: &Value, layers: &[BottleneckBlock]) -> Result<()> {
    write_dir(dir, named_tensors(layers), cfg)
}

/// Read a bottleneck-adapter directory for a model `dim` wide with `n_layers` blocks.
pub fn load(
    dir: &Path,
    dim: usize,
    n_layers: usize,
    device: Device,
) -> Result<(BottleneckConfig, Vec<BottleneckBlock>)> {
    let cfg_path = dir.join(CONFIG_FILE);
    let cfg = parse_config(&read_config(dir)?, dim, n_layers)
        .map_err(|m| ModelError::Invalid(format!("{}: {m}", cfg_path.display())))?;
    let path = dir.join(WEIGHTS_FILE);
    let st = SafeTensors::open(&path)?;
    let bad = |m: String| ModelError::Invalid(format!("{}: {m}", path.display()));
    let mut expected = 0;
    let mut load = |name: String, shape: &[usize]| -> Result<Tensor> {
        expected += 1;
        let info = st.tensors().iter().find(|i| i.name == name).ok_or_else(|| bad(format!("missing `{name}`")))?;
        if info.shape != shape {
            return Err(bad(format!("`{name}` has shape {:?}, expected {shape:?}", info.shape)));
        }
        Ok(st.load(&name, DType::F32)?.to_device(device)?)
    };
    let mut layers = Vec::with_capacity(n_layers);
    for i in 0..n_layers {
        let mut site = |name: &str| -> Result<Bottleneck> {
            let mut linear = |part: &str, out: usize, inp: usize| -> Result<Linear> {
                let weight = load(tensor_name(i, name, &format!("{part}.weight")), &[out, inp])?;
                Ok(Linear { weight, bias: Some(load(tensor_name(i, name, &format!("{part}.bias")), &[out])?) })
            };
            Ok(Bottleneck {
                down: linear("down", cfg.size, dim)?,
                up: linear("up", dim, cfg.size)?,
                activation: cfg.activation,
            })
        };
        let attn = if cfg.placement.after_attention() { Some(site("attn_adapter")?) } else { None };
        layers.push(BottleneckBlock { attn, mlp: Some(site("mlp_adapter")?) });
    }
    if st.tensors().len() != expected {
        return Err(bad(format!("holds {} tensors, the config describes {expected}", st.tensors().len())));
    }
    Ok((cfg, layers))
}

fn parse_config(v: &Value, dim: usize, n_layers: usize) -> std::result::Result<BottleneckConfig, String> {
    let peft_type = v.get("peft_type").and_then(Value::as_str).unwrap_or("");
    if peft_type != PEFT_TYPE {
        return Err(format!("peft_type `{peft_type}` is not {PEFT_TYPE}"));
    }
    let count = |key: &str| v.get(key).and_then(Value::as_u64).ok_or(format!("missing integer `{key}`"));
    if count("format_version")? != FORMAT_VERSION {
        return Err(format!("format_version {} is not {FORMAT_VERSION}", v["format_version"]));
    }
    for (key, want) in [("hidden_size", dim), ("num_layers", n_layers)] {
        let got = count(key)? as usize;
        if got != want {
            return Err(format!("`{key}` is {got}, this model's is {want}"));
        }
    }
    let text = |key: &str| v.get(key).and_then(Value::as_str).unwrap_or("");
    let placement =
        Placement::parse(text("placement")).ok_or(format!("`placement` = {} (houlsby or pfeiffer)", v["placement"]))?;
    let activation = BottleneckAct::parse(text("non_linearity"))
        .ok_or(format!("`non_linearity` = {} (relu, silu or gelu)", v["non_linearity"]))?;
    let cfg = BottleneckConfig { size: count("bottleneck_size")? as usize, placement, activation };
    cfg.validate(dim).map_err(|e| e.to_string())?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_what_it_cannot_honour() {
        let cfg = BottleneckConfig { size: 4, placement: Placement::Pfeiffer, activation: BottleneckAct::Silu };
        let v = config_json(&cfg, "tiny", 32, 2);
        assert_eq!(parse_config(&v, 32, 2).unwrap(), cfg);
        assert!(parse_config(&v, 64, 2).unwrap_err().contains("hidden_size"));
        assert!(parse_config(&v, 32, 3).unwrap_err().contains("num_layers"));
        for (key, bad) in [
            ("peft_type", json!("LORA")),
            ("format_version", json!(2)),
            ("bottleneck_size", json!(0)),
            ("placement", json!("parallel")),
            ("non_linearity", json!("tanh")),
        ] {
            let mut v = v.clone();
            v[key] = bad;
            assert!(parse_config(&v, 32, 2).is_err(), "{key}");
        }
    }
}
