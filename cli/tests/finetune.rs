//! Fine-tuning through the binary on the real model: a short LoRA run writes a PEFT
//! adapter, metrics and a checkpoint; `--resume` continues it; the adapter is used by
//! `generate --lora` and folded in by `merge`; bad data and settings are clear errors.
//! LoRA on every decoder family, IA³ and prompt tuning on the tiny transformers checkpoints.

use std::path::{Path, PathBuf};
use std::process::Command;

fn lamina(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamina")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn model() -> Option<String> {
    lamina_testkit::smollm2().map(|p| p.to_str().unwrap().to_string())
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-cli-ft-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_data(dir: &Path, lines: &[&str]) -> String {
    let p = dir.join("data.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    p.to_str().unwrap().to_string()
}

const CHATS: [&str; 6] = [
    r#"{"messages": [{"role": "user", "content": "Write 7 March 2020 as YYYY-MM-DD."}, {"role": "assistant", "content": "2020-03-07"}]}"#,
    r#"{"messages": [{"role": "user", "content": "Write 1 May 1999 as YYYY-MM-DD."}, {"role": "assistant", "content": "1999-05-01"}]}"#,
    r#"{"prompt": "Write 12 June 2001 as YYYY-MM-DD.", "completion": "2001-06-12"}"#,
    r#"{"prompt": "Write 30 July 1987 as YYYY-MM-DD.", "completion": "1987-07-30"}"#,
    r#"{"text": "The date 2 August 2012 is 2012-08-02."}"#,
    r#"{"messages": [{"role": "system", "content": "Answer with a date."}, {"role": "user", "content": "Write 9 October 2015 as YYYY-MM-DD."}, {"role": "assistant", "content": "2015-10-09"}]}"#,
];

fn loss_steps(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn lora_run_resume_generate_and_merge() {
    let Some(m) = model() else { return };
    let dir = tmp("run");
    let data = write_data(&dir, &CHATS);
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    let common = ["finetune", "-m", &m, "--data", &data, "--out", run_s, "--batch", "2", "--max-len", "64"];
    let args = |extra: &[&'static str]| -> Vec<String> {
        common.iter().map(|s| s.to_string()).chain(extra.iter().map(|s| s.to_string())).collect()
    };
    let a = args(&["--steps", "2", "--val-fraction", "0.34", "--eval-every", "1", "--lr", "1e-3", "--rank", "4"]);
    let (ok, out, err) = lamina(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(out.contains("trained 2 steps") && out.contains("peak memory"), "{out}");
    assert!(err.contains("kept 6"), "data report: {err}");
    assert!(run.join("final/adapter_config.json").exists() && run.join("final/adapter_model.safetensors").exists());
    assert!(run.join("best/adapter_config.json").exists());
    assert!(run.join("checkpoint-2/trainer_state.json").exists());
    assert_eq!(loss_steps(&run), vec![1, 2]);

    let a = args(&[
        "--steps",
        "3",
        "--val-fraction",
        "0.34",
        "--eval-every",
        "1",
        "--lr",
        "1e-3",
        "--rank",
        "4",
        "--resume",
    ]);
    let (ok, out, err) = lamina(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    assert!(out.contains("trained 3 steps (resumed at 2)"), "{out}");
    assert_eq!(loss_steps(&run), vec![1, 2, 3]);

    let adapter = run.join("final");
    let adapter = adapter.to_str().unwrap();
    let (ok, out, err) = lamina(&["generate", "-m", &m, "--lora", adapter, "--greedy", "-n", "4", "The date"]);
    assert!(ok && !out.trim().is_empty(), "{err}");
    assert!(err.contains("LoRA: rank 4"), "{err}");

    let merged = dir.join("merged.gguf");
    let (ok, out, err) = lamina(&["merge", "-m", &m, "--lora", adapter, merged.to_str().unwrap(), "--type", "q8_0"]);
    assert!(ok, "{err}");
    assert!(out.contains("merged 210 adapted tensors"), "{out}");
    let (ok, _, err) = lamina(&["info", merged.to_str().unwrap()]);
    assert!(ok, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_data_and_settings_are_clear_errors() {
    let Some(m) = model() else { return };
    let dir = tmp("bad");
    let out_dir = dir.join("run");
    let run = out_dir.to_str().unwrap();
    let data =
        write_data(&dir, &["{not json", r#"{"text": ""}"#, r#"{"messages": [{"role": "user", "content": "hi"}]}"#]);
    let (ok, _, err) = lamina(&["finetune", "-m", &m, "--data", &data, "--out", run, "--steps", "1"]);
    assert!(!ok && err.contains("no usable training example"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let mut lines = CHATS.to_vec();
    lines.insert(2, "{not json");
    let data = write_data(&dir, &lines);
    let (ok, _, err) = lamina(&["finetune", "-m", &m, "--data", &data, "--out", run, "--steps", "1", "--strict"]);
    assert!(!ok && err.contains("line 3"), "{err}");

    for (flag, value, word) in [
        ("--targets", "q,lm_head", "lm_head"),
        ("--optimizer", "adam", "adamw"),
        ("--schedule", "step", "cosine"),
        ("--rank", "0", "rank"),
    ] {
        let data = write_data(&dir, &CHATS);
        let (ok, _, err) = lamina(&["finetune", "-m", &m, "--data", &data, "--out", run, "--steps", "1", flag, value]);
        assert!(!ok && err.contains(word), "{flag} {value}: {err}");
    }
    let (ok, _, err) = lamina(&["finetune", "-m", &m, "--data", &data, "--out", run, "--steps", "1", "--resume"]);
    assert!(!ok && err.contains("no checkpoint"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// IA³ and prompt tuning through the binary on the tiny LLaMA of tests/fixtures/arch (no
/// download): each trains and writes its PEFT adapter; IA³ vectors saved by PEFT change
/// `generate`'s greedy text, and merged with `merge` give that same text with no adapter;
/// a soft prompt, P-tuning's (its encoder's output) and prefixes (trained through their
/// MLP) and bottleneck adapters apply with `--adapter` and refuse to merge.
#[test]
fn ia3_and_prompt_tuning_train_apply_and_merge() {
    let root = lamina_testkit::repo_root();
    let m = root.join("tests/fixtures/arch/llama/model.gguf");
    let m = m.to_str().unwrap();
    let dir = tmp("methods");
    let data = write_data(&dir, &CHATS);
    for (method, extra, peft_type) in [
        ("ia3", vec![], "IA3"),
        ("prompt", vec!["--virtual-tokens", "3", "--prompt-init-text", "The date"], "PROMPT_TUNING"),
        ("prefix", vec!["--virtual-tokens", "2", "--prefix-projection"], "PREFIX_TUNING"),
        ("p-tuning", vec!["--virtual-tokens", "2", "--encoder-hidden", "8"], "P_TUNING"),
        ("bottleneck", vec!["--bottleneck-size", "4", "--lr", "0.05"], "LAMINA_BOTTLENECK"),
    ] {
        let run = dir.join(method);
        let run = run.to_str().unwrap();
        let mut a = vec!["finetune", "-m", m, "--data", &data, "--out", run, "--method", method, "--steps", "2"];
        a.extend(["--batch", "2", "--val-fraction", "0", "--max-len", "48"]);
        a.extend(extra);
        let (ok, out, err) = lamina(&a);
        assert!(ok && out.contains("trained 2 steps"), "{method}: {err}");
        let config = std::fs::read_to_string(dir.join(method).join("final/adapter_config.json")).unwrap();
        assert!(config.contains(&format!("\"peft_type\": \"{peft_type}\"")), "{config}");
    }
    let generate = |model: &str, adapter: Option<&Path>| {
        let mut a = vec!["generate", "-m", model, "--greedy", "-n", "8", "Once upon a time"];
        if let Some(p) = adapter {
            a.extend(["--adapter", p.to_str().unwrap()]);
        }
        let (ok, out, err) = lamina(&a);
        assert!(ok, "{err}");
        (out, err)
    };
    let peft_ia3 = root.join("tests/fixtures/peft_methods/ia3/peft");
    let (base, _) = generate(m, None);
    let (adapted, err) = generate(m, Some(&peft_ia3));
    assert!(err.contains("IA3: vectors on q_proj, k_proj, v_proj, down_proj"), "{err}");
    assert_ne!(adapted, base, "the adapter changes the greedy text");
    let merged = dir.join("merged.gguf");
    let (ok, out, err) =
        lamina(&["merge", "-m", m, "--adapter", peft_ia3.to_str().unwrap(), merged.to_str().unwrap(), "-t", "f32"]);
    assert!(ok && out.contains("merged 8 adapted tensors"), "{out}{err}");
    assert_eq!(generate(merged.to_str().unwrap(), None).0, adapted, "merged IA3 = IA3 applied");

    let says = [
        ("prompt", "prompt tuning: 3 virtual tokens"),
        ("prefix", "prefix tuning: 2 key/value"),
        ("p-tuning", "P-tuning: 2 virtual tokens"),
        ("bottleneck", "bottleneck adapters: size 4, houlsby placement, relu"),
    ];
    for (method, says) in says {
        let adapter = dir.join(method).join("final");
        let (_, err) = generate(m, Some(&adapter));
        assert!(err.contains(says), "{err}");
        let (ok, _, err) =
            lamina(&["merge", "-m", m, "--adapter", adapter.to_str().unwrap(), merged.to_str().unwrap()]);
        assert!(!ok && err.contains("cannot be merged"), "{method}: {err}");
    }

    // The method's own settings are stored with each checkpoint: a resume that changes
    // them is refused, naming them.
    let resume = |method: &str, extra: &[&str]| {
        let run = dir.join(method);
        let mut a = vec!["finetune", "-m", m, "--data", &data, "--out", run.to_str().unwrap(), "--method", method];
        a.extend(["--steps", "3", "--batch", "2", "--val-fraction", "0", "--max-len", "48", "--resume"]);
        a.extend(extra);
        lamina(&a)
    };
    let (ok, _, err) = resume("ia3", &["--targets", "k,v"]);
    assert!(!ok && err.contains("targets: \"k_proj,v_proj,down_proj\" in the checkpoint"), "{err}");
    let (ok, _, err) = resume("prompt", &["--virtual-tokens", "4", "--prompt-init-text", "The date"]);
    assert!(!ok && err.contains("virtual_tokens: 3 in the checkpoint, 4 now"), "{err}");
    let (ok, _, err) =
        resume("prompt", &["--virtual-tokens", "3", "--quantized-base", "--prompt-init-text", "The date"]);
    assert!(!ok && err.contains("quantized_base: false in the checkpoint, true now"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

mod support;

/// Fine-tune the tiny model: `--steps N` into `run` with `extra` options.
fn tiny_run(m: &str, data: &str, run: &Path, steps: &str, extra: &[&str]) -> (bool, String, String) {
    let mut a = vec!["finetune", "-m", m, "--data", data, "--out", support::s(run), "--steps", steps];
    a.extend_from_slice(&[
        "--batch",
        "2",
        "--rank",
        "2",
        "--val-fraction",
        "0.34",
        "--eval-every",
        "1",
        "--save-every",
        "1",
    ]);
    a.extend_from_slice(extra);
    support::lamina(&a)
}

#[test]
fn a_run_directory_holds_one_run_and_a_resume_its_own_settings() {
    let dir = support::scratch("ft-rundir");
    let m = support::tiny_in(&dir, "tiny.gguf", &support::Tiny::default());
    let data = write_data(&dir, &CHATS);
    let run = dir.join("run");
    let (ok, _, err) = tiny_run(&m, &data, &run, "3", &["--keep", "3"]);
    assert!(ok, "{err}");
    let best = std::fs::read(run.join("best/adapter_model.safetensors")).unwrap();

    // A fresh run into it is refused before anything is loaded, and nothing changes.
    let (ok, _, err) = tiny_run(&m, &data, &run, "1", &[]);
    assert!(
        !ok && err.contains("holds another run") && err.contains("--resume") && err.contains("--overwrite"),
        "{err}"
    );
    assert_eq!(std::fs::read(run.join("best/adapter_model.safetensors")).unwrap(), best);
    assert_eq!(loss_steps(&run), vec![1, 2, 3]);

    // A resume with other settings is refused, naming each difference; allowed with a flag.
    let (ok, _, err) = tiny_run(&m, &data, &run, "4", &["--resume", "--lr", "1e-3", "--lora-dropout", "0.1"]);
    assert!(
        !ok && err.contains("lr: 0.0002") && err.contains("0.001 now") && err.contains("lora_dropout: 0.05"),
        "{err}"
    );
    assert!(!err.contains("bad training configuration"), "{err}");
    std::fs::write(dir.join("other.jsonl"), CHATS[..5].join("\n")).unwrap();
    let (ok, _, err) = tiny_run(&m, support::s(&dir.join("other.jsonl")), &run, "4", &["--resume"]);
    assert!(!ok && err.contains("data_fingerprint"), "a changed data file: {err}");
    let (ok, out, err) = tiny_run(&m, &data, &run, "4", &["--resume", "--lr", "1e-3", "--allow-changed-settings"]);
    assert!(
        ok && out.contains("resumed at 3") && err.contains("warning: resuming with a changed setting: lr"),
        "{err}"
    );
    assert!(err.contains("note: steps: 3 in the checkpoint, 4 now"), "{err}");

    // A damaged newest checkpoint: the error offers the previous one, which resumes.
    std::fs::write(run.join("checkpoint-4").join("params.safetensors"), b"garbage").unwrap();
    let (ok, _, err) = tiny_run(&m, &data, &run, "5", &["--resume", "--lr", "1e-3"]);
    assert!(!ok && err.contains("checkpoint-4") && err.contains("--resume-from checkpoint-3"), "{err}");
    let (ok, out, err) = tiny_run(&m, &data, &run, "5", &["--resume-from", "checkpoint-3", "--lr", "1e-3"]);
    assert!(!ok && err.contains("lr"), "checkpoint-3 was made with the old rate: {out}{err}");
    let (ok, out, err) = tiny_run(&m, &data, &run, "5", &["--resume-from", "checkpoint-3"]);
    assert!(ok && out.contains("resumed at 3"), "{err}");
    assert!(run.join("abandoned-checkpoint-4").is_dir(), "the newer checkpoint is set aside, not deleted");
    assert_eq!(loss_steps(&run), vec![1, 2, 3, 4, 5]);

    // A checkpoint missing a file, and a temporary one a crash left.
    std::fs::remove_file(run.join("checkpoint-5").join("optimizer.safetensors")).unwrap();
    std::fs::create_dir(run.join(".checkpoint-6.tmp")).unwrap();
    let (ok, _, err) = tiny_run(&m, &data, &run, "6", &["--resume"]);
    assert!(!ok && err.contains("checkpoint-5") && err.contains("optimizer.safetensors is missing"), "{err}");
    assert!(err.contains("--resume-from checkpoint-4"), "{err}");
    assert!(!run.join(".checkpoint-6.tmp").exists(), "the leftover temporary is removed");

    // --overwrite starts afresh.
    let (ok, out, err) = tiny_run(&m, &data, &run, "2", &["--overwrite"]);
    assert!(ok && !out.contains("resumed"), "{err}");
    assert!(err.contains("--overwrite: removed the previous run's"), "{err}");
    assert_eq!(loss_steps(&run), vec![1, 2]);
    assert!(!run.join("checkpoint-5").exists() && !run.join("abandoned-checkpoint-4").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn skipped_lines_are_listed_and_a_byte_order_mark_is_accepted() {
    let dir = support::scratch("ft-data");
    let m = support::tiny_in(&dir, "tiny.gguf", &support::Tiny::default());
    let mut lines: Vec<String> = CHATS.iter().map(|l| l.to_string()).collect();
    lines[0] = format!("\u{FEFF}{}", lines[0]);
    lines.insert(2, "{not json".into());
    lines.insert(4, r#"{"text": ""}"#.into());
    let data = dir.join("bom.jsonl");
    std::fs::write(&data, lines.join("\n")).unwrap();
    let (ok, _, err) = tiny_run(&m, support::s(&data), &dir.join("run"), "1", &[]);
    assert!(ok, "{err}");
    assert!(err.contains("kept 6"), "line 1 with its byte-order mark is kept: {err}");
    assert!(err.contains("skipped line 3: not valid JSON") && err.contains("skipped line 5: `text` is empty"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// LoRA through the binary on every decoder family's tiny transformers checkpoint
/// (tests/fixtures/arch/<family>/model.gguf, no download): three steps write a PEFT adapter
/// on the family's own projections (Phi-3's fused `qkv_proj` and `gate_up_proj`) that
/// lowers the perplexity of text like its training data (measured: by 0.07 to 0.8 nats per
/// token), and `merge` folds it in to give the adapted model's perplexity with no adapter.
#[test]
fn lora_trains_applies_and_merges_for_every_family() {
    let dir = tmp("families");
    let data = write_data(&dir, &CHATS);
    let text = dir.join("text.txt");
    std::fs::write(&text, "The date 2 August 2012 is 2012-08-02. Write 9 October 2015 as YYYY-MM-DD.").unwrap();
    let nll = |model: &Path, adapter: Option<&Path>| -> f64 {
        let mut a = vec!["perplexity", "-m", model.to_str().unwrap(), "-f", text.to_str().unwrap(), "--chunk", "16"];
        a.push("--json");
        if let Some(p) = adapter {
            a.extend(["--adapter", p.to_str().unwrap()]);
        }
        let (ok, out, err) = lamina(&a);
        assert!(ok, "{a:?}: {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["mean_nll"].as_f64().unwrap()
    };
    for family in ["llama", "qwen2", "qwen3", "mistral", "phi3", "gemma2", "gemma3"] {
        let m = lamina_testkit::fixture("arch").join(family).join("model.gguf");
        let run = dir.join(family);
        let mut a = vec!["finetune", "-m", m.to_str().unwrap(), "--data", &data, "--out", run.to_str().unwrap()];
        a.extend(["--steps", "3", "--batch", "2", "--val-fraction", "0", "--max-len", "48", "--lr", "1e-2"]);
        a.extend(["--rank", "4"]);
        let (ok, out, err) = lamina(&a);
        assert!(ok && out.contains("trained 3 steps"), "{family}: {err}");
        assert_eq!(loss_steps(&run), vec![1, 2, 3], "{family}");
        let adapter = run.join("final");
        let config = std::fs::read_to_string(adapter.join("adapter_config.json")).unwrap();
        let modules: &[&str] = match family {
            "phi3" => &["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
            _ => &["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        };
        for module in modules {
            assert!(config.contains(&format!("\"{module}\"")), "{family}: no {module} in {config}");
        }
        let (base, adapted) = (nll(&m, None), nll(&m, Some(&adapter)));
        assert!(adapted < base - 0.01, "{family}: mean NLL {base} before training, {adapted} after");
        let merged = dir.join(format!("{family}-merged.gguf"));
        let (ok, out, err) = lamina(&[
            "merge",
            "-m",
            m.to_str().unwrap(),
            "--adapter",
            adapter.to_str().unwrap(),
            merged.to_str().unwrap(),
            "-t",
            "f32",
        ]);
        let layers = if family == "gemma3" { 6 } else { 2 };
        let tensors = format!("merged {} adapted tensors", layers * modules.len());
        assert!(ok && out.contains(&tensors), "{family}: {out}{err}");
        let merged = nll(&merged, None);
        assert!((merged - adapted).abs() < 1e-4, "{family}: merged {merged}, adapter applied {adapted}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
