//! The LLM commands end to end through the binary: a greedy chat answer from the real
//! model, stop strings cutting the reference continuation, the chat's memory and /reset,
//! and bad input (empty prompt, bad options, missing files) as a non-zero exit with
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
    lamina_testkit::smollm2().map(|p| p.to_str().unwrap().to_string())
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

/// The float64 reference's greedy continuation of "The capital of France is"
/// (tests/fixtures/smollm2/greedy.json) is " Paris.\n\nThe answer is: 2018-...". A stop
/// string that starts inside the token " answer" cuts the printed text exactly before
/// it: what was printed is the continuation up to the stop string, and nothing of it.
#[test]
fn stop_strings_cut_the_output() {
    let Some(m) = model() else { return };
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lamina_testkit::fixture("smollm2/greedy.json")).unwrap())
            .unwrap();
    let case = fx["cases"].as_array().unwrap().iter().find(|c| c["name"] == "english").unwrap();
    let (prompt, continuation) = (case["prompt"].as_str().unwrap(), case["text"].as_str().unwrap());
    let want = &continuation[..continuation.find("nswer").unwrap()];
    assert_eq!(want, " Paris.\n\nThe a");
    let (ok, out, err) =
        lamina(&["generate", "-m", &m, "--greedy", "--dequantize", "-n", "24", "--stop", "nswer", prompt], "");
    assert!(ok, "{err}");
    assert_eq!(out, format!("{want}\n"));
}

/// The second question can only be answered from the first turn; after `/reset` the
/// same question no longer gets that answer. Greedy, so the three sessions print the same
/// first answer, and what follows it is the answer to "What is my name?".
#[test]
fn chat_remembers_the_conversation_until_reset() {
    let Some(m) = model() else { return };
    let chat = |input: &str| {
        let (ok, out, err) = lamina(&["chat", "-m", &m, "--greedy", "-n", "8"], input);
        assert!(ok, "{err}");
        (out, err)
    };
    let (first, _) = chat("My name is Zoltan.\n/exit\n");
    let (remembered, _) = chat("My name is Zoltan.\nWhat is my name?\n/exit\n");
    let (reset, err) = chat("My name is Zoltan.\n/reset\nWhat is my name?\n/exit\n");
    assert!(err.contains("conversation cleared"), "{err}");
    let second = remembered.strip_prefix(&first).unwrap_or_else(|| panic!("{first:?} then {remembered:?}"));
    let after_reset = reset.strip_prefix(&first).unwrap_or_else(|| panic!("{first:?} then {reset:?}"));
    assert!(second.contains("Zoltan"), "the answer forgot the first turn: {second:?}");
    assert!(!after_reset.contains("Zoltan"), "the name survived /reset: {after_reset:?}");
}

#[test]
fn quantize_writes_a_k_mix() {
    // The tiny GPT-2's rows (32 and 128 wide) are not 256-blocks: every matrix takes
    // llama.cpp's fallback, the tied embedding Q8_0.
    let src = lamina_testkit::repo_root().join("tests/fixtures/gpt2-tiny/gpt2-tiny.gguf");
    let out = std::env::temp_dir().join(format!("lamina-cli-q4km-{}.gguf", std::process::id()));
    let (ok, stdout, err) =
        lamina(&["quantize", src.to_str().unwrap(), out.to_str().unwrap(), "--type", "q4_k_m", "--json"], "");
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["file_type"], 15);
    // Q8_0: the embedding, and attn_qkv / ffn_down of the last layer ("use more bits").
    assert_eq!(report["tensor_types"]["Q8_0"], 3, "{report}");
    let f = lamina_model::gguf::GgufFile::open(&out).unwrap();
    assert_eq!(f.tensor_info("position_embd.weight").unwrap().ty.name(), "F32");
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn bad_input_is_a_clear_error() {
    for (args, stdin, want) in [
        (vec!["generate", "-m", "/nonexistent.gguf", "hi"], "", "nonexistent"),
        (vec!["generate", "-m", "/nonexistent.gguf"], "", "empty"),
        (vec!["generate", "-m", "/nonexistent.gguf", "--top-p", "0", "hi"], "", "top-p"),
        (vec!["quantize", "a.gguf", "b.gguf", "--type", "q3_x"], "", "unknown quantization type `q3_x`"),
        (vec!["quantize", "/nonexistent-dir/", "b.gguf", "--type", "q4_k_m"], "", "nonexistent"),
        (vec!["perplexity", "-m", "/nonexistent.gguf", "--chunk", "2"], "", "--chunk 2"),
        (vec!["perplexity", "-m", "/nonexistent.gguf", "--chunk", "8"], "", "nonexistent"),
    ] {
        let (ok, _, err) = lamina(&args, stdin);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    }
}
