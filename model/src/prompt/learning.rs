//! What PEFT's prompt-learning methods (PROMPT_TUNING, P_TUNING, PREFIX_TUNING) share in
//! their files: the config keys every one of them writes and checks, and the one tensor
//! they save, `prompt_embeddings` (num_virtual_tokens, width).

use crate::error::{ModelError, Result};
use crate::lora::peft::{is_unset, read_config, write_dir, CONFIG_FILE, WEIGHTS_FILE};
use crate::safetensors::SafeTensors;
use lamina_tensor::{DType, Tensor};
use serde_json::{json, Value};
use std::path::Path;

/// Refuse a virtual-token count (or an encoder width) outside 1..=`max`: a typo, not a model.
pub fn check_count(what: &str, n: usize, max: usize) -> Result<()> {
    if n == 0 || n > max {
        return Err(ModelError::Invalid(format!("{what} must be in 1..={max}, got {n}")));
    }
    Ok(())
}

/// The most virtual tokens (or prefix positions) an adapter may have.
pub const MAX_VIRTUAL_TOKENS: usize = 4096;
/// The widest prompt encoder or prefix MLP.
pub const MAX_ENCODER_WIDTH: usize = 65536;

/// PEFT's name of the saved tensor.
pub const TENSOR_NAME: &str = "prompt_embeddings";

/// The model-side numbers a prompt-learning config records (PEFT fills them in from the
/// model's config; for prefix tuning on grouped-query models, the key/value heads').
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigDims {
    pub token_dim: usize,
    pub num_attention_heads: usize,
    pub num_layers: usize,
}

/// The keys every prompt-learning `adapter_config.json` has; `extra` adds the method's.
pub fn config_json(peft_type: &str, k: usize, base_model: &str, dims: ConfigDims, extra: Value) -> Value {
    let mut v = json!({
        "peft_type": peft_type,
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "num_virtual_tokens": k,
        "token_dim": dims.token_dim,
        "num_transformer_submodules": 1,
        "num_attention_heads": dims.num_attention_heads,
        "num_layers": dims.num_layers,
        "inference_mode": true,
        "modules_to_save": null,
        "revision": null
    });
    if let (Some(map), Value::Object(more)) = (v.as_object_mut(), extra) {
        map.extend(more);
    }
    v
}

/// Check the shared keys of a config read from a file: the type, the model numbers the
/// method depends on (`must_match`: keys and this model's values, where the file gives
/// them) and what is not supported. Returns num_virtual_tokens.
pub fn check_config(v: &Value, peft_type: &str, must_match: &[(&str, usize)]) -> std::result::Result<usize, String> {
    let found = v.get("peft_type").and_then(Value::as_str).unwrap_or("");
    if found != peft_type {
        return Err(format!("peft_type `{found}` is not {peft_type}"));
    }
    let count = |key: &str| v.get(key).and_then(Value::as_u64).map(|n| n as usize);
    let k = count("num_virtual_tokens").ok_or("missing integer `num_virtual_tokens`")?;
    for &(key, want) in must_match {
        if let Some(got) = count(key).filter(|&n| n != want) {
            return Err(format!("`{key}` is {got}, this model's is {want}"));
        }
    }
    if count("num_transformer_submodules").is_some_and(|n| n != 1) {
        return Err("`num_transformer_submodules` other than 1 (encoder-decoder models) is not supported".into());
    }
    if v.get("modules_to_save").is_some_and(|x| !is_unset(x)) {
        return Err(format!("`modules_to_save` = {} is not supported", v["modules_to_save"]));
    }
    Ok(k)
}

/// Read `dir`'s config with `parse` (errors name the file).
pub fn read_with<T>(dir: &Path, parse: impl FnOnce(&Value) -> std::result::Result<T, String>) -> Result<T> {
    parse(&read_config(dir)?).map_err(|m| ModelError::Invalid(format!("{}: {m}", dir.join(CONFIG_FILE).display())))
}

/// `dir`'s one tensor, `prompt_embeddings` of shape `want`, on the CPU in f32.
pub fn load_embeddings(dir: &Path, want: [usize; 2]) -> Result<Tensor> {
    let path = dir.join(WEIGHTS_FILE);
    let st = SafeTensors::open(&path)?;
    match st.tensors() {
        [info] if info.name == TENSOR_NAME && info.shape == want => Ok(st.load(TENSOR_NAME, DType::F32)?),
        other => Err(ModelError::Invalid(format!(
            "{}: expected one tensor `{TENSOR_NAME}` of shape {want:?}, found {:?}",
            path.display(),
            other.iter().map(|i| format!("{} {:?}", i.name, i.shape)).collect::<Vec<_>>()
        ))),
    }
}

/// Write `embeddings` and `config` to `dir`.
pub fn save(dir: &Path, embeddings: Tensor, config: &Value) -> Result<()> {
    write_dir(dir, vec![(TENSOR_NAME.to_string(), embeddings)], config)
}
