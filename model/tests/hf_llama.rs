//! LLaMA from a Hugging Face directory (config.json + model.safetensors, the layout
//! `transformers` saves): SmolLM2's first layers written out the way transformers stores
//! them (q/k in the split-halves RoPE layout, HF tensor names), loaded back, and compared
//! with the GGUF model cut to the same depth. Checks the name mapping, config.json
//! parsing and the split-halves RoPE against the interleaved one.

use lamina_model::gguf::GgufFile;
use lamina_model::hf::HfModel;
use lamina_model::llama::hf_name;
use lamina_model::safetensors::write_safetensors;
use lamina_model::{CausalLm, Llama, LoadOptions, LogitsFor};
use lamina_tensor::{DType, Device, Tensor};
use std::collections::BTreeMap;

const LAYERS: usize = 2;

/// GGUF stores q/k rows per head as interleaved pairs; transformers as two halves.
fn unpermute(w: &Tensor, heads: usize) -> Tensor {
    let (rows, cols) = (w.shape()[0], w.shape()[1]);
    let hd = rows / heads;
    w.reshape(&[heads, hd / 2, 2, cols]).unwrap().permute(&[0, 2, 1, 3]).unwrap().reshape(&[rows, cols]).unwrap()
}

#[test]
fn hf_directory_matches_the_gguf_model() {
    let Some(path) = lamina_testkit::smollm2() else { return };
    let f = GgufFile::open(path).unwrap();
    let mut gguf = Llama::from_gguf_with(&f, LoadOptions { device: Device::Cpu, keep_quantized: false }).unwrap();
    gguf.blocks.truncate(LAYERS);
    gguf.config.n_layers = LAYERS;
    let c = gguf.config.clone();

    let dir = std::env::temp_dir().join(format!("lamina-hf-llama-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut names = vec!["token_embd.weight".to_string(), "output_norm.weight".to_string()];
    for i in 0..LAYERS {
        for p in
            ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
        {
            names.push(format!("blk.{i}.{p}.weight"));
        }
    }
    let tensors: Vec<(String, Tensor)> = names
        .iter()
        .map(|n| {
            let t = f.tensor_f32(n).unwrap();
            let t = if n.contains("attn_q") {
                unpermute(&t, c.n_heads)
            } else if n.contains("attn_k") {
                unpermute(&t, c.n_kv_heads)
            } else {
                t
            };
            (hf_name(n), t.to_dtype(DType::F32).unwrap())
        })
        .collect();
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write_safetensors(dir.join("model.safetensors"), &refs, &BTreeMap::new()).unwrap();
    let config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": c.dim, "intermediate_size": c.ffn_dim, "num_hidden_layers": LAYERS,
        "num_attention_heads": c.n_heads, "num_key_value_heads": c.n_kv_heads,
        "rms_norm_eps": c.norm_eps, "rope_theta": c.rope_base, "max_position_embeddings": 2048,
        "vocab_size": c.vocab_size, "tie_word_embeddings": true, "torch_dtype": "float32"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();

    let hf = Llama::from_hf(&HfModel::open(&dir).unwrap(), Device::Cpu).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(hf.tied);
    let _g = lamina_tensor::NoGradGuard::new();
    let prompt = [1u32, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47];
    let run =
        |m: &Llama| m.forward(&prompt, &mut m.new_cache(16).unwrap(), LogitsFor::All).unwrap().to_vec_f32().unwrap();
    let (a, b) = (run(&gguf), run(&hf));
    let d = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(d < 1e-3, "HF and GGUF logits differ by {d}");
}

#[test]
fn a_directory_without_config_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("lamina-hf-empty-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = HfModel::open(&dir).err().unwrap().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.contains("config.json"), "{err}");
}
