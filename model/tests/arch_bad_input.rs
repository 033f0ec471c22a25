//! Bad model files and configs are clear errors that name the architecture and the field
//! or tensor at fault: a GGUF of an architecture not in the registry, a GGUF whose
//! metadata disagrees with its tensors' shapes, and Hugging Face configs with an unknown
//! `model_type`, options not implemented (partial rotary embeddings, RoPE scaling) or
//! sizes the safetensors do not have. Each starts from a family fixture that loads
//! (tests/fixtures/arch/) and changes one thing.

mod support;

use lamina_model::arch;
use lamina_model::gguf::GgufFile;
use lamina_model::hf::HfModel;
use lamina_model::LoadOptions;
use lamina_tensor::Device;
use support::arch_fixture::dir;
use support::TempDir;

/// The GGUF fixture of `family` with the metadata string or integer after `key` changed
/// by `edit` (same length for strings), loaded; the error's text.
fn gguf_error(family: &str, key: &str, edit: impl FnOnce(&mut [u8])) -> String {
    let mut bytes = std::fs::read(dir(family).join("model.gguf")).unwrap();
    let at = bytes
        .windows(key.len() + 8)
        .position(|w| &w[8..] == key.as_bytes() && w[..8] == (key.len() as u64).to_le_bytes());
    let value = at.expect("the key is in the file") + 8 + key.len();
    edit(&mut bytes[value..]);
    let f = GgufFile::from_bytes(bytes).unwrap();
    match arch::load_gguf(&f, LoadOptions::on(Device::Cpu)) {
        Ok(_) => panic!("{family}: {key} edited and still loads"),
        Err(e) => e.to_string(),
    }
}

/// The HF fixture of `family` with `config.json`'s `key` set to `value`, loaded.
fn hf_error(family: &str, key: &str, value: serde_json::Value) -> String {
    let tmp = TempDir::new("arch-bad");
    for entry in std::fs::read_dir(dir(family).join("hf")).unwrap() {
        let p = entry.unwrap().path();
        std::fs::copy(&p, tmp.path(p.file_name().unwrap().to_str().unwrap())).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path("config.json")).unwrap()).unwrap();
    config[key] = value;
    std::fs::write(tmp.path("config.json"), config.to_string()).unwrap();
    let loaded = HfModel::open(&tmp.0).and_then(|m| arch::load_hf(&m, LoadOptions::on(Device::Cpu)));
    match loaded {
        Ok(_) => panic!("{family}: config.json {key} edited and still loads"),
        Err(e) => e.to_string(),
    }
}

fn names(err: &str, parts: &[&str]) {
    for p in parts {
        assert!(err.contains(p), "the error should name {p:?}: {err}");
    }
}

#[test]
fn gguf_of_an_unknown_architecture() {
    // general.architecture: a string (type 8), its length, then the text.
    let err = gguf_error("qwen2", "general.architecture", |v| {
        assert_eq!(&v[12..17], b"qwen2");
        v[12..17].copy_from_slice(b"mamba");
    });
    names(&err, &["mamba", "general.architecture"]);
}

#[test]
fn gguf_metadata_that_disagrees_with_the_tensors() {
    // qwen2.feed_forward_length: type 4 (u32), then the value.
    let err = gguf_error("qwen2", "qwen2.feed_forward_length", |v| {
        assert_eq!(u32::from_le_bytes(v[..4].try_into().unwrap()), 4);
        let n = u32::from_le_bytes(v[4..8].try_into().unwrap());
        v[4..8].copy_from_slice(&(n + 8).to_le_bytes());
    });
    names(&err, &["qwen2", "ffn"]);
}

#[test]
fn hf_configs_with_what_is_not_implemented() {
    names(&hf_error("phi3", "partial_rotary_factor", 0.5.into()), &["phi3", "partial_rotary_factor"]);
    let yarn = serde_json::json!({"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0});
    names(&hf_error("qwen3", "rope_parameters", yarn), &["qwen3", "yarn"]);
    names(&hf_error("llama", "model_type", "mamba".into()), &["mamba", "model_type"]);
}

#[test]
fn hf_config_sizes_the_weights_do_not_have() {
    // The tensor as the checkpoint names it, the shape it has and the one the config implies.
    let err = hf_error("gemma2", "intermediate_size", 40.into());
    names(&err, &["gemma2", "model.layers.0.mlp.gate_proj.weight", "[64, 32]", "[40, 32]"]);
}
