//! The decoder families' fixtures (tests/fixtures/arch/<family>/, made by
//! scripts/reference/arch_reference.py): transformers' checkpoints, their GGUF conversions,
//! and transformers' logits and greedy tokens.

use lamina_model::arch::{self, Model};
use lamina_model::gguf::GgufFile;
use lamina_model::hf::HfModel;
use lamina_model::safetensors::SafeTensors;
use lamina_model::{CausalLm, LoadOptions, LogitsFor};
use lamina_tensor::DType;
use std::path::PathBuf;

/// Every decoder family with a fixture.
pub const FAMILIES: [&str; 7] = ["llama", "qwen2", "qwen3", "mistral", "phi3", "gemma2", "gemma3"];

pub struct Prompt {
    pub name: String,
    pub ids: Vec<u32>,
    /// transformers' greedy continuation (empty for a variant without one: `q8_0.`).
    pub greedy: Vec<u32>,
    /// transformers' logits, (positions, vocab) row-major.
    pub logits: Vec<f32>,
}

pub fn dir(family: &str) -> PathBuf {
    lamina_testkit::fixture("arch").join(family)
}

/// Where a test loads the family's fixture from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Hf,
    Gguf,
}

/// The reference a source is held to: Mistral's GGUF has no sliding window (llama.cpp's
/// converter writes it as `llama` without one), so its reference is transformers with the
/// window off.
pub fn reference_of(family: &str, source: Source) -> &'static str {
    match (family, source) {
        ("mistral", Source::Gguf) => "no_window.",
        _ => "",
    }
}

/// The prompts with the reference `variant` (`""`, `"no_window."`, `"q8_0."`,
/// `"no_window.q8_0."`).
pub fn prompts(family: &str, variant: &str) -> Vec<Prompt> {
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
            greedy: p.get(format!("{variant}greedy")).map(ids).unwrap_or_default(),
            logits: st.load(&format!("{name}.{variant}logits"), DType::F32).unwrap().to_vec::<f32>().unwrap(),
        })
        .collect()
}

pub fn gguf(family: &str) -> GgufFile {
    GgufFile::open(dir(family).join("model.gguf")).unwrap()
}

pub fn load(family: &str, source: Source, opts: LoadOptions) -> Model {
    let model = match source {
        Source::Hf => arch::load_hf(&HfModel::open(dir(family).join("hf")).unwrap(), opts),
        Source::Gguf => arch::load_gguf(&gguf(family), opts),
    };
    model.unwrap_or_else(|e| panic!("{family} {source:?}: {e}"))
}

/// The largest error over every logit, relative to 1 + |reference|.
pub fn worst_error(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).map(|(&g, &w)| (g as f64 - w as f64).abs() / (1.0 + (w as f64).abs())).fold(0.0, f64::max)
}

/// Logits (positions, vocab) of a whole prompt in one pass.
pub fn all_logits(m: &dyn CausalLm, ids: &[u32]) -> Vec<f32> {
    let mut cache = m.new_cache(ids.len()).unwrap();
    m.forward(ids, &mut cache, LogitsFor::All).unwrap().to_vec_f32().unwrap()
}

/// Greedy decoding through the cache: prefill the prompt, then one token at a time.
pub fn greedy(m: &dyn CausalLm, prompt: &[u32], n: usize) -> Vec<u32> {
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
