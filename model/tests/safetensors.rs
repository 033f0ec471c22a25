//! safetensors write → read round trips, sharded checkpoints, and Hugging Face model
//! directories (config.json, tokenizer files, chat templates).

mod support;

use lamina_model::hf::HfModel;
use lamina_model::safetensors::{self, SafeDtype, SafeTensors, SafeTensorsSet};
use lamina_model::ModelError;
use lamina_tensor::{DType, Tensor};
use std::collections::BTreeMap;
use support::TempDir;

fn sample() -> Vec<(&'static str, Tensor)> {
    let f = |n: usize, s: f32| (0..n).map(|i| i as f32 * s - 1.0).collect::<Vec<f32>>();
    vec![
        ("model.embed_tokens.weight", Tensor::from_f32s(f(6, 0.5), &[2, 3], DType::F32).unwrap()),
        ("model.norm.weight", Tensor::from_f32s(f(4, 0.25), &[4], DType::F16).unwrap()),
        ("lm_head.weight", Tensor::from_f32s(f(4, 1.5), &[1, 2, 2], DType::BF16).unwrap()),
        ("ids", Tensor::from_vec(vec![3i32, -1, 7], &[3]).unwrap()),
        ("scale", Tensor::from_f32s(vec![0.125], &[], DType::F32).unwrap()),
        ("empty", Tensor::from_f32s(vec![], &[0, 5], DType::F32).unwrap()),
    ]
}

fn meta() -> BTreeMap<String, String> {
    BTreeMap::from([("format".to_string(), "pt".to_string())])
}

fn write(path: &std::path::Path, tensors: &[(&str, Tensor)]) {
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    safetensors::write_safetensors(path, &refs, &meta()).unwrap();
}

#[test]
fn round_trip() {
    let dir = TempDir::new("st");
    let path = dir.path("model.safetensors");
    let tensors = sample();
    write(&path, &tensors);
    assert_eq!(dir.files(), ["model.safetensors"]);
    let bytes = std::fs::read(&path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(header_len % 8, 0, "the header is padded so the data is aligned");

    let st = SafeTensors::open(&path).unwrap();
    assert_eq!(st.metadata(), &meta());
    let names: Vec<&str> = tensors.iter().map(|(n, _)| *n).collect();
    // Data order is the order written (the empty tensor sorts by its offset too).
    let mut got = st.names();
    got.sort();
    let mut want = names.clone();
    want.sort();
    assert_eq!(got, want);
    for (name, t) in &tensors {
        let info = st.tensor_info(name).unwrap();
        assert_eq!(info.shape, t.shape(), "{name}");
        if t.dtype().is_float() {
            let loaded = st.load(name, t.dtype()).unwrap();
            assert_eq!(loaded.dtype(), t.dtype());
            assert_eq!(loaded.shape(), t.shape());
            assert_eq!(loaded.to_vec_f32().unwrap(), t.to_vec_f32().unwrap(), "{name}");
            // And converted on load.
            assert_eq!(st.load(name, DType::F32).unwrap().to_vec_f32().unwrap(), t.to_vec_f32().unwrap());
        }
    }
    assert_eq!(st.tensor_info("lm_head.weight").unwrap().dtype, SafeDtype::BF16);
    assert_eq!(st.tensor_info("ids").unwrap().dtype, SafeDtype::I32);
    let e = st.load("ids", DType::F32).unwrap_err();
    assert!(matches!(e, ModelError::Unsupported(_)) && e.to_string().contains("I32"), "{e}");
    assert!(matches!(st.load("nope", DType::F32), Err(ModelError::Missing(_))));
    assert_eq!(safetensors::to_bytes(&[], &BTreeMap::new()).unwrap(), b"\x08\0\0\0\0\0\0\0{}      ");
}

#[test]
fn writer_refuses_repeated_or_reserved_names() {
    let t = Tensor::from_f32s(vec![1.0], &[1], DType::F32).unwrap();
    let none = BTreeMap::new();
    assert!(safetensors::to_bytes(&[("a", &t), ("a", &t)], &none).unwrap_err().to_string().contains("repeated"));
    assert!(safetensors::to_bytes(&[("__metadata__", &t)], &none).is_err());
}

/// Writes a non-contiguous view by its logical (row-major) order.
#[test]
fn writer_handles_views() {
    let t = Tensor::from_f32s((0..6).map(|i| i as f32).collect(), &[2, 3], DType::F32).unwrap();
    let tt = t.transpose(0, 1).unwrap();
    let st = SafeTensors::from_bytes(safetensors::to_bytes(&[("t", &tt)], &BTreeMap::new()).unwrap()).unwrap();
    assert_eq!(st.load("t", DType::F32).unwrap().to_vec_f32().unwrap(), [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
}

fn write_index(dir: &TempDir, map: &[(&str, &str)]) {
    let weight_map: serde_json::Map<String, serde_json::Value> =
        map.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
    let index = serde_json::json!({ "metadata": { "total_size": 0 }, "weight_map": weight_map });
    std::fs::write(dir.path(safetensors::INDEX_FILE), index.to_string()).unwrap();
}

#[test]
fn sharded_checkpoints() {
    let dir = TempDir::new("st-shards");
    let tensors = sample();
    write(&dir.path("model-00001-of-00002.safetensors"), &tensors[..3]);
    write(&dir.path("model-00002-of-00002.safetensors"), &tensors[3..]);
    let map: Vec<(&str, &str)> = tensors
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            (*n, if i < 3 { "model-00001-of-00002.safetensors" } else { "model-00002-of-00002.safetensors" })
        })
        .collect();
    write_index(&dir, &map);
    for path in [dir.0.clone(), dir.path(safetensors::INDEX_FILE)] {
        let set = SafeTensorsSet::open(&path).unwrap();
        assert_eq!(set.shards().len(), 2);
        assert_eq!(set.tensors().count(), tensors.len());
        let w = set.load("model.embed_tokens.weight", DType::F32).unwrap();
        assert_eq!(w.to_vec_f32().unwrap(), tensors[0].1.to_vec_f32().unwrap());
        assert_eq!(set.tensor_info("scale").unwrap().shape, Vec::<usize>::new());
    }

    // Hostile indexes: shard paths leaving the directory, names not in their shard.
    for bad in ["../model-00001-of-00002.safetensors", "/etc/passwd", "sub/x.safetensors", ".."] {
        write_index(&dir, &[("ids", bad)]);
        let e = SafeTensorsSet::open(&dir.0).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("not a file name"), "{bad}: {e}");
    }
    write_index(&dir, &[("ids", "model-00001-of-00002.safetensors")]);
    let e = SafeTensorsSet::open(&dir.0).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("not in its shard"), "{e}");
    write_index(&dir, &[("ids", "missing.safetensors")]);
    assert!(matches!(SafeTensorsSet::open(&dir.0), Err(ModelError::Io { .. })));
    std::fs::write(dir.path(safetensors::INDEX_FILE), "{\"weight_map\": 3}").unwrap();
    assert!(SafeTensorsSet::open(&dir.0).map(|_| ()).unwrap_err().to_string().contains("JSON"));
    let empty = TempDir::new("st-none");
    assert!(matches!(SafeTensorsSet::open(&empty.0), Err(ModelError::Missing(_))));
}

const LLAMA_CONFIG: &str = r#"{
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
  "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
  "num_key_value_heads": 3, "rms_norm_eps": 1e-05, "rope_theta": 100000,
  "max_position_embeddings": 8192, "vocab_size": 49152, "tie_word_embeddings": true,
  "bos_token_id": 1, "eos_token_id": [2, 0], "rope_scaling": null, "torch_dtype": "bfloat16"
}"#;

const TOKENIZER_JSON: &str = r#"{
  "version": "1.0", "added_tokens": [{"id": 0, "content": "<|endoftext|>", "special": true},
  {"id": 1, "content": "<|im_start|>", "special": true}],
  "model": {"type": "BPE", "vocab": {"<|endoftext|>": 0, "<|im_start|>": 1, "a": 2, "b": 3}, "merges": ["a b"]}
}"#;

#[test]
fn hugging_face_directory() {
    let dir = TempDir::new("hf");
    std::fs::write(dir.path("config.json"), LLAMA_CONFIG).unwrap();
    std::fs::write(dir.path("tokenizer.json"), TOKENIZER_JSON).unwrap();
    let tc = r#"{"bos_token": {"content": "<|im_start|>", "lstrip": false}, "eos_token": "<|im_end|>",
                 "add_bos_token": false, "model_max_length": 1e30,
                 "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}"#;
    std::fs::write(dir.path("tokenizer_config.json"), tc).unwrap();
    write(&dir.path("model.safetensors"), &sample());

    let m = HfModel::open(&dir.0).unwrap();
    let c = &m.config;
    assert_eq!(c.architectures, ["LlamaForCausalLM"]);
    assert_eq!(
        (c.embedding_length(), c.block_count(), c.head_count(), c.head_count_kv()),
        (Some(576), Some(30), Some(9), Some(3))
    );
    assert_eq!((c.feed_forward_length(), c.context_length(), c.vocab_size), (Some(1536), Some(8192), Some(49152)));
    assert_eq!((c.norm_eps(), c.rope_theta, c.tie_word_embeddings), (Some(1e-5), Some(1e5), Some(true)));
    assert_eq!(c.eos_token_id, Some(lamina_model::hf::TokenIds::Many(vec![2, 0])));
    assert_eq!(m.config_json["torch_dtype"], "bfloat16");
    assert_eq!(m.chat_template.as_deref(), Some("D"));
    assert_eq!(m.tokenizer_config.bos_token.as_ref().unwrap().content(), "<|im_start|>");
    assert_eq!(m.tokenizer_config.eos_token.as_ref().unwrap().content(), "<|im_end|>");
    let tok = m.tokenizer_summary().unwrap().unwrap();
    assert_eq!((tok.model.as_str(), tok.vocab_size, tok.added_tokens.len()), ("BPE", 4, 2));
    assert_eq!(m.weights.tensors().count(), 6);

    // chat_template.jinja, as newer transformers saves it, comes first.
    std::fs::write(dir.path("chat_template.jinja"), "{{ messages }}").unwrap();
    assert_eq!(HfModel::open(&dir.0).unwrap().chat_template.as_deref(), Some("{{ messages }}"));

    // GPT-2 names.
    let gpt2 = r#"{"architectures": ["GPT2LMHeadModel"], "n_embd": 768, "n_layer": 12, "n_head": 12,
                   "n_positions": 1024, "n_inner": null, "layer_norm_epsilon": 1e-5, "vocab_size": 50257}"#;
    std::fs::write(dir.path("config.json"), gpt2).unwrap();
    let c = HfModel::open(&dir.0).unwrap().config;
    assert_eq!(
        (c.embedding_length(), c.block_count(), c.head_count(), c.head_count_kv()),
        (Some(768), Some(12), Some(12), Some(12))
    );
    assert_eq!((c.feed_forward_length(), c.context_length(), c.norm_eps()), (Some(3072), Some(1024), Some(1e-5)));

    // Bad directories: no config, a config of the wrong shape.
    std::fs::write(dir.path("config.json"), r#"{"hidden_size": "wide"}"#).unwrap();
    assert!(HfModel::open(&dir.0).map(|_| ()).unwrap_err().to_string().contains("config.json"));
    std::fs::remove_file(dir.path("config.json")).unwrap();
    assert!(matches!(HfModel::open(&dir.0), Err(ModelError::Missing(_))));
}
