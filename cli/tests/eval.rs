//! `lamina eval` through the binary: bad data and options are clear errors before any
//! model is loaded; on SmolLM2, a small test set gives a JSON report and a mistakes table.

use std::path::PathBuf;
use std::process::Command;

fn lamina(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamina")).args(args).output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("lamina-cli-eval-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

const GOOD: &str = r#"{"messages": [{"role": "user", "content": "What is the capital of France? Answer with one word."}, {"role": "assistant", "content": "The capital of France is Paris."}]}"#;

#[test]
fn bad_data_and_options_fail_clearly_before_loading() {
    let bad = write("bad.jsonl", "{oops\n{\"text\": 3}\n");
    let mixed = write("mixed.jsonl", &format!("{GOOD}\nnot json\n"));
    let (b, m) = (bad.to_str().unwrap(), mixed.to_str().unwrap());
    // A model path that does not exist: these must fail on the data or options first.
    for (args, want) in [
        (vec!["eval", "-m", "/nonexistent.gguf", "--data", "/no/such.jsonl"], "/no/such.jsonl"),
        (vec!["eval", "-m", "/nonexistent.gguf", "--data", b], "no usable example"),
        (vec!["eval", "-m", "/nonexistent.gguf", "--data", m, "--strict"], "line 2"),
        (vec!["eval", "-m", "/nonexistent.gguf", "--data", m, "--max-tokens", "0"], "--max-tokens"),
        (vec!["eval", "-m", "/nonexistent.gguf", "--data", m, "--limit", "0"], "--limit"),
        (vec!["eval", "-m", "/nonexistent.gguf", "--data", m], "nonexistent"),
    ] {
        let (ok, _, err) = lamina(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let (_, _, err) = lamina(&["eval", "-m", "/nonexistent.gguf", "--data", b]);
    assert!(err.contains("line 1") && err.contains("line 2"), "bad lines are listed: {err}");
    std::fs::remove_file(bad).unwrap();
    std::fs::remove_file(mixed).unwrap();
}

#[test]
fn evaluates_smollm2_on_a_small_set() {
    let Some(model) = lamina_model::fixtures::smollm2_for_test() else { return };
    let model = model.to_str().unwrap().to_string();
    let date = r#"{"messages": [{"role": "user", "content": "Rewrite the date 14 March 2021 as YYYY-MM-DD."}, {"role": "assistant", "content": "2021-03-14"}]}"#;
    let data = write("small.jsonl", &format!("{GOOD}\n{{\"text\": \"no answer\"}}\n{date}\n"));
    let d = data.to_str().unwrap();
    let (ok, out, err) = lamina(&["eval", "-m", &model, "--data", d, "--json", "-n", "12"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["evaluated"], 2);
    assert_eq!(v["skipped"]["no_reference"], serde_json::json!([2]));
    assert_eq!(v["records"][0]["correct"], true, "{v}");
    assert_eq!(v["records"][0]["output"], "The capital of France is Paris.");
    let acc = v["accuracy"].as_f64().unwrap();
    assert_eq!(acc, v["correct"].as_f64().unwrap() / 2.0);
    assert!(v["tokens_per_s"].as_f64().unwrap() > 0.0);

    let (ok, out, err) = lamina(&["eval", "-m", &model, "--data", d, "--limit", "1", "--show", "3"]);
    assert!(ok, "{err}");
    assert!(out.contains("exact match 1/1 = 100.0%"), "{out}");
    std::fs::remove_file(data).unwrap();
}
