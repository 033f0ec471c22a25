//! GPT-2 from GGUF against an independent numpy reference on a tiny random model
//! (tests/fixtures/gpt2-tiny, made by scripts/reference/gpt2_tiny_reference.py), on the
//! CPU and, where an adapter exists, the GPU.

use lamina_model::gguf::GgufFile;
use lamina_model::{CausalLm, Gpt, LogitsFor};
use lamina_tensor::Device;

struct Reference {
    ids: Vec<u32>,
    logits: Vec<Vec<f64>>,
    greedy_prompt: Vec<u32>,
    greedy: Vec<u32>,
}

fn reference() -> Reference {
    let dir = lamina_testkit::repo_root().join("tests/fixtures/gpt2-tiny");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    let ids = |k: &str| v[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect::<Vec<u32>>();
    let logits = v["logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
        .collect();
    Reference { ids: ids("ids"), logits, greedy_prompt: ids("greedy_prompt"), greedy: ids("greedy") }
}

fn check(device: Device) {
    let r = reference();
    let f = GgufFile::open(lamina_testkit::repo_root().join("tests/fixtures/gpt2-tiny/gpt2-tiny.gguf")).unwrap();
    let m: Box<dyn CausalLm> = Box::new(Gpt::from_gguf(&f, device).unwrap());
    let _g = lamina_tensor::NoGradGuard::new();
    let mut cache = m.new_cache(16).unwrap();
    let got = m.forward(&r.ids, &mut cache, LogitsFor::All).unwrap().to_vec_f32().unwrap();
    let vocab = m.vocab_size();
    for (i, want) in r.logits.iter().enumerate() {
        for (j, w) in want.iter().enumerate() {
            let g = got[i * vocab + j] as f64;
            assert!((g - w).abs() < 1e-3 * (1.0 + w.abs()), "{device:?} position {i} token {j}: {g} vs {w}");
        }
    }
    let mut cache = m.new_cache(16).unwrap();
    let mut logits = m.forward(&r.greedy_prompt, &mut cache, LogitsFor::Last).unwrap().to_vec_f32().unwrap();
    let mut greedy = Vec::new();
    while greedy.len() < r.greedy.len() {
        let next = lamina_model::sampling::argmax(&logits);
        greedy.push(next);
        if cache.len() == cache.capacity() {
            break;
        }
        logits = m.forward(&[next], &mut cache, LogitsFor::Last).unwrap().to_vec_f32().unwrap();
    }
    assert_eq!(greedy, r.greedy, "{device:?}: greedy tokens differ from the reference");
}

#[test]
fn gpt2_matches_the_numpy_reference_on_cpu() {
    check(Device::Cpu);
}

#[test]
fn gpt2_matches_the_numpy_reference_on_gpu() {
    if let Some(gpu) = lamina_testkit::gpu() {
        check(gpu);
    }
}

#[test]
fn a_llama_file_is_not_gpt2() {
    let f = GgufFile::open(lamina_testkit::repo_root().join("tests/fixtures/gpt2-tiny/gpt2-tiny.gguf")).unwrap();
    assert!(lamina_model::Llama::from_gguf(&f, Device::Cpu).is_err());
}
