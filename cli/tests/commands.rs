//! The commands no other test runs to success through the binary, each on a small case:
//! `devices`, `bench` (one tiny op), `train-demo` (a few steps), `plot`, `sweep` (two
//! variants of a tiny LLaMA), `bench-model` and sampled `generate` on the reference
//! model, and `generate` of every decoder family (GGUF and Hugging Face directory) on the
//! CPU and with `--device gpu` (lavapipe in CI).

use std::path::PathBuf;
use std::process::Command;

fn lamina(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamina")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn ok(args: &[&str]) -> String {
    let (ok, out, err) = lamina(args);
    assert!(ok, "lamina {args:?} failed: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    out
}

fn tmp(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("lamina-commands-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    let _ = std::fs::remove_file(&p);
    p
}

fn model() -> Option<String> {
    lamina_testkit::smollm2().map(|p| p.to_str().unwrap().to_string())
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn devices_lists_the_cpu_and_the_gpu_adapters() {
    let out = ok(&["devices"]);
    assert!(out.to_lowercase().contains("cpu"), "{out}");
    if let Some(gpu) = lamina_testkit::gpu() {
        let name = gpu.to_string();
        assert!(out.contains(&name), "`{name}` (the adapter the tests use) is not listed:\n{out}");
    }
}

#[test]
fn bench_times_one_tiny_op() {
    let v = json(&ok(&["bench", "--ops", "add", "--sizes", "64", "--repeat", "1", "--json"]));
    let results = v["results"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(results.len(), 1, "{v}");
    let r = &results[0];
    assert_eq!((r["op"].as_str(), r["label"].as_str(), r["unit"].as_str()), (Some("add"), Some("64x64"), Some("GB/s")));
    assert!(r["median_s"].as_f64().unwrap() > 0.0 && r["rate"].as_f64().unwrap() > 0.0, "{r}");
}

#[test]
fn train_demo_trains_a_few_steps_and_samples() {
    let plot = tmp("demo.svg");
    let out = ok(&[
        "train-demo",
        "--steps",
        "3",
        "--sample-len",
        "20",
        "--prompt",
        "When ",
        "--quiet",
        "--save-plot",
        plot.to_str().unwrap(),
    ]);
    assert!(out.contains("When "), "the sample starts from the prompt: {out}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{}", &svg[..svg.len().min(80)]);
    std::fs::remove_file(plot).unwrap();
}

#[test]
fn plot_draws_a_fine_tuning_log() {
    let log = tmp("metrics.jsonl");
    let lines: Vec<String> = (1..=20)
        .map(|s| format!("{{\"step\": {s}, \"loss\": {}, \"lr\": 0.001}}", 3.0 / s as f64))
        .chain([r#"{"step": 10, "val_loss": 1.0, "val_ppl": 2.718}"#.to_string()])
        .collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let svg_path = tmp("metrics.svg");
    ok(&["plot", log.to_str().unwrap(), "-o", svg_path.to_str().unwrap()]);
    let svg = std::fs::read_to_string(&svg_path).unwrap();
    assert!(svg.contains("<svg") && (svg.contains("<polyline") || svg.contains("<path")), "not a chart");
    std::fs::remove_file(log).unwrap();
    std::fs::remove_file(svg_path).unwrap();
}

#[test]
fn sweep_scores_two_variants_of_a_tiny_llama() {
    let base = lamina_testkit::fixture("arch/llama/model.gguf");
    let out = tmp("sweep");
    ok(&[
        "sweep",
        base.to_str().unwrap(),
        "--types",
        "q8_0",
        "--sparsity",
        "0.5",
        "--pattern",
        "unstructured",
        "--chunk",
        "32",
        "--chunks",
        "1",
        "-o",
        out.to_str().unwrap(),
    ]);
    let v = json(&std::fs::read_to_string(out.join("sweep.json")).unwrap());
    let kinds: Vec<&str> = v["variants"].as_array().unwrap().iter().map(|x| x["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["quantize", "prune"], "{v}");
    assert!(v["base"]["ppl"].as_f64().unwrap() > 1.0, "{v}");
    assert!(std::fs::read_dir(&out).unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "svg")));
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn bench_model_measures_a_few_tokens() {
    let Some(m) = model() else { return };
    let v = json(&ok(&["bench-model", "-m", &m, "-p", "8", "-n", "4", "-r", "1", "--json"]));
    let rows = v.as_array().unwrap_or_else(|| panic!("{v}"));
    let tests: Vec<&str> = rows.iter().map(|r| r["test"].as_str().unwrap()).collect();
    assert_eq!(tests, ["pp8", "tg4"], "llama-bench's test names");
    assert!(rows.iter().all(|r| r["tokens_per_s"].as_f64().unwrap() > 0.0), "{v}");
}

/// Sampling is seeded: the same seed gives the same text, and 16 sampled tokens of a
/// temperature-1.5 run differ from the greedy ones.
#[test]
fn generate_samples_reproducibly() {
    let Some(m) = model() else { return };
    let args = |seed: &'static str| {
        vec![
            "generate",
            "-m",
            m.as_str(),
            "-n",
            "16",
            "--temp",
            "1.5",
            "--top-k",
            "0",
            "--seed",
            seed,
            "Once upon a time",
        ]
    };
    let a = ok(&args("7"));
    let b = ok(&args("7"));
    assert_eq!(a, b, "the same seed must give the same sample");
    let greedy = ok(&["generate", "-m", &m, "-n", "16", "--greedy", "Once upon a time"]);
    assert_ne!(a, greedy, "a temperature-1.5 sample equal to the greedy text");
}

/// Every decoder family's tiny checkpoint saved by transformers (tests/fixtures/arch/<family>:
/// the Hugging Face directory and llama.cpp's GGUF conversion) continues "Once upon a time"
/// with transformers' greedy tokens, on the CPU and on the GPU. Mistral's GGUF has no
/// sliding window (llama.cpp's converter drops it), so it follows transformers with the
/// window off.
#[test]
fn generate_follows_transformers_for_every_family_on_cpu_and_gpu() {
    let mut devices = vec!["cpu".to_string()];
    devices.extend(lamina_testkit::gpu().map(|d| d.to_string()));
    for family in ["llama", "qwen2", "qwen3", "mistral", "phi3", "gemma2", "gemma3"] {
        let dir = lamina_testkit::fixture("arch").join(family);
        let reference = json(&std::fs::read_to_string(dir.join("reference.json")).unwrap());
        let gguf = lamina_model::gguf::GgufFile::open(dir.join("model.gguf")).unwrap();
        let tokenizer = lamina_model::BpeTokenizer::from_gguf(&gguf).unwrap();
        let prompt = &reference["prompts"]["short"];
        let text = |key: &str| {
            let ids: Vec<u32> = prompt[key].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
            (tokenizer.decode(&ids, false).unwrap(), ids.len().to_string())
        };
        let gguf_key = if family == "mistral" { "no_window.greedy" } else { "greedy" };
        for (source, key) in [("model.gguf", gguf_key), ("hf", "greedy")] {
            let (want, n) = text(key);
            let model = dir.join(source);
            for device in &devices {
                let args = ["--device", device, "--greedy", "-n", &n, prompt["text"].as_str().unwrap()];
                let out = ok(&[&["generate", "-m", model.to_str().unwrap()], &args[..]].concat());
                assert_eq!(out, format!("{want}\n"), "{family} {source} on {device}");
            }
        }
    }
}
