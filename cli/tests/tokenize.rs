//! `lamina tokenize` through the binary: its output equals llama.cpp's `llama-tokenize`
//! byte for byte (tests/fixtures/llama-vocab/tokenize/, made by
//! scripts/reference/llama_vocab_reference.py) on llama.cpp's vocabulary-only GGUFs; and
//! bad input is a clear error.

use std::process::Command;

fn lamina(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lamina")).args(args).output().unwrap();
    (out.status.success(), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn output_equals_llama_tokenize() {
    let Some(vocab) = lamina_testkit::llama_vocab() else { return };
    let dir = lamina_testkit::repo_root().join("tests/fixtures/llama-vocab/tokenize");
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 8);
    for case in cases {
        let model = vocab.join(case["vocab"].as_str().unwrap());
        let mut args = vec!["tokenize", "--model", model.to_str().unwrap(), "-p", case["text"].as_str().unwrap()];
        args.extend(case["options"].as_array().unwrap().iter().map(|o| o.as_str().unwrap()));
        let (ok, out, err) = lamina(&args);
        assert!(ok, "{args:?}: {err}");
        let want = std::fs::read(dir.join(case["stdout"].as_str().unwrap())).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want),
            "lamina {args:?} differs from llama-tokenize"
        );
        assert_eq!(out, want, "{args:?}: same text, different bytes");
    }
}

#[test]
fn text_from_argument_file_and_stdin_and_pieces() {
    let Some(vocab) = lamina_testkit::llama_vocab() else { return };
    let model = vocab.join("ggml-vocab-llama-spm.gguf");
    let model = model.to_str().unwrap();
    let (ok, by_arg, err) = lamina(&["tokenize", "-m", model, "--ids", "Hello world"]);
    assert!(ok, "{err}");
    assert_eq!(String::from_utf8(by_arg.clone()).unwrap(), "[1, 15043, 3186]\n");
    let file = std::env::temp_dir().join(format!("lamina-tokenize-{}.txt", std::process::id()));
    std::fs::write(&file, "Hello world").unwrap();
    let (ok, by_file, err) = lamina(&["tokenize", "-m", model, "--ids", "-f", file.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_eq!(by_file, by_arg);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .args(["tokenize", "-m", model, "--ids", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"Hello world").unwrap();
    assert_eq!(child.wait_with_output().unwrap().stdout, by_arg);
    std::fs::remove_file(file).unwrap();
    let (ok, pieces, err) = lamina(&["tokenize", "-m", model, "--pieces", "--no-bos", "it's\\n"]);
    assert!(ok, "{err}");
    assert_eq!(String::from_utf8(pieces).unwrap(), "['▁it', \"'\", 's', '<0x0A>']\n");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("lamina-tokenize-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_gguf = dir.join("x.gguf");
    std::fs::write(&not_gguf, b"GGUF\x03\0\0\0garbage").unwrap();
    for args in [
        vec!["tokenize", "-m", not_gguf.to_str().unwrap(), "hi"],
        vec!["tokenize", "-m", "/no/such/file.gguf", "hi"],
        vec!["tokenize", "-m", dir.to_str().unwrap(), "hi"],
    ] {
        let (ok, _, err) = lamina(&args);
        assert!(!ok && err.starts_with("error: ") && !err.contains("panicked"), "{args:?}: {err}");
    }
    let (ok, _, err) = lamina(&["tokenize", "-m", not_gguf.to_str().unwrap()]);
    assert!(!ok && !err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
