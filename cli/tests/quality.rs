//! `prune`, `perplexity --kl-base`, `sweep` and `plot` through the binary: bad requests are
//! clear errors (never a panic, never a half-written file); with the reference model, a
//! model against itself has a KL divergence of exactly 0 and a pruned copy a positive one.

use std::path::PathBuf;
use std::process::Command;

fn lamina(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamina")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lamina-quality-{}-{name}", std::process::id()))
}

fn tiny() -> String {
    lamina_testkit::repo_root().join("tests/fixtures/gpt2-tiny/gpt2-tiny.gguf").display().to_string()
}

#[test]
fn bad_requests_are_clear_errors() {
    let out = tmp("bad.gguf");
    let o = out.to_str().unwrap();
    let t = tiny();
    for (args, want) in [
        (vec!["prune", &t, o, "--sparsity", "-0.1"], "0 to 1"),
        (vec!["prune", &t, o, "--sparsity", "1.5"], "0 to 1"),
        (vec!["prune", &t, o, "--sparsity", "NaN"], "0 to 1"),
        (vec!["prune", &t, o], "needs --sparsity"),
        (vec!["prune", &t, o, "--pattern", "2:4", "--sparsity", "0.3"], "disagrees"),
        (vec!["prune", &t, o, "--pattern", "4:2"], "0 < N < M"),
        (vec!["prune", &t, o, "--pattern", "2:4", "--scope", "global"], "--scope"),
        (vec!["prune", &t, o, "--sparsity", "0.5", "--type", "q4_0"], "possible values"),
        (vec!["prune", &t, &t, "--sparsity", "0.5"], "different file"),
        (vec!["prune", "/nonexistent.gguf", o, "--sparsity", "0.5"], "nonexistent"),
        (vec!["perplexity", "-m", &t, "--kl-base", "/nonexistent.gguf"], "nonexistent"),
        (vec!["sweep", &t, "--types", "q3_x"], "unknown quantization type"),
        (vec!["sweep", &t, "--types", "", "--sparsity", "2"], "0 to 1"),
        (vec!["sweep", &t, "--types", "", "--pattern", ""], "nothing to sweep"),
        (vec!["plot", "/nonexistent.jsonl", "-o", o], "nonexistent"),
        (vec!["sweep"], "required"),
        (vec!["sweep", "--replot", "/nonexistent.json"], "nonexistent"),
    ] {
        let (ok, _, err) = lamina(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
        assert!(!out.exists(), "{args:?} left a file");
    }
}

#[test]
fn prune_writes_a_model_and_reports_its_sparsity() {
    let out = tmp("pruned.gguf");
    let (ok, stdout, err) = lamina(&["prune", &tiny(), out.to_str().unwrap(), "--pattern", "2:4", "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["sparsity"], 0.5);
    assert_eq!(v["kinds"].as_array().unwrap().len(), 4);
    assert!(lamina_model::gguf::GgufFile::open(&out).is_ok());
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn kl_of_the_reference_model_against_itself_and_a_pruned_copy() {
    let Some(m) = lamina_testkit::smollm2() else { return };
    let m = m.to_str().unwrap();
    let common = ["--chunk", "64", "--chunks", "1", "--json"];
    let run = |model: &str| -> serde_json::Value {
        let mut args = vec!["perplexity", "-m", model, "--kl-base", m];
        args.extend(common);
        let (ok, stdout, err) = lamina(&args);
        assert!(ok, "{err}");
        serde_json::from_str(&stdout).unwrap()
    };
    let same = run(m);
    assert_eq!(same["kld"]["mean"], 0.0);
    assert_eq!(same["kld"]["max"], 0.0);
    assert_eq!(same["same_top"]["value"], 1.0);
    assert_eq!(same["ppl"]["value"], same["ppl_base"]["value"]);
    assert_eq!(same["tokens_scored"], 31);

    let pruned = tmp("smol-pruned.gguf");
    let (ok, _, err) = lamina(&["prune", m, pruned.to_str().unwrap(), "--sparsity", "0.3"]);
    assert!(ok, "{err}");
    let v = run(pruned.to_str().unwrap());
    std::fs::remove_file(&pruned).unwrap();
    assert!(v["kld"]["mean"].as_f64().unwrap() > 0.0, "{v}");
    assert_eq!(v["ppl_base"], same["ppl_base"], "the same base on the same tokens");
}
