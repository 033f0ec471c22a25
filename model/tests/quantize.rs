//! `quantize_model` on the tiny GPT-2 fixture (F16 matrices, F32 vectors): the output is a
//! valid GGUF with the matrices in the target format and everything else F32, the same
//! metadata apart from the file type, and a model that still computes nearly the same
//! logits. Requantizing is refused unless asked for.

use lamina_model::gguf::GgufFile;
use lamina_model::quantize::{quantize_model, Target};
use lamina_model::{CausalLm, Gpt, LogitsFor};
use lamina_tensor::quant::GgmlType;
use lamina_tensor::Device;
use std::path::PathBuf;

fn fixture() -> GgufFile {
    GgufFile::open(lamina_testkit::repo_root().join("tests/fixtures/gpt2-tiny/gpt2-tiny.gguf")).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lamina-quantize-{}-{name}", std::process::id()))
}

fn logits(f: &GgufFile) -> Vec<f32> {
    let m = Gpt::from_gguf(f, Device::Cpu).unwrap();
    let _g = lamina_tensor::NoGradGuard::new();
    let ids = [3u32, 17, 42, 5, 63, 0, 8, 8];
    CausalLm::forward(&m, &ids, &mut CausalLm::new_cache(&m, 16).unwrap(), LogitsFor::All)
        .unwrap()
        .to_vec_f32()
        .unwrap()
}

/// Root-mean-square difference relative to the RMS of the reference logits.
fn relative_rms(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    (d / n).sqrt()
}

#[test]
fn quantized_models_keep_their_logits_within_each_formats_budget() {
    let input = fixture();
    let base = logits(&input);
    // Relative RMS error budgets: 8-bit blocks are near-lossless, 4-bit ones are not.
    for (ty, budget) in [(GgmlType::Q8_0, 0.03), (GgmlType::Q5_1, 0.15), (GgmlType::Q4_0, 0.35), (GgmlType::Q4_1, 0.35)]
    {
        let path = tmp(ty.name());
        let mut calls = 0;
        let report = quantize_model(&input, &path, &Target::of_type(ty).unwrap(), false, |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
        assert_eq!(calls, input.tensors.len());
        let out = GgufFile::open(&path).unwrap();
        // llama.cpp's choice: the tied embedding is the head (Q8_0: rows of 32 are not
        // whole Q6_K blocks), position embeddings and vectors stay F32.
        for t in &out.tensors {
            let want = match t.name.as_str() {
                "token_embd.weight" => GgmlType::Q8_0,
                "position_embd.weight" => GgmlType::F32,
                _ if t.ne.len() == 2 && !t.name.contains("norm") => ty,
                _ => GgmlType::F32,
            };
            assert_eq!(t.ty, want, "{}: {}", ty, t.name);
        }
        assert_eq!(out.get_u64("general.file_type").unwrap() as u32, lamina_file_type(ty));
        assert_eq!(out.get_u64("gpt2.block_count").unwrap(), 2, "metadata is carried over");
        assert_eq!(report.bytes_out, out.tensors.iter().map(|t| t.n_bytes).sum::<u64>());
        let err = relative_rms(&logits(&out), &base);
        eprintln!(
            "{ty}: {:.2} bits/weight, logits relative RMS error {err:.4}",
            report.bits_per_weight(report.bytes_out)
        );
        assert!(err < budget, "{ty}: relative RMS error {err} over the budget {budget}");
        std::fs::remove_file(&path).unwrap();
    }
}

fn lamina_file_type(t: GgmlType) -> u32 {
    match t {
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        _ => unreachable!(),
    }
}

#[test]
fn requantizing_is_refused_unless_asked_and_bad_targets_are_errors() {
    let input = fixture();
    let q8 = tmp("q8-src");
    quantize_model(&input, &q8, &Target::parse("q8_0").unwrap(), false, |_, _| {}).unwrap();
    let q8_file = GgufFile::open(&q8).unwrap();
    let out = tmp("q4-from-q8");
    let q4_0 = Target::parse("Q4_0").unwrap();
    let err = quantize_model(&q8_file, &out, &q4_0, false, |_, _| {}).unwrap_err().to_string();
    assert!(err.contains("allow-requantize"), "{err}");
    assert!(!out.exists(), "a refused run must not leave a file");
    quantize_model(&q8_file, &out, &q4_0, true, |_, _| {}).unwrap();
    assert!(GgufFile::open(&out).is_ok());
    let err = Target::parse("q3_k").unwrap_err();
    assert!(err.contains("q4_k_m"), "{err}");
    std::fs::remove_file(&q8).unwrap();
    std::fs::remove_file(&out).unwrap();
}
