//! IA³, prompt-tuning, P-tuning and prefix-tuning adapters against PyTorch + Hugging Face PEFT, both ways, on the
//! tiny LLaMA that transformers saved in tests/fixtures/arch/llama/ (loaded from its
//! Hugging Face directory and from llama.cpp's GGUF conversion, whose q/k rows are in
//! GGUF's order). tests/fixtures/peft_methods/<method>/ (scripts/reference/
//! peft_methods_reference.py) holds:
//!
//! - `peft/`: an adapter made and saved by PEFT: Lamina must load it and give PEFT's
//!   logits and greedy tokens (for prefix tuning also `peft_projection/`, trained through
//!   PEFT's reparameterisation MLP; for P-tuning also `peft_lstm/`, made by PEFT's LSTM
//!   encoder);
//! - `lamina/`: an adapter saved by Lamina (`write_lamina_adapters`, ignored: it writes
//!   the fixture), which PEFT loaded to record its logits: Lamina must still write exactly
//!   that adapter, and give PEFT's logits with it;
//! - `expected.safetensors` / `expected.json`: PEFT's logits (every position of the
//!   prompt) and greedy continuation for each.
//!
//! Logits are checked through the KV-cache forward (inference), the training forward and,
//! for IA³, the weights with the vectors merged in. Tolerance as in arch_families.rs: both
//! sides run f32 on the same f16-rounded weights, so only summation order differs.

use lamina_model::bottleneck::{BottleneckAct, BottleneckConfig, Placement};
use lamina_model::gguf::GgufFile;
use lamina_model::hf::HfModel;
use lamina_model::ia3::{Ia3Config, Ia3Vector};
use lamina_model::llama::AdapterKind;
use lamina_model::lora::Target;
use lamina_model::prefix::PrefixTuningConfig;
use lamina_model::prompt::{PTuningConfig, PromptInit, PromptTuningConfig};
use lamina_model::safetensors::SafeTensors;
use lamina_model::{arch, CausalLm, Llama, LoadOptions, LogitsFor};
use lamina_tensor::{DType, Device, NoGradGuard, Tensor};
use serde_json::Value;
use std::path::{Path, PathBuf};

const TOLERANCE: f64 = 2e-5;
const BASE_NAME: &str = "tests/fixtures/arch/llama/hf";

fn fixture(method: &str) -> PathBuf {
    lamina_testkit::repo_root().join("tests/fixtures/peft_methods").join(method)
}

#[derive(Clone, Copy, Debug)]
enum Source {
    Hf,
    Gguf,
}

fn base(source: Source) -> Llama {
    base_on(source, Device::Cpu)
}

fn base_on(source: Source, device: Device) -> Llama {
    family_base("llama", source, device)
}

/// The tiny model of `family` in tests/fixtures/arch/.
fn family_base(family: &str, source: Source, device: Device) -> Llama {
    let d = lamina_testkit::repo_root().join("tests/fixtures/arch").join(family);
    let opts = LoadOptions { device, keep_quantized: false };
    let model = match source {
        Source::Hf => arch::load_hf(&HfModel::open(d.join("hf")).unwrap(), opts),
        Source::Gguf => arch::load_gguf(&GgufFile::open(d.join("model.gguf")).unwrap(), opts),
    };
    model.unwrap().into_decoder("test").unwrap()
}

struct Expected {
    prompt: Vec<u32>,
    logits: Vec<f32>,
    greedy: Vec<u32>,
    moves_base_by: f64,
}

/// PEFT's results for the adapter in `<method>/<who>/`.
fn expected(method: &str, who: &str) -> Expected {
    let d = fixture(method);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    let ids = |x: &Value| x.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect();
    let st = SafeTensors::open(d.join("expected.safetensors")).unwrap();
    Expected {
        prompt: ids(&v["prompt"]),
        logits: st.load(&format!("{who}.logits"), DType::F32).unwrap().to_vec::<f32>().unwrap(),
        greedy: ids(&v["cases"][who]["greedy"]),
        moves_base_by: v["cases"][who]["max_abs_diff_from_base"].as_f64().unwrap(),
    }
}

fn worst_error(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).map(|(&g, &w)| (g as f64 - w as f64).abs() / (1.0 + (w as f64).abs())).fold(0.0, f64::max)
}

fn cached_logits(m: &Llama, prompt: &[u32]) -> Vec<f32> {
    let mut cache = m.new_cache(prompt.len()).unwrap();
    m.forward(prompt, &mut cache, LogitsFor::All).unwrap().to_vec_f32().unwrap()
}

/// Greedy decoding through the cache, one token at a time after the prefill.
fn greedy(m: &Llama, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut cache = m.new_cache(prompt.len() + n).unwrap();
    let mut logits = m.forward(prompt, &mut cache, LogitsFor::Last).unwrap().to_vec_f32().unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        out.push(lamina_model::sampling::argmax(&logits));
        if out.len() < n {
            logits = m.forward(&out[out.len() - 1..], &mut cache, LogitsFor::Last).unwrap().to_vec_f32().unwrap();
        }
    }
    out
}

/// The adapted model `m` gives PEFT's logits (cached and training forwards) and greedy
/// tokens; the base alone would not.
fn check_against_peft(m: &Llama, want: &Expected, what: &str) {
    let _g = NoGradGuard::new();
    assert!(want.moves_base_by > 0.5, "{what}: the fixture's adapter barely changes the logits");
    let err = worst_error(&cached_logits(m, &want.prompt), &want.logits);
    eprintln!("{what}: worst logit error {err:.2e} (the adapter moves logits by {})", want.moves_base_by);
    assert!(err <= TOLERANCE, "{what}: cached forward off PEFT's logits by {err:.3e}");
    let train = m.forward_train(&want.prompt, 1, None).unwrap().to_vec_f32().unwrap();
    let err = worst_error(&train, &want.logits);
    assert!(err <= TOLERANCE, "{what}: training forward off PEFT's logits by {err:.3e}");
    assert_eq!(greedy(m, &want.prompt, want.greedy.len()), want.greedy, "{what}: greedy tokens");
}

/// Tensors (name -> f32 values) and config of an adapter directory.
fn adapter_files(dir: &Path) -> (Vec<(String, Vec<f32>)>, Value) {
    let st = SafeTensors::open(dir.join("adapter_model.safetensors")).unwrap();
    let mut tensors: Vec<(String, Vec<f32>)> = st
        .tensors()
        .iter()
        .map(|i| (i.name.clone(), st.load(&i.name, DType::F32).unwrap().to_vec::<f32>().unwrap()))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let config = serde_json::from_str(&std::fs::read_to_string(dir.join("adapter_config.json")).unwrap()).unwrap();
    (tensors, config)
}

/// `make` saves Lamina's adapter into a directory: it must write what PEFT read (to the
/// last bits of f32 for an encoder's output: GEMM sums in a different order at another ISA
/// level).
fn check_lamina_writes_the_fixture(method: &str, make: fn(&Path)) {
    let tmp = std::env::temp_dir().join(format!("lamina-peft-{method}-{}", std::process::id()));
    make(&tmp);
    let (fresh, committed) = (adapter_files(&tmp), adapter_files(&fixture(method).join("lamina")));
    std::fs::remove_dir_all(&tmp).unwrap();
    assert_eq!(fresh.1, committed.1, "{method}: Lamina's adapter_config.json differs from the one PEFT read");
    let names = |t: &[(String, Vec<f32>)]| t.iter().map(|(n, v)| (n.clone(), v.len())).collect::<Vec<_>>();
    assert_eq!(names(&fresh.0), names(&committed.0), "{method}: Lamina's tensors differ from the ones PEFT read");
    for ((name, got), (_, want)) in fresh.0.iter().zip(&committed.0) {
        assert!(worst_error(got, want) <= 1e-6, "{method}: {name} differs from the one PEFT read");
    }
}

// ---- IA³ ---------------------------------------------------------------------------------

/// Lamina's IA³ adapter: attached to the GGUF model (q/k rows in GGUF order, moved to Hugging
/// Face's on save), vectors 1 + N(0, 0.5²).
fn save_lamina_ia3(dir: &Path) {
    let mut m = base(Source::Gguf);
    let cfg = Ia3Config { targets: vec![Target::Q, Target::K, Target::V, Target::Up], feedforward: vec![Target::Up] };
    m.attach_ia3(&cfg).unwrap();
    for (i, b) in m.blocks.iter_mut().enumerate() {
        for t in cfg.targets.iter().copied() {
            let v = b.ia3.get(t).unwrap().clone();
            let l = Tensor::randn(v.l.shape(), 1.0, 0.5, 50 + 8 * i as u64 + t as u64, DType::F32).unwrap();
            b.ia3.set(t, Some(Ia3Vector { l, ..v }));
        }
    }
    m.save_ia3(dir, BASE_NAME).unwrap();
}

#[test]
fn ia3_saved_by_peft_gives_peft_logits() {
    let want = expected("ia3", "peft");
    for source in [Source::Hf, Source::Gguf] {
        let mut m = base(source);
        let kind = m.load_adapter(&fixture("ia3").join("peft"), false).unwrap();
        let AdapterKind::Ia3(cfg) = kind else { panic!("{kind:?}") };
        assert_eq!(cfg.targets, [Target::Q, Target::K, Target::V, Target::Down]);
        assert_eq!(cfg.feedforward, [Target::Down]);
        check_against_peft(&m, &want, &format!("PEFT's IA3 on {source:?}"));
        // Merged into the weights: the same logits without the vectors.
        assert_eq!(m.merge_adapters().unwrap(), 2 * 4);
        assert!(!m.has_adapters());
        let _g = NoGradGuard::new();
        let err = worst_error(&cached_logits(&m, &want.prompt), &want.logits);
        assert!(err <= TOLERANCE, "merged PEFT IA3 on {source:?}: off PEFT's logits by {err:.3e}");
    }
}

#[test]
fn ia3_saved_by_lamina_loads_in_peft() {
    check_lamina_writes_the_fixture("ia3", save_lamina_ia3);
    let want = expected("ia3", "lamina");
    for source in [Source::Hf, Source::Gguf] {
        let mut m = base(source);
        m.load_adapter(&fixture("ia3").join("lamina"), false).unwrap();
        check_against_peft(&m, &want, &format!("Lamina's IA3 in PEFT, on {source:?}"));
    }
}

// ---- prompt tuning ---------------------------------------------------------------------

/// Lamina's soft prompt: 4 virtual tokens, N(0, 1).
fn save_lamina_prompt(dir: &Path) {
    let mut m = base(Source::Hf);
    let cfg = PromptTuningConfig { num_virtual_tokens: 4, init: PromptInit::Random };
    m.attach_prompt(&cfg, &[], 21).unwrap();
    m.save_prompt(dir, &cfg, BASE_NAME).unwrap();
}

#[test]
fn prompt_saved_by_peft_gives_peft_logits() {
    let want = expected("prompt", "peft");
    for source in [Source::Hf, Source::Gguf] {
        let mut m = base(source);
        let kind = m.load_adapter(&fixture("prompt").join("peft"), false).unwrap();
        assert!(matches!(kind, AdapterKind::Prompt(PromptTuningConfig { num_virtual_tokens: 5, .. })), "{kind:?}");
        check_against_peft(&m, &want, &format!("PEFT's prompt tuning on {source:?}"));
        assert!(m.merge_adapters().is_err(), "a soft prompt cannot be merged");
    }
}

#[test]
fn prompt_saved_by_lamina_loads_in_peft() {
    check_lamina_writes_the_fixture("prompt", save_lamina_prompt);
    let want = expected("prompt", "lamina");
    let mut m = base(Source::Gguf);
    m.load_adapter(&fixture("prompt").join("lamina"), false).unwrap();
    check_against_peft(&m, &want, "Lamina's prompt tuning in PEFT");
}

/// The `pinned` positions an adapter puts at the front of every cache (virtual tokens,
/// prefixes) are the model's: not counted, and kept through `clear` and `truncate`.
fn check_pinned(method: &str, pinned: usize) {
    let _g = NoGradGuard::new();
    let want = expected(method, "peft");
    let mut m = base(Source::Hf);
    m.load_adapter(&fixture(method).join("peft"), false).unwrap();
    assert_eq!(m.context_length(), m.config.context_length - pinned);
    let mut cache = m.new_cache(want.prompt.len()).unwrap();
    assert_eq!(
        (cache.len(), cache.capacity()),
        (0, want.prompt.len()),
        "{method}: the pinned positions are the model's"
    );
    m.forward(&want.prompt[..4], &mut cache, LogitsFor::Last).unwrap();
    // A new conversation, and a rollback to a shared prefix, keep the pinned positions.
    cache.clear();
    let all = m.forward(&want.prompt, &mut cache, LogitsFor::All).unwrap().to_vec_f32().unwrap();
    assert!(worst_error(&all, &want.logits) <= TOLERANCE, "{method} after clear");
    cache.truncate(3);
    let rest = m.forward(&want.prompt[3..], &mut cache, LogitsFor::All).unwrap().to_vec_f32().unwrap();
    assert!(worst_error(&rest, &want.logits[3 * m.config.vocab_size..]) <= TOLERANCE, "{method} after truncate");
}

#[test]
fn a_soft_prompt_stays_pinned_in_the_cache() {
    check_pinned("prompt", 5);
}

// ---- prefix tuning ---------------------------------------------------------------------

/// Lamina's prefixes: 3 positions, N(0, 1), attached to the GGUF model (keys in GGUF's
/// per-head order, moved to Hugging Face's on save).
fn save_lamina_prefix(dir: &Path) {
    let mut m = base(Source::Gguf);
    let cfg = PrefixTuningConfig { num_virtual_tokens: 3, projection: None };
    m.attach_prefix(&cfg, 23).unwrap();
    m.save_prefix(dir, &cfg, BASE_NAME).unwrap();
}

#[test]
fn prefixes_saved_by_peft_give_peft_logits() {
    for (who, want_cfg) in [
        ("peft", PrefixTuningConfig { num_virtual_tokens: 3, projection: None }),
        ("peft_projection", PrefixTuningConfig { num_virtual_tokens: 4, projection: Some(12) }),
    ] {
        let want = expected("prefix", who);
        for source in [Source::Hf, Source::Gguf] {
            let mut m = base(source);
            let kind = m.load_adapter(&fixture("prefix").join(who), false).unwrap();
            assert_eq!(kind, AdapterKind::Prefix(want_cfg.clone()));
            check_against_peft(&m, &want, &format!("PEFT's prefixes ({who}) on {source:?}"));
            assert!(m.merge_adapters().is_err(), "prefixes cannot be merged");
        }
    }
}

#[test]
fn prefixes_saved_by_lamina_load_in_peft() {
    check_lamina_writes_the_fixture("prefix", save_lamina_prefix);
    let want = expected("prefix", "lamina");
    for source in [Source::Hf, Source::Gguf] {
        let mut m = base(source);
        m.load_adapter(&fixture("prefix").join("lamina"), false).unwrap();
        check_against_peft(&m, &want, &format!("Lamina's prefixes in PEFT, on {source:?}"));
    }
}

/// Prefix tuning on every other decoder family (biases, q/k norms, sliding windows, fused
/// projections, soft-caps, scaled embeddings): PEFT's prefixes give PEFT's logits.
#[test]
fn prefixes_saved_by_peft_give_peft_logits_on_every_family() {
    for family in ["qwen2", "qwen3", "mistral", "phi3", "gemma2", "gemma3"] {
        let want = expected("prefix_families", family);
        // llama.cpp's converter writes Mistral as `llama` without its sliding window, so its
        // GGUF is another model (arch_families.rs checks it against its own reference).
        let sources: &[Source] = if family == "mistral" { &[Source::Hf] } else { &[Source::Hf, Source::Gguf] };
        for &source in sources {
            let mut m = family_base(family, source, Device::Cpu);
            m.load_adapter(&fixture("prefix_families").join(family), false).unwrap();
            check_against_peft(&m, &want, &format!("PEFT's prefixes on {family} from {source:?}"));
        }
    }
}

#[test]
fn prefixes_stay_pinned_in_the_cache() {
    check_pinned("prefix", 3);
}

// ---- P-tuning ----------------------------------------------------------------------------

/// Lamina's P-tuning: 4 virtual tokens from an MLP encoder 12 wide, attached to the GGUF
/// model; saved as the encoder's output.
fn save_lamina_p_tuning(dir: &Path) {
    let mut m = base(Source::Gguf);
    let cfg = PTuningConfig { num_virtual_tokens: 4, hidden: 12 };
    m.attach_p_tuning(&cfg, 31).unwrap();
    m.save_p_tuning(dir, &cfg, BASE_NAME).unwrap();
}

#[test]
fn p_tuning_saved_by_peft_gives_peft_logits() {
    for (who, want_cfg) in [
        ("peft", PTuningConfig { num_virtual_tokens: 4, hidden: 12 }),
        ("peft_lstm", PTuningConfig { num_virtual_tokens: 3, hidden: 8 }),
    ] {
        let want = expected("p_tuning", who);
        for source in [Source::Hf, Source::Gguf] {
            let mut m = base(source);
            let kind = m.load_adapter(&fixture("p_tuning").join(who), false).unwrap();
            assert_eq!(kind, AdapterKind::PTuning(want_cfg.clone()));
            check_against_peft(&m, &want, &format!("PEFT's P-tuning ({who}) on {source:?}"));
            assert!(m.merge_adapters().is_err(), "a soft prompt cannot be merged");
        }
    }
}

#[test]
fn p_tuning_saved_by_lamina_loads_in_peft() {
    check_lamina_writes_the_fixture("p_tuning", save_lamina_p_tuning);
    let want = expected("p_tuning", "lamina");
    for source in [Source::Hf, Source::Gguf] {
        let mut m = base(source);
        m.load_adapter(&fixture("p_tuning").join("lamina"), false).unwrap();
        check_against_peft(&m, &want, &format!("Lamina's P-tuning in PEFT, on {source:?}"));
    }
}

// ---- the GPU ---------------------------------------------------------------------------

/// The adapters' forward passes on the GPU (WGSL kernels; lavapipe in CI): PEFT's adapters
/// give PEFT's logits through the cached and the training forwards.
#[test]
fn peft_adapters_give_peft_logits_on_the_gpu() {
    let Some(device) = lamina_testkit::gpu() else { return };
    for method in ["ia3", "prompt", "prefix", "p_tuning"] {
        let mut m = base_on(Source::Gguf, device);
        m.load_adapter(&fixture(method).join("peft"), false).unwrap();
        check_against_peft(&m, &expected(method, "peft"), &format!("PEFT's {method} on the GPU"));
    }
}

/// The trainable tensors' gradients of one loss on the fixture's prompt.
fn adapter_gradients(m: &Llama, params: &[(String, Tensor)]) -> Vec<Vec<f32>> {
    let prompt = expected("prefix", "peft").prompt;
    let labels: Vec<i32> = prompt[1..].iter().map(|&t| t as i32).chain([lamina_model::llama::IGNORE]).collect();
    let (loss, _) = m.loss(&prompt, &labels, 1, None).unwrap();
    loss.backward().unwrap();
    params.iter().map(|(n, t)| t.grad().unwrap_or_else(|| panic!("{n}: no gradient")).to_vec_f32().unwrap()).collect()
}

/// Houlsby adapters with random up projections (they start at zero, which would leave
/// the down projections without a gradient), drawn on the host.
fn attach_bottleneck(m: &mut Llama) {
    let cfg = BottleneckConfig { size: 4, placement: Placement::Houlsby, activation: BottleneckAct::Gelu };
    m.attach_bottleneck(&cfg, 7).unwrap();
    let device = m.device();
    for (i, b) in m.blocks.iter_mut().enumerate() {
        for a in [b.bottleneck.attn.as_mut().unwrap(), b.bottleneck.mlp.as_mut().unwrap()] {
            for t in a.up.params_mut() {
                let r = Tensor::randn(t.shape(), 0.0, 0.5, 40 + i as u64, DType::F32).unwrap();
                *t = r.to_device(device).unwrap().requires_grad_();
            }
        }
    }
}

/// Puts fresh adapters on a model.
type Attach = fn(&mut Llama);

/// Training on the GPU: the same fresh adapters (drawn on the host) get the CPU's
/// gradients, to f32 summation order (relative to each tensor's largest element).
#[test]
fn adapter_gradients_on_the_gpu_equal_the_cpus() {
    let Some(device) = lamina_testkit::gpu() else { return };
    let attach: [(&str, Attach); 3] = [
        ("prefix through its MLP", |m| {
            m.attach_prefix(&PrefixTuningConfig { num_virtual_tokens: 3, projection: Some(8) }, 5).unwrap()
        }),
        ("P-tuning", |m| m.attach_p_tuning(&PTuningConfig { num_virtual_tokens: 3, hidden: 8 }, 6).unwrap()),
        ("bottleneck adapters", attach_bottleneck),
    ];
    for (what, attach) in attach {
        let grads: Vec<Vec<Vec<f32>>> = [Device::Cpu, device]
            .into_iter()
            .map(|d| {
                let mut m = base_on(Source::Gguf, d);
                attach(&mut m);
                let params = [m.prefix_parameters(), m.prompt_parameters(), m.bottleneck_parameters()].concat();
                adapter_gradients(&m, &params)
            })
            .collect();
        for (c, g) in grads[0].iter().zip(&grads[1]) {
            let scale = c.iter().fold(0f32, |a, v| a.max(v.abs()));
            let diff = c.iter().zip(g).fold(0f32, |a, (x, y)| a.max((x - y).abs()));
            assert!(scale > 0.0 && diff <= 1e-4 * scale, "{what}: GPU gradient off by {diff} (scale {scale})");
        }
    }
}

/// Writes tests/fixtures/peft_methods/*/lamina/ (then run the reference script).
#[test]
#[ignore = "writes the fixture: run by hand before scripts/reference/peft_methods_reference.py"]
fn write_lamina_adapters() {
    save_lamina_ia3(&fixture("ia3").join("lamina"));
    save_lamina_prompt(&fixture("prompt").join("lamina"));
    save_lamina_prefix(&fixture("prefix").join("lamina"));
    save_lamina_p_tuning(&fixture("p_tuning").join("lamina"));
}
