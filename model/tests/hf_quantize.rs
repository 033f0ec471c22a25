//! `lamina quantize HF_DIR`: a Hugging Face LLaMA directory converted to GGUF.
//!
//! With SmolLM2: its first two layers written out as `transformers` saves them (HF names,
//! q/k in split halves, tokenizer.json / tokenizer_config.json rebuilt from the GGUF
//! tokenizer), converted to F32 GGUF, must give the original file's tokenizer metadata,
//! its q/k rows and exactly its logits; converted to Q4_K_M it must get llama.cpp's
//! tensor types and run on the integer K-quant kernels close to the float logits.
//! Without the model: a tiny synthetic checkpoint checks dtypes (f16, bf16), padding of
//! the vocabulary, and that unsupported input is a clear error.

mod support;

use lamina_model::bpe::byte_level::byte_to_char;
use lamina_model::bpe::pretokenize;
use lamina_model::convert::HfLlamaSource;
use lamina_model::gguf::{GgufFile, MetaArray, MetaValue};
use lamina_model::llama::{hf_name, hf_rows_from_gguf};
use lamina_model::quantize::{quantize_model, Target};
use lamina_model::safetensors::write_safetensors;
use lamina_model::{BpeTokenizer, CausalLm, Llama, LoadOptions, LogitsFor};
use lamina_tensor::quant::GgmlType;
use lamina_tensor::{DType, Device, Tensor};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use support::TempDir;

const LAYERS: usize = 2;
const PROMPT: [u32; 10] = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47];

/// GGUF stores q/k rows per head as interleaved pairs; transformers as two halves.
fn split_halves(w: &Tensor, heads: usize) -> Tensor {
    hf_rows_from_gguf(w, heads).unwrap()
}

fn meta_str<'a>(f: &'a GgufFile, key: &str) -> &'a str {
    f.get_str(key).unwrap()
}

fn strings(f: &GgufFile, key: &str) -> Vec<String> {
    match f.get_array(key).unwrap() {
        MetaArray::String(v) => v.clone(),
        other => panic!("{key}: {other:?}"),
    }
}

/// SmolLM2's first `LAYERS` layers as a Hugging Face directory (F32 weights).
fn write_smollm2_hf(f: &GgufFile, dir: &Path) {
    let g = |k: &str| f.get_u64(&format!("llama.{k}")).unwrap();
    let (heads, kv_heads) = (g("attention.head_count") as usize, g("attention.head_count_kv") as usize);
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
            let t = match n {
                n if n.contains("attn_q") => split_halves(&t, heads),
                n if n.contains("attn_k") => split_halves(&t, kv_heads),
                _ => t,
            };
            (hf_name(n), t.contiguous().unwrap())
        })
        .collect();
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write_safetensors(dir.join("model.safetensors"), &refs, &BTreeMap::new()).unwrap();
    let config = json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": g("embedding_length"), "intermediate_size": g("feed_forward_length"),
        "num_hidden_layers": LAYERS, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "rms_norm_eps": f.get_f64("llama.attention.layer_norm_rms_epsilon").unwrap(),
        "rope_theta": f.get_f64("llama.rope.freq_base").unwrap(),
        "max_position_embeddings": g("context_length"), "vocab_size": g("vocab_size"),
        "tie_word_embeddings": true, "torch_dtype": "float32", "rope_scaling": null
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();

    // The tokenizer as transformers saves SmolLM2's: byte-level BPE, digits split one by
    // one, control tokens as special added tokens.
    let tokens = strings(f, "tokenizer.ggml.tokens");
    let types = f.get_array("tokenizer.ggml.token_type").unwrap().to_i64s().unwrap();
    let control: Vec<usize> = (0..tokens.len()).filter(|&i| types[i] == 3).collect();
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..tokens.len()).filter(|i| !control.contains(i)).map(|i| (tokens[i].clone(), json!(i))).collect();
    let added: Vec<_> = control
        .iter()
        .map(|&i| json!({"id": i, "content": tokens[i], "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
        .collect();
    let tokenizer = json!({
        "version": "1.0", "added_tokens": added, "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": strings(f, "tokenizer.ggml.merges")}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    let id = |k: &str| tokens[f.get_u64(&format!("tokenizer.ggml.{k}_token_id")).unwrap() as usize].clone();
    let tc = json!({
        "add_bos_token": false, "bos_token": id("bos"), "eos_token": id("eos"),
        "unk_token": {"content": id("unknown"), "special": true}, "pad_token": id("padding"),
        "chat_template": meta_str(f, "tokenizer.chat_template"), "tokenizer_class": "GPT2Tokenizer"
    });
    std::fs::write(dir.join("tokenizer_config.json"), tc.to_string()).unwrap();
}

fn logits(m: &Llama) -> Vec<f32> {
    let _g = lamina_tensor::NoGradGuard::new();
    m.forward(&PROMPT, &mut m.new_cache(16).unwrap(), LogitsFor::All).unwrap().to_vec_f32().unwrap()
}

fn truncated(f: &GgufFile, keep_quantized: bool) -> Llama {
    let mut m = Llama::from_gguf_with(f, LoadOptions { device: Device::Cpu, keep_quantized }).unwrap();
    m.blocks.truncate(LAYERS);
    m.config.n_layers = LAYERS;
    m
}

#[test]
fn smollm2_hf_directory_converts_to_its_gguf() {
    let Some(path) = lamina_testkit::smollm2() else { return };
    let f = GgufFile::open(path).unwrap();
    let dir = TempDir::new("hf-quantize");
    let hf = dir.path("smollm2-hf");
    std::fs::create_dir_all(&hf).unwrap();
    write_smollm2_hf(&f, &hf);
    let src = HfLlamaSource::open(&hf).unwrap();

    let out = dir.path("f32.gguf");
    quantize_model(&src, &out, &Target::parse("f32").unwrap(), false, |_, _| {}).unwrap();
    let g = GgufFile::open(&out).unwrap();
    for key in [
        "tokenizer.ggml.model",
        "tokenizer.ggml.tokens",
        "tokenizer.ggml.token_type",
        "tokenizer.ggml.merges",
        "tokenizer.ggml.bos_token_id",
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id",
        "tokenizer.ggml.padding_token_id",
        "tokenizer.ggml.add_bos_token",
        "tokenizer.chat_template",
        "llama.context_length",
        "llama.embedding_length",
        "llama.feed_forward_length",
        "llama.attention.head_count",
        "llama.attention.head_count_kv",
        "llama.rope.freq_base",
        "llama.attention.layer_norm_rms_epsilon",
        "llama.vocab_size",
        "llama.rope.dimension_count",
    ] {
        assert_eq!(g.get(key), f.get(key), "{key}");
    }
    assert_eq!(g.get("llama.block_count"), Some(&MetaValue::U32(LAYERS as u32)));
    assert_eq!(g.get("general.file_type"), Some(&MetaValue::U32(0)));
    // "starcoder" and SmolLM2's "smollm" are the same splitting in llama.cpp.
    let kind = |f: &GgufFile| pretokenize::lookup(meta_str(f, "tokenizer.ggml.pre")).unwrap().kind;
    assert_eq!(kind(&g), kind(&f));
    let text = "Hello world! 12345 <|im_start|>user\n  tabs\tand ünïcödé 😀";
    let (a, b) = (BpeTokenizer::from_gguf(&g).unwrap(), BpeTokenizer::from_gguf(&f).unwrap());
    assert_eq!(a.encode(text, true, true).unwrap(), b.encode(text, true, true).unwrap());
    // q/k rows are back in GGUF's interleaved order, exactly.
    for name in ["blk.1.attn_q.weight", "blk.1.attn_k.weight"] {
        assert_eq!(
            g.tensor_f32(name).unwrap().to_vec_f32().unwrap(),
            f.tensor_f32(name).unwrap().to_vec_f32().unwrap()
        );
    }
    let converted = Llama::from_gguf_with(&g, LoadOptions { device: Device::Cpu, keep_quantized: false }).unwrap();
    let want = logits(&truncated(&f, false));
    assert_eq!(logits(&converted), want, "F32 conversion must give the GGUF model's logits exactly");

    // Q4_K_M: llama.cpp's types for a 2-layer model with 576-wide rows (not 256-blocks).
    let out = dir.path("q4_k_m.gguf");
    let report = quantize_model(&src, &out, &Target::parse("q4_k_m").unwrap(), false, |_, _| {}).unwrap();
    let q = GgufFile::open(&out).unwrap();
    let ty = |n: &str| q.tensor_info(n).unwrap().ty;
    assert_eq!(ty("token_embd.weight"), GgmlType::Q8_0, "tied head, rows not 256-blocks");
    assert_eq!((ty("blk.0.attn_v.weight"), ty("blk.1.attn_v.weight")), (GgmlType::Q5_0, GgmlType::Q8_0));
    assert_eq!((ty("blk.0.ffn_down.weight"), ty("blk.1.ffn_down.weight")), (GgmlType::Q4K, GgmlType::Q6K));
    assert_eq!((ty("blk.0.attn_q.weight"), ty("blk.1.ffn_up.weight")), (GgmlType::Q5_0, GgmlType::Q5_0));
    assert_eq!(ty("blk.0.attn_norm.weight"), GgmlType::F32);
    assert_eq!(q.get("general.file_type"), Some(&MetaValue::U32(15)));
    assert_eq!(report.types.get("Q4_K"), Some(&1));
    let quantized = Llama::from_gguf_with(&q, LoadOptions { device: Device::Cpu, keep_quantized: true }).unwrap();
    let got = logits(&quantized);
    let err: f64 = got.iter().zip(&want).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>().sqrt()
        / want.iter().map(|b| (*b as f64).powi(2)).sum::<f64>().sqrt();
    eprintln!("Q4_K_M (2 layers): logits relative RMS error {err:.4}");
    assert!(err < 0.03, "Q4_K_M logits relative RMS error {err} (0.017 measured)");
}

// ---- a tiny synthetic checkpoint (no model needed) -----------------------------------------

const DIM: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const FFN: usize = 96;
const VOCAB: usize = 300;

fn tiny_config() -> serde_json::Value {
    json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": DIM,
        "intermediate_size": FFN, "num_hidden_layers": 1, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "rms_norm_eps": 1e-5, "max_position_embeddings": 128,
        "vocab_size": VOCAB, "tie_word_embeddings": false, "bos_token_id": 256, "eos_token_id": 256
    })
}

fn tiny_tokenizer() -> serde_json::Value {
    let alphabet = byte_to_char();
    let mut vocab: serde_json::Map<String, serde_json::Value> =
        alphabet.iter().enumerate().map(|(i, c)| (c.to_string(), json!(i))).collect();
    vocab.insert("Ġt".into(), json!(257));
    json!({
        "added_tokens": [{"id": 256, "content": "<|endoftext|>", "special": true}],
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": vocab, "merges": [["Ġ", "t"]]}
    })
}

/// A one-layer LLaMA with `dtype` matrices, its tensors by HF name.
fn tiny_dir(dir: &Path, dtype: DType) -> BTreeMap<String, Tensor> {
    let shapes = [
        ("model.embed_tokens.weight", vec![VOCAB, DIM]),
        ("model.norm.weight", vec![DIM]),
        ("lm_head.weight", vec![VOCAB, DIM]),
        ("model.layers.0.input_layernorm.weight", vec![DIM]),
        ("model.layers.0.self_attn.q_proj.weight", vec![DIM, DIM]),
        ("model.layers.0.self_attn.k_proj.weight", vec![KV_HEADS * DIM / HEADS, DIM]),
        ("model.layers.0.self_attn.v_proj.weight", vec![KV_HEADS * DIM / HEADS, DIM]),
        ("model.layers.0.self_attn.o_proj.weight", vec![DIM, DIM]),
        ("model.layers.0.post_attention_layernorm.weight", vec![DIM]),
        ("model.layers.0.mlp.gate_proj.weight", vec![FFN, DIM]),
        ("model.layers.0.mlp.up_proj.weight", vec![FFN, DIM]),
        ("model.layers.0.mlp.down_proj.weight", vec![DIM, FFN]),
    ];
    let tensors: BTreeMap<String, Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, (n, s))| {
            let dt = if s.len() == 1 { DType::F32 } else { dtype };
            (n.to_string(), Tensor::randn(s, 0.0, 0.5, i as u64, DType::F32).unwrap().to_dtype(dt).unwrap())
        })
        .collect();
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write_safetensors(dir.join("model.safetensors"), &refs, &BTreeMap::new()).unwrap();
    std::fs::write(dir.join("config.json"), tiny_config().to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tiny_tokenizer().to_string()).unwrap();
    tensors
}

#[test]
fn f16_and_bf16_checkpoints_convert_with_padding_and_permuted_heads() {
    for dtype in [DType::F16, DType::BF16] {
        let dir = TempDir::new("hf-tiny");
        let hf = tiny_dir(&dir.0, dtype);
        let src = HfLlamaSource::open(&dir.0).unwrap();
        let out = dir.path("out.gguf");
        quantize_model(&src, &out, &Target::parse("f32").unwrap(), false, |_, _| {}).unwrap();
        let g = GgufFile::open(&out).unwrap();
        assert!(g.tensor_info("output.weight").is_some(), "untied head kept");
        // Values exactly the checkpoint's (f16/bf16 widen exactly); q/k rows interleaved.
        let want = |n: &str| hf[n].to_dtype(DType::F32).unwrap();
        assert_eq!(
            g.tensor_f32("blk.0.ffn_down.weight").unwrap().to_vec_f32().unwrap(),
            want("model.layers.0.mlp.down_proj.weight").to_vec_f32().unwrap()
        );
        for (gguf, hf_n, heads) in [
            ("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", HEADS),
            ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight", KV_HEADS),
        ] {
            let back = split_halves(&g.tensor_f32(gguf).unwrap(), heads);
            assert_eq!(back.to_vec_f32().unwrap(), want(hf_n).to_vec_f32().unwrap(), "{gguf}");
        }
        // The vocabulary padded to the model's 300 rows, as the converter does.
        let tokens = strings(&g, "tokenizer.ggml.tokens");
        let types = g.get_array("tokenizer.ggml.token_type").unwrap().to_i64s().unwrap();
        assert_eq!(tokens.len(), VOCAB);
        assert_eq!((tokens[256].as_str(), types[256]), ("<|endoftext|>", 3));
        assert_eq!((tokens[257].as_str(), types[257]), ("Ġt", 1));
        assert_eq!((tokens[299].as_str(), types[299]), ("[PAD299]", 5));
        assert_eq!(meta_str(&g, "tokenizer.ggml.pre"), "gpt-2");
        assert_eq!(g.get("tokenizer.ggml.bos_token_id"), Some(&MetaValue::U32(256)));
        // The file runs, and its tokenizer merges.
        let m = Llama::from_gguf(&g, Device::Cpu).unwrap();
        assert_eq!(m.forward(&[1, 2, 3], &mut m.new_cache(8).unwrap(), LogitsFor::Last).unwrap().shape(), &[1, VOCAB]);
        assert_eq!(BpeTokenizer::from_gguf(&g).unwrap().encode(" t", false, false).unwrap(), vec![257]);
    }
}

/// Open a tiny directory changed by `edit`, expecting an error that mentions `want`.
fn refused(edit: impl FnOnce(&Path), want: &str) {
    let dir = TempDir::new("hf-bad");
    tiny_dir(&dir.0, DType::F16);
    edit(&dir.0);
    let err = HfLlamaSource::open(&dir.0).err().unwrap_or_else(|| panic!("accepted; wanted an error about {want}"));
    assert!(err.to_string().contains(want), "{err} (wanted {want})");
}

fn set_config(dir: &Path, key: &str, value: serde_json::Value) {
    let mut c = tiny_config();
    c[key] = value;
    std::fs::write(dir.join("config.json"), c.to_string()).unwrap();
}

#[test]
fn unsupported_checkpoints_are_clear_errors() {
    refused(|d| set_config(d, "model_type", json!("gpt2")), "only LLaMA");
    refused(|d| set_config(d, "rope_scaling", json!({"rope_type": "llama3", "factor": 8.0})), "rope_scaling");
    refused(|d| set_config(d, "attention_bias", json!(true)), "biases");
    refused(|d| set_config(d, "vocab_size", json!(200)), "config.json says [200, 64]");
    refused(|d| std::fs::remove_file(d.join("tokenizer.json")).unwrap(), "no tokenizer.json");
    refused(|d| std::fs::remove_file(d.join("model.safetensors")).unwrap(), "model.safetensors");
    refused(
        |d| {
            let mut t = tiny_tokenizer();
            t["model"]["type"] = json!("Unigram");
            std::fs::write(d.join("tokenizer.json"), t.to_string()).unwrap();
        },
        "only byte-level BPE",
    );
    refused(
        |d| {
            let mut t = tiny_tokenizer();
            t["added_tokens"][0]["id"] = json!(400);
            std::fs::write(d.join("tokenizer.json"), t.to_string()).unwrap();
        },
        "outside the model's 300 embedding rows",
    );
    refused(
        |d| {
            let mut t = tiny_tokenizer();
            t["pre_tokenizer"] = json!({"type": "Whitespace"});
            std::fs::write(d.join("tokenizer.json"), t.to_string()).unwrap();
        },
        "cannot tell which llama.cpp pre-tokenizer",
    );
    fn with(extra: (&'static str, Tensor)) -> impl FnOnce(&Path) {
        move |d: &Path| {
            let mut t = tiny_dir(d, DType::F16);
            t.insert(extra.0.to_string(), extra.1);
            let refs: Vec<(&str, &Tensor)> = t.iter().map(|(n, t)| (n.as_str(), t)).collect();
            write_safetensors(d.join("model.safetensors"), &refs, &BTreeMap::new()).unwrap();
        }
    }
    refused(with(("model.layers.0.self_attn.q_proj.bias", Tensor::zeros(&[DIM], DType::F32).unwrap())), "q_proj.bias");
    refused(with(("model.layers.0.mlp.up_proj.weight", Tensor::zeros(&[FFN, DIM], DType::I32).unwrap())), "dtype I32");
    refused(with(("model.layers.0.mlp.up_proj.weight", Tensor::zeros(&[FFN, 3], DType::F16).unwrap())), "shape");
    refused(
        |d| {
            let mut t = tiny_dir(d, DType::F16);
            t.remove("model.layers.0.mlp.gate_proj.weight");
            let refs: Vec<(&str, &Tensor)> = t.iter().map(|(n, t)| (n.as_str(), t)).collect();
            write_safetensors(d.join("model.safetensors"), &refs, &BTreeMap::new()).unwrap();
        },
        "gate_proj.weight` (GGUF `blk.0.ffn_gate.weight`) is not in the checkpoint",
    );
}
