//! LoRA on the real model: an adapter saved in PEFT's layout loads back with identical
//! outputs, its q/k tensors are stored in Hugging Face's row order (checked against the
//! split-halves model that HF weights give), and merging it into a GGUF gives the
//! adapted model's logits without the adapter.

use lamina_model::causal_lm::{CausalLm, LogitsFor};
use lamina_model::gguf::{write_with_replacements, GgufFile};
use lamina_model::lora::{LoraConfig, LoraLayer, Target};
use lamina_model::{Llama, LoadOptions};
use lamina_tensor::quant::GgmlType;
use lamina_tensor::{DType, Device, Tensor};
use lamina_testkit::smollm2 as smollm2_for_test;

const PROMPT: [u32; 6] = [1, 504, 3458, 282, 4649, 314];

fn logits(m: &Llama) -> Vec<f32> {
    let _g = lamina_tensor::NoGradGuard::new();
    let mut cache = m.new_cache(16).unwrap();
    m.forward(&PROMPT, &mut cache, LogitsFor::All).unwrap().to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

fn float_model(f: &GgufFile) -> Llama {
    Llama::from_gguf_with(f, LoadOptions { device: Device::Cpu, keep_quantized: false }).unwrap()
}

/// An adapter on q, k and v with B non-zero, so it visibly changes the outputs.
fn adapted(f: &GgufFile) -> (Llama, LoraConfig) {
    let mut m = float_model(f);
    let cfg =
        LoraConfig { rank: 4, alpha: 8.0, dropout: 0.0, rslora: false, targets: vec![Target::Q, Target::K, Target::V] };
    m.attach_lora(&cfg, 3).unwrap();
    for (i, b) in m.blocks.iter_mut().enumerate() {
        for t in [Target::Q, Target::K, Target::V] {
            let l = b.lora.get(t).unwrap().clone();
            let bt = Tensor::randn(l.b.shape(), 0.0, 0.05, 50 + i as u64 * 4 + t as u64, DType::F32).unwrap();
            b.lora.set(t, Some(LoraLayer { b: bt, ..l }));
        }
    }
    (m, cfg)
}

#[test]
fn peft_adapter_round_trips_and_merges() {
    let Some(path) = smollm2_for_test() else { return };
    let f = GgufFile::open(&path).unwrap();
    let base = logits(&float_model(&f));
    let (m, cfg) = adapted(&f);
    let with = logits(&m);
    assert!(max_diff(&base, &with) > 0.1, "the adapter should change the logits");

    let dir = std::env::temp_dir().join(format!("lamina-lora-smol-{}", std::process::id()));
    m.save_lora(&dir, &cfg, "HuggingFaceTB/SmolLM2-135M-Instruct").unwrap();
    let mut again = float_model(&f);
    assert_eq!(again.load_lora(&dir, false).unwrap(), cfg);
    assert_eq!(logits(&again), with, "a saved and reloaded adapter must give identical logits");

    // In the file, q's B rows are in HF's order: what the GGUF model holds, un-permuted.
    let st = lamina_model::safetensors::SafeTensors::open(dir.join("adapter_model.safetensors")).unwrap();
    let name = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
    let stored = st.load(name, DType::F32).unwrap();
    let ours = m.blocks[0].lora.get(Target::Q).unwrap().b.clone();
    let hf = lamina_model::llama::hf_rows_from_gguf(&ours, m.config.n_heads).unwrap();
    assert_eq!(stored.to_vec::<f32>().unwrap(), hf.to_vec::<f32>().unwrap());
    assert_ne!(stored.to_vec::<f32>().unwrap(), ours.to_vec::<f32>().unwrap(), "q rows must be permuted");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(config["target_modules"], serde_json::json!(["q_proj", "k_proj", "v_proj"]));
    assert_eq!(config["r"], 4);

    // Merged into a GGUF (F32 matrices): the adapted logits, no adapter needed.
    let out = dir.join("merged.gguf");
    write_with_replacements(&f, &out, &m.merged_weights().unwrap(), |_| GgmlType::F32, |_, _| {}).unwrap();
    let merged = float_model(&GgufFile::open(&out).unwrap());
    assert!(!merged.has_lora());
    let d = max_diff(&logits(&merged), &with);
    assert!(d < 2e-3, "merged model differs from base + adapter by {d}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hostile_adapter_directories_give_clear_errors() {
    let Some(path) = smollm2_for_test() else { return };
    let f = GgufFile::open(&path).unwrap();
    let (m, cfg) = adapted(&f);
    let dir = std::env::temp_dir().join(format!("lamina-lora-bad-{}", std::process::id()));
    m.save_lora(&dir, &cfg, "x").unwrap();
    let cfg_path = dir.join("adapter_config.json");
    let good = std::fs::read_to_string(&cfg_path).unwrap();
    let check = |text: &str, word: &str| {
        std::fs::write(&cfg_path, text).unwrap();
        let err = float_model(&f).load_lora(&dir, false).expect_err("should fail").to_string();
        assert!(err.contains(word), "`{err}` should mention `{word}`");
    };
    check("{not json", "JSON");
    check(&good.replace("\"r\": 4", "\"r\": 8"), "rank");
    check(&good.replace("\"bias\": \"none\"", "\"bias\": \"all\""), "bias");
    check(&good.replace("\"q_proj\"", "\"lm_head\""), "lm_head");
    std::fs::write(&cfg_path, &good).unwrap();
    std::fs::write(dir.join("adapter_model.safetensors"), b"garbage").unwrap();
    assert!(float_model(&f).load_lora(&dir, false).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
    let missing = float_model(&f).load_lora(&dir, false).err().unwrap().to_string();
    assert!(missing.contains("adapter_config.json"), "{missing}");
}
