//! `lamina info` end to end: the real model when present, small files built here, and
//! hostile files, which must give a non-zero exit and a clear message, never a panic.

use lamina_model::gguf::{self, GgufTensor, MetaArray, MetaValue};
use lamina_model::safetensors;
use lamina_tensor::quant::GgmlType;
use lamina_tensor::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn lamina(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamina")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn info(path: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["info", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    lamina(&args)
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn real_model() {
    let Some(path) = lamina_testkit::smollm2() else { return };
    let (ok, out, err) = info(&path, &[]);
    assert!(ok, "{err}");
    for want in [
        "GGUF v3",
        "architecture  llama",
        "embedding length        576",
        "block count             30",
        "head count kv           3",
        "bos token               <|im_start|>",
        "eos token               <|im_end|>",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM",
        "Q4_1",
        "token_embd.weight",
        "[49152, 576]",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }

    let (ok, out, err) = info(&path, &["--json", "--metadata-all"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["architecture"], "llama");
    assert_eq!(v["hyperparameters"]["head_count"], 9);
    assert_eq!(v["hyperparameters"]["rms_norm_eps"], 1e-5);
    assert_eq!(v["tokenizer"]["vocab_size"], 49152);
    assert_eq!(v["tensors"].as_array().unwrap().len(), 272);
    assert_eq!(v["quantization"]["tensors"], 272);
    let template = v["chat_templates"]["default"].as_str().unwrap();
    assert_eq!(v["metadata"]["tokenizer.chat_template"], template, "--metadata-all keeps values whole");
    assert!(v["metadata"]["tokenizer.ggml.tokens"].as_str().unwrap().contains("49152"), "token lists stay summarised");
}

#[test]
fn small_gguf_and_safetensors_and_hf_directory() {
    let dir = temp_dir("formats");
    let meta = vec![
        ("general.architecture".to_string(), MetaValue::String("gpt2".into())),
        ("gpt2.block_count".to_string(), MetaValue::U32(2)),
        ("gpt2.expert_count".to_string(), MetaValue::U32(0)),
        ("tokenizer.ggml.tokens".to_string(), MetaValue::Array(MetaArray::String(vec!["<s>".into(), "a".into()]))),
        ("tokenizer.ggml.bos_token_id".to_string(), MetaValue::U32(0)),
    ];
    let data = vec![0u8; 34];
    let t = [GgufTensor { name: "w", ty: GgmlType::Q8_0, ne: &[32], data: &data }];
    gguf::write_gguf(dir.join("m.gguf"), meta, &t).unwrap();
    let (ok, out, err) = info(&dir.join("m.gguf"), &[]);
    assert!(ok, "{err}");
    for want in
        ["architecture  gpt2", "block count             2", "expert count            0", "bos token               <s>"]
    {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(out.contains("Q8_0") && out.contains("8.50"), "bits per weight of Q8_0:\n{out}");

    let w = Tensor::from_f32s(vec![0.0; 6], &[2, 3], DType::BF16).unwrap();
    let st_meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::write_safetensors(dir.join("model.safetensors"), &[("lm_head.weight", &w)], &st_meta).unwrap();
    let (ok, out, err) = info(&dir.join("model.safetensors"), &[]);
    assert!(ok, "{err}");
    assert!(out.contains("lm_head.weight") && out.contains("BF16") && out.contains("safetensors.format"), "{out}");

    std::fs::write(dir.join("config.json"), r#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 6}"#).unwrap();
    std::fs::write(dir.join("tokenizer_config.json"), r#"{"chat_template": "{{ bos_token }}", "eos_token": "</s>"}"#)
        .unwrap();
    let (ok, out, err) = info(&dir, &["--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["architecture"], "LlamaForCausalLM");
    assert_eq!(v["hyperparameters"]["embedding_length"], 6);
    assert_eq!(v["tokenizer"]["eos_token"], "</s>");
    assert_eq!(v["chat_templates"]["default"], "{{ bos_token }}");
    assert_eq!(v["tensors"][0]["shape"], serde_json::json!([2, 3]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_and_missing_files_fail_cleanly() {
    let dir = temp_dir("hostile");
    let mut huge_count = b"GGUF".to_vec();
    huge_count.extend_from_slice(&3u32.to_le_bytes());
    huge_count.extend_from_slice(&u64::MAX.to_le_bytes());
    huge_count.extend_from_slice(&0u64.to_le_bytes());
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("count.gguf", huge_count, "tensor count"),
        ("cut.gguf", b"GGUF\x03\0\0".to_vec(), "truncated"),
        ("len.safetensors", u64::MAX.to_le_bytes().to_vec(), "header length"),
        ("text.safetensors", b"hello, world".to_vec(), "header length"),
    ];
    for (name, bytes, word) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (ok, out, err) = info(&path, &[]);
        assert!(!ok, "{name} succeeded:\n{out}");
        assert!(err.starts_with("error: ") && err.contains(word), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    let (ok, _, err) = info(&dir.join("absent.gguf"), &[]);
    assert!(!ok && err.contains("absent.gguf"), "{err}");
    let (ok, _, err) = info(&dir, &[]);
    assert!(!ok && err.contains("config.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
