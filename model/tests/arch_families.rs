//! Every decoder family against Hugging Face transformers: tiny random checkpoints that
//! transformers itself saved, converted to GGUF by llama.cpp's own converter, with
//! transformers' logits and greedy tokens (tests/fixtures/arch/, made by
//! scripts/reference/arch_reference.py). For each family, Lamina loads the Hugging Face
//! directory and the GGUF file, on the CPU and the GPU, and must give transformers'
//! logits at every position of two prompts and its greedy continuation, decoded token
//! by token through the KV cache.
//!
//! Tolerance: |Lamina - transformers| <= 2e-5 * (1 + |transformers|) per logit. Both run
//! in f32 on the same f16-rounded weights; the difference is summation order (measured
//! at most 5.4e-6 on the CPU and lavapipe). Greedy tokens must be identical; the fixture records the
//! smallest top-1/top-2 gap on the way (at least 1e-3) so a tie cannot decide them.

use lamina_model::arch;
use lamina_model::gguf::GgufFile;
use lamina_model::hf::HfModel;
use lamina_model::safetensors::SafeTensors;
use lamina_model::{CausalLm, LoadOptions, LogitsFor};
use lamina_tensor::{DType, Device, NoGradGuard};
use std::path::PathBuf;

const TOLERANCE: f64 = 2e-5;

struct Prompt {
    name: String,
    ids: Vec<u32>,
    greedy: Vec<u32>,
    logits: Vec<f32>,
}

fn dir(family: &str) -> PathBuf {
    lamina_testkit::fixture("arch").join(family)
}

/// The reference a source is held to: Mistral's GGUF has no sliding window (llama.cpp's
/// converter writes it as `llama` without one), so its reference is transformers with the
/// window off.
fn reference_of(family: &str, source: Source) -> &'static str {
    match (family, source) {
        ("mistral", Source::Gguf) => "no_window.",
        _ => "",
    }
}

fn prompts(family: &str, variant: &str) -> Vec<Prompt> {
    let d = dir(family);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("reference.json")).unwrap()).unwrap();
    let st = SafeTensors::open(d.join("reference.safetensors")).unwrap();
    let ids = |x: &serde_json::Value| x.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect();
    v["prompts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, p)| Prompt {
            name: name.clone(),
            ids: ids(&p["ids"]),
            greedy: ids(&p[format!("{variant}greedy")]),
            logits: st.load(&format!("{name}.{variant}logits"), DType::F32).unwrap().to_vec::<f32>().unwrap(),
        })
        .collect()
}

/// Where a test loads the family's fixture from.
#[derive(Clone, Copy, Debug)]
enum Source {
    Hf,
    Gguf,
}

fn load(family: &str, source: Source, device: Device) -> Box<dyn CausalLm> {
    let opts = LoadOptions::on(device);
    let model = match source {
        Source::Hf => arch::load_hf(&HfModel::open(dir(family).join("hf")).unwrap(), opts),
        Source::Gguf => arch::load_gguf(&GgufFile::open(dir(family).join("model.gguf")).unwrap(), opts),
    };
    model.unwrap_or_else(|e| panic!("{family} {source:?}: {e}")).into_causal_lm()
}

/// The largest error over every logit, relative to 1 + |reference|.
fn worst_error(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).map(|(&g, &w)| (g as f64 - w as f64).abs() / (1.0 + (w as f64).abs())).fold(0.0, f64::max)
}

/// Greedy decoding through the cache: prefill the prompt, then one token at a time.
fn greedy(m: &dyn CausalLm, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut cache = m.new_cache(prompt.len() + n).unwrap();
    let mut logits = m.forward(prompt, &mut cache, LogitsFor::Last).unwrap().to_vec_f32().unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let next = lamina_model::sampling::argmax(&logits);
        out.push(next);
        if out.len() < n {
            logits = m.forward(&[next], &mut cache, LogitsFor::Last).unwrap().to_vec_f32().unwrap();
        }
    }
    out
}

fn check(family: &str, source: Source, device: Device) {
    let _g = NoGradGuard::new();
    let m = load(family, source, device);
    for p in prompts(family, reference_of(family, source)) {
        let mut cache = m.new_cache(p.ids.len()).unwrap();
        let got = m.forward(&p.ids, &mut cache, LogitsFor::All).unwrap().to_vec_f32().unwrap();
        let err = worst_error(&got, &p.logits);
        eprintln!("{family} {source:?} {device:?} {}: worst logit error {err:.2e}", p.name);
        assert!(err <= TOLERANCE, "{family} {source:?} {device:?} prompt {}: logits off by {err:.3e}", p.name);
        let tokens = greedy(m.as_ref(), &p.ids, p.greedy.len());
        assert_eq!(tokens, p.greedy, "{family} {source:?} {device:?} prompt {}: greedy tokens", p.name);
    }
}

fn gpu() -> Option<Device> {
    lamina_tensor::gpu::test_ordinal().map(Device::Gpu)
}

macro_rules! family {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[test]
            fn hf_cpu() {
                check(stringify!($name), Source::Hf, Device::Cpu);
            }

            #[test]
            fn gguf_cpu() {
                check(stringify!($name), Source::Gguf, Device::Cpu);
            }

            #[test]
            fn hf_gpu() {
                if let Some(d) = gpu() {
                    check(stringify!($name), Source::Hf, d);
                }
            }

            #[test]
            fn gguf_gpu() {
                if let Some(d) = gpu() {
                    check(stringify!($name), Source::Gguf, d);
                }
            }
        }
    };
}

family!(llama);
family!(qwen2);
family!(qwen3);
family!(mistral);
family!(phi3);
family!(gemma2);
family!(gemma3);
