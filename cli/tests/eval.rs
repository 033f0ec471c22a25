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
    let Some(model) = lamina_testkit::smollm2() else { return };
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

/// A task file in a fresh directory.
fn task_dir(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-cli-eval-tasks-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    for (name, text) in files {
        std::fs::write(d.join(name), text).unwrap();
    }
    d
}

#[test]
fn bad_task_files_fail_before_loading_with_their_line() {
    let d = task_dir(
        "bad",
        &[
            ("badline.jsonl", "{\"lamina_task\": 1, \"kind\": \"multiple_choice\"}\n{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n{oops\n"),
            ("metric.jsonl", "{\"lamina_task\": 1, \"kind\": \"generation\", \"metrics\": [\"bleu\"]}\n"),
            ("kl.jsonl", "{\"lamina_task\": 1, \"kind\": \"kl\", \"text\": \"t.txt\"}\n"),
        ],
    );
    let path = |n: &str| d.join(n).to_str().unwrap().to_string();
    for (task, want) in [
        (path("badline.jsonl"), "line 3: not valid JSON"),
        (path("metric.jsonl"), "unknown metric `bleu`"),
        (path("kl.jsonl"), "--kl-base"),
        ("no-such-task".to_string(), "no task `no-such-task`"),
    ] {
        let (ok, _, err) = lamina(&["eval", "-m", "/nonexistent.gguf", "--tasks", &task]);
        assert!(!ok && err.contains(want), "{task}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (ok, _, err) = lamina(&["eval", "-m", "/nonexistent.gguf"]);
    assert!(!ok && err.contains("--tasks") && err.contains("mc-arith"), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn runs_a_tiny_suite_and_compares_reports() {
    let Some(model) = lamina_testkit::smollm2() else { return };
    let model = model.to_str().unwrap().to_string();
    let d = task_dir(
        "run",
        &[
            (
                "mc.jsonl",
                "{\"lamina_task\": 1, \"name\": \"tiny-mc\", \"kind\": \"multiple_choice\"}\n\
                 {\"context\": \"The capital of France is\", \"choices\": [\"Paris\", \"a banana\"], \"answer\": 0}\n\
                 {\"context\": \"Two plus two is\", \"choices\": [\"four\", \"purple\"], \"answer\": 0}\n",
            ),
            (
                "gen.jsonl",
                "{\"lamina_task\": 1, \"name\": \"tiny-gen\", \"kind\": \"generation\", \"format\": \"chat\", \"max_tokens\": 12, \"stop\": [\"\\n\"]}\n\
                 {\"prompt\": \"What is the capital of France? Answer with one word.\", \"answers\": [\"Paris\", \"Paris.\"]}\n",
            ),
            ("suite.jsonl", "{\"lamina_task\": 1, \"kind\": \"group\", \"tasks\": [\"mc\", \"gen\"]}\n"),
        ],
    );
    let out = d.join("reports");
    let (suite, out_s) = (d.join("suite.jsonl"), out.to_str().unwrap().to_string());
    let run = |label: &str, extra: &[&str]| {
        let mut args = vec!["eval", "-m", &model, "--tasks", suite.to_str().unwrap(), "-o", &out_s, "--label", label];
        args.extend_from_slice(extra);
        let (ok, stdout, err) = lamina(&args);
        assert!(ok, "{err}");
        stdout
    };
    let v: serde_json::Value = serde_json::from_str(&run("a", &["--json", "--samples"])).unwrap();
    assert_eq!(v["lamina_eval"], 1);
    assert_eq!(v["tasks"][0]["task"], "tiny-mc");
    assert_eq!(v["tasks"][0]["n"], 2);
    assert_eq!(v["tasks"][0]["metrics"][0]["metric"], "acc");
    assert_eq!(v["tasks"][0]["samples"][0]["loglik"].as_array().unwrap().len(), 2);
    let gen = &v["tasks"][1];
    assert_eq!(gen["metrics"].as_array().unwrap().len(), 7, "every generation metric by default: {gen}");
    assert!(!gen["samples"][0]["output"].as_str().unwrap().contains('\n'), "cut at the stop string");
    let table = run("b", &["--limit", "1", "--seed", "3"]);
    assert!(table.contains("tiny-mc") && table.contains("acc_norm") && table.contains("--limit: 1 of 2"), "{table}");
    for f in ["a.json", "a.html", "b.json", "b.html"] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let html = std::fs::read_to_string(out.join("a.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("tiny-gen"));

    let (a, b, page) = (out.join("a.json"), out.join("b.json"), out.join("cmp.html"));
    let (ok, table, err) =
        lamina(&["eval", "compare", a.to_str().unwrap(), b.to_str().unwrap(), "-o", page.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(table.contains("a") && table.contains("▲ better"), "{table}");
    assert!(std::fs::read_to_string(&page).unwrap().contains("<svg"));
    std::fs::write(d.join("other.json"), "{\"tasks\": []}").unwrap();
    let (ok, _, err) = lamina(&["eval", "compare", a.to_str().unwrap(), d.join("other.json").to_str().unwrap()]);
    assert!(!ok && err.contains("not a `lamina eval` report"), "{err}");
    let (ok, _, err) = lamina(&["eval", "compare", a.to_str().unwrap(), d.join("mc.jsonl").to_str().unwrap()]);
    assert!(!ok && err.contains("not JSON"), "{err}");
    std::fs::remove_dir_all(d).unwrap();
}
