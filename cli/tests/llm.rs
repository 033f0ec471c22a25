//! The LLM commands end to end through the binary: a greedy chat answer from the real
//! model, and bad input (empty prompt, bad options, missing files) as a non-zero exit with
//! a clear message, never a panic.

use std::process::{Command, Stdio};

fn lamina(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn model() -> Option<String> {
    lamina_model::fixtures::smollm2_for_test().map(|p| p.to_str().unwrap().to_string())
}

#[test]
fn generate_answers_a_chat_question_greedily() {
    let Some(m) = model() else { return };
    let (ok, out, err) = lamina(
        &["generate", "-m", &m, "--chat", "--system", "Be brief.", "--greedy", "--dequantize", "-n", "16", "--stats"],
        "What is the capital of France?",
    );
    assert!(ok, "{err}");
    assert!(out.contains("Paris"), "answer: {out}");
    assert!(err.contains("tokens/s") && err.contains("peak memory"), "stats: {err}");
}

#[test]
fn stop_strings_cut_the_output() {
    let Some(m) = model() else { return };
    let (ok, out, err) =
        lamina(&["generate", "-m", &m, "--greedy", "-n", "24", "--stop", "Paris", "The capital of France is"], "");
    assert!(ok, "{err}");
    assert!(!out.contains("Paris"), "the stop string was printed: {out}");
}

#[test]
fn chat_remembers_the_conversation() {
    let Some(m) = model() else { return };
    let (ok, out, err) = lamina(
        &["chat", "-m", &m, "--greedy", "--dequantize", "-n", "12"],
        "What is the capital of France?\n/reset\n/exit\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("Paris"), "answer: {out}");
    assert!(err.contains("conversation cleared"), "{err}");
}

#[test]
fn bad_input_is_a_clear_error() {
    for (args, stdin, want) in [
        (vec!["generate", "-m", "/nonexistent.gguf", "hi"], "", "nonexistent"),
        (vec!["generate", "-m", "/nonexistent.gguf"], "", "empty"),
        (vec!["generate", "-m", "/nonexistent.gguf", "--top-p", "0", "hi"], "", "top-p"),
        (vec!["quantize", "a.gguf", "b.gguf", "--type", "q3_x"], "", "unknown --type"),
        (vec!["perplexity", "-m", "/nonexistent.gguf", "--chunk", "2"], "", "nonexistent"),
    ] {
        let (ok, _, err) = lamina(&args, stdin);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}
