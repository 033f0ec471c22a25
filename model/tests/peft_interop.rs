//! An adapter made and saved by Hugging Face PEFT itself (tests/fixtures/peft/, made by
//! scripts/reference/peft_reference.py with PyTorch + PEFT) loads with `Llama::load_lora`
//! and gives the logits PEFT gives. The fixture covers q/k (whose B rows must move from
//! Hugging Face's order to GGUF's), v, o and down, `layers_to_transform` (tensors for
//! layers 0-2 only), F16 tensors, and the config keys PEFT 0.21 writes. The base model's
//! logits are compared with transformers' too, so a mismatch can be told apart from one
//! in the base. The other direction: an adapter Lamina saves is, byte for byte, one PEFT
//! loaded, and PEFT's logits with it are Lamina's (tests/fixtures/peft/lamina_saved.json).

use lamina_model::causal_lm::{CausalLm, LogitsFor};
use lamina_model::gguf::GgufFile;
use lamina_model::lora::Target;
use lamina_model::{Llama, LoadOptions};
use lamina_tensor::Device;
use lamina_testkit::{repo_root, smollm2 as smollm2_for_test};
use serde_json::Value;

/// Lamina's f32 forward pass against transformers' f32 one over the same dequantized
/// weights: they sum in different orders, which moved these logits (size ~25) by at most
/// 1.5e-5 when the fixture was made. The adapter moves them by 0.3-0.6 (and the whole
/// vocabulary by up to 1.9, expected.json's `max_abs_diff_from_base`), so base logits, or
/// an adapter applied with q/k rows in the wrong order, fail by far.
const LOGIT_TOL: f64 = 1e-3;

fn expected() -> Value {
    let path = repo_root().join("tests/fixtures/peft/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn last_logits(m: &Llama, prompt: &[u32]) -> Vec<f32> {
    let _g = lamina_tensor::NoGradGuard::new();
    let mut cache = m.new_cache(prompt.len()).unwrap();
    m.forward(prompt, &mut cache, LogitsFor::Last).unwrap().to_vec_f32().unwrap()
}

/// The 5 largest logits' ids must be `want`'s, in order, and each logit within LOGIT_TOL.
/// Returns the largest difference seen.
fn check_top5(logits: &[f32], want: &Value, what: &str) -> f64 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let mut worst = 0f64;
    for (rank, w) in want.as_array().unwrap().iter().enumerate() {
        let (id, value) = (w[0].as_u64().unwrap() as usize, w[1].as_f64().unwrap());
        assert_eq!(order[rank], id, "{what}: rank {rank} is token {} instead of PyTorch's {id}", order[rank]);
        let d = (logits[id] as f64 - value).abs();
        assert!(d < LOGIT_TOL, "{what}: logit of {id} is {}, PyTorch's {value}", logits[id]);
        worst = worst.max(d);
    }
    worst
}

#[test]
fn adapter_saved_by_peft_gives_peft_logits() {
    let Some(path) = smollm2_for_test() else { return };
    let f = GgufFile::open(&path).unwrap();
    let mut m = Llama::from_gguf_with(&f, LoadOptions { device: Device::Cpu, keep_quantized: false }).unwrap();
    let exp = expected();
    let cases = exp["cases"].as_array().unwrap();

    let base: Vec<Vec<f32>> = cases.iter().map(|c| last_logits(&m, &ids(&c["ids"]))).collect();
    for (c, logits) in cases.iter().zip(&base) {
        let name = c["name"].as_str().unwrap();
        let d = check_top5(logits, &c["base_top5"], &format!("{name}, base model"));
        eprintln!("{name}: base model within {d:.1e} of transformers");
    }

    let cfg = m.load_lora(&repo_root().join("tests/fixtures/peft"), false).unwrap();
    assert_eq!((cfg.rank, cfg.alpha, cfg.dropout, cfg.rslora), (2, 4.0, 0.0, false));
    let mut targets = cfg.targets.clone();
    targets.sort();
    assert_eq!(targets, [Target::Q, Target::K, Target::V, Target::O, Target::Down]);
    // layers_to_transform = [0, 1, 2]: adapters there, none elsewhere.
    for (i, b) in m.blocks.iter().enumerate() {
        let held: Vec<Target> = b.lora.iter().map(|(t, _)| t).collect();
        let want: &[Target] = if i < 3 { &targets } else { &[] };
        assert_eq!(held, want, "layer {i}");
    }

    for (c, base) in cases.iter().zip(&base) {
        let name = c["name"].as_str().unwrap();
        let logits = last_logits(&m, &ids(&c["ids"]));
        let d = check_top5(&logits, &c["peft_top5"], &format!("{name}, with the PEFT adapter"));
        let moved = logits.iter().zip(base).fold(0f32, |a, (x, y)| a.max((x - y).abs())) as f64;
        let peft_moved = c["max_abs_diff_from_base"].as_f64().unwrap();
        eprintln!(
            "{name}: adapted model within {d:.1e} of PEFT; the adapter moves logits by {moved:.3} (PEFT: {peft_moved})"
        );
        assert!(peft_moved > 100.0 * LOGIT_TOL, "{name}: the fixture's adapter barely changes the logits");
        assert!(
            (moved - peft_moved).abs() < 10.0 * LOGIT_TOL,
            "{name}: adapter moves logits by {moved}, in PEFT {peft_moved}"
        );
    }
}

/// FNV-1a, 64 bits: the fixture's fingerprint of the bytes Lamina wrote.
fn fnv1a64(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3));
    format!("{h:016x}")
}

/// The save direction: the deterministic adapter `lamina_testkit::reference_adapter`
/// saved with `Llama::save_lora` is, byte for byte, the one PEFT loaded when the fixture
/// was made (tests/fixtures/peft/lamina_saved.json, by scripts/reference/peft_reference.py
/// `--lamina-fixture`), and Lamina's logits with the adapter in memory are PEFT's with the
/// saved files. A wrong tensor name, a q/k row order, a scaling or a config key PEFT reads
/// differently moves the logits far beyond LOGIT_TOL (the adapter moves them by up to 0.74
/// and 0.86).
#[test]
fn adapter_saved_by_lamina_gives_peft_logits() {
    let Some(path) = smollm2_for_test() else { return };
    let f = GgufFile::open(&path).unwrap();
    let mut m = Llama::from_gguf_with(&f, LoadOptions { device: Device::Cpu, keep_quantized: false }).unwrap();
    let cfg = lamina_testkit::reference_adapter(&mut m).unwrap();
    let dir = std::env::temp_dir().join(format!("lamina-peft-save-{}", std::process::id()));
    m.save_lora(&dir, &cfg, "HuggingFaceTB/SmolLM2-135M-Instruct").unwrap();
    let exp: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("tests/fixtures/peft/lamina_saved.json")).unwrap(),
    )
    .unwrap();

    let st = lamina_model::safetensors::SafeTensors::open(dir.join("adapter_model.safetensors")).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
    let want: Vec<&String> = exp["tensors"].as_object().unwrap().keys().collect();
    assert_eq!(names.iter().collect::<Vec<_>>(), want, "tensor names differ from those PEFT loaded");
    for (file, want) in exp["files"].as_object().unwrap() {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        assert_eq!(bytes.len() as u64, want["bytes"].as_u64().unwrap(), "{file}: size");
        assert_eq!(fnv1a64(&bytes), want["fnv1a64"].as_str().unwrap(), "{file}: not the bytes PEFT loaded");
    }
    std::fs::remove_dir_all(&dir).unwrap();

    for c in exp["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let peft_moved = c["max_abs_diff_from_base"].as_f64().unwrap();
        assert!(peft_moved > 100.0 * LOGIT_TOL, "{name}: the fixture's adapter barely changes the logits");
        let d = check_top5(&last_logits(&m, &ids(&c["ids"])), &c["peft_top5"], &format!("{name}, Lamina's adapter"));
        eprintln!("{name}: Lamina's adapter in Lamina within {d:.1e} of the saved files in PEFT (which moved by {peft_moved})");
    }
}
