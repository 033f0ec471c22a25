//! The BERT encoder against transformers: a tiny random `BertModel` that transformers
//! saved (sentence-transformers layout: mean pooling, Normalize), converted to GGUF by
//! llama.cpp's converter (tests/fixtures/arch/bert, scripts/reference/arch_reference.py).
//! From the Hugging Face directory and from the GGUF, on the CPU and the GPU, Lamina's
//! last hidden states must equal transformers' `last_hidden_state` (within 2e-5 relative;
//! measured at most 1.3e-6) and its embedding the mean-pooled, normalised one (within
//! 1e-5 absolute). The Q8_0 requantization keeps its blocks and stays close. Both
//! tokenizers give transformers' ids for the prompts' texts.

mod support;

use lamina_model::arch::{self, Model};
use lamina_model::bert::{Bert, Pooling};
use lamina_model::gguf::GgufFile;
use lamina_model::quantize::{quantize_model, Target as QuantTarget};
use lamina_model::safetensors::SafeTensors;
use lamina_model::LoadOptions;
use lamina_tensor::{DType, Device, NoGradGuard};
use lamina_testkit::gpu;
use support::arch_fixture::{dir, load, worst_error, Source};
use support::TempDir;

struct Prompt {
    text: String,
    ids: Vec<u32>,
    hidden: Vec<f32>,
    embedding: Vec<f32>,
}

fn prompts() -> Vec<Prompt> {
    let d = dir("bert");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("reference.json")).unwrap()).unwrap();
    assert_eq!((v["pooling"].as_str(), v["normalize"].as_bool()), (Some("mean"), Some(true)));
    let st = SafeTensors::open(d.join("reference.safetensors")).unwrap();
    let get = |k: String| st.load(&k, DType::F32).unwrap().to_vec::<f32>().unwrap();
    v["prompts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, p)| Prompt {
            text: p["text"].as_str().unwrap().to_string(),
            ids: p["ids"].as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect(),
            hidden: get(format!("{name}.hidden")),
            embedding: get(format!("{name}.embedding")),
        })
        .collect()
}

fn encoder(m: Model) -> Bert {
    m.into_encoder("test").unwrap()
}

fn check(source: Source, device: Device) {
    let _g = NoGradGuard::new();
    let m = encoder(load("bert", source, LoadOptions::on(device)));
    assert_eq!((m.config.pooling, m.config.normalize), (Pooling::Mean, true));
    for p in prompts() {
        let h = m.hidden_states(&p.ids).unwrap().to_vec_f32().unwrap();
        let err = worst_error(&h, &p.hidden);
        eprintln!("bert {source:?} {device:?} ({} tokens): hidden states off by {err:.2e}", p.ids.len());
        assert!(err < 2e-5, "bert {source:?} {device:?}: hidden states off by {err:.3e}");
        let e = m.embed(&p.ids).unwrap();
        let worst = e.iter().zip(&p.embedding).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "bert {source:?} {device:?}: embedding off by {worst:.3e}");
    }
}

#[test]
fn bert_from_hf_on_cpu() {
    check(Source::Hf, Device::Cpu);
}

#[test]
fn bert_from_gguf_on_cpu() {
    check(Source::Gguf, Device::Cpu);
}

#[test]
fn bert_from_hf_on_gpu() {
    if let Some(d) = gpu() {
        check(Source::Hf, d);
    }
}

#[test]
fn bert_from_gguf_on_gpu() {
    if let Some(d) = gpu() {
        check(Source::Gguf, d);
    }
}

/// The texts tokenize to transformers' ids ([CLS] ... [SEP]) from `tokenizer.json` and from
/// the GGUF (whose separator id llama.cpp's converter takes from `tokenizer_config.json`).
#[test]
fn bert_tokenizes_as_transformers() {
    let from_hf = lamina_model::BpeTokenizer::from_hf_dir(dir("bert").join("hf")).unwrap();
    let from_gguf = lamina_model::BpeTokenizer::from_gguf(&GgufFile::open(dir("bert").join("model.gguf")).unwrap());
    let from_gguf = from_gguf.unwrap();
    for p in prompts() {
        assert_eq!(from_hf.encode(&p.text, true, false).unwrap(), p.ids, "tokenizer.json: {:?}", p.text);
        assert_eq!(from_gguf.encode(&p.text, true, false).unwrap(), p.ids, "GGUF: {:?}", p.text);
    }
}

#[test]
fn a_q8_0_bert_keeps_its_blocks_and_its_embeddings() {
    let _g = NoGradGuard::new();
    let tmp = TempDir::new("bert-q8");
    let out = tmp.path("bert.q8_0.gguf");
    let f = GgufFile::open(dir("bert").join("model.gguf")).unwrap();
    quantize_model(&f, &out, &QuantTarget::parse("q8_0").unwrap(), false, |_, _| {}).unwrap();
    let m = encoder(arch::load_gguf(&GgufFile::open(&out).unwrap(), LoadOptions::on(Device::Cpu)).unwrap());
    assert!(matches!(m.layers[0].q, lamina_model::qnn::Proj::Quant(_)));
    for p in prompts() {
        let e = m.embed(&p.ids).unwrap();
        let cosine: f32 = e.iter().zip(&p.embedding).map(|(a, b)| a * b).sum();
        assert!(cosine > 0.999, "q8_0 embedding's cosine with transformers' is {cosine}");
    }
}

#[test]
fn an_encoder_does_not_generate() {
    let m = load("bert", Source::Gguf, LoadOptions::on(Device::Cpu));
    let err = m.into_causal_lm().err().unwrap().to_string();
    assert!(err.contains("embeddings"), "{err}");
}
