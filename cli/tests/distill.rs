//! `lamina distill` on tiny LLaMAs: a student made of one of the teacher's two blocks is
//! trained from the cached teacher and written as a GGUF that the other commands run;
//! `--resume` continues the run and reuses the cache; a student of another tokenizer, a
//! block the teacher lacks, a damaged cache and impossible weights are clear errors.

mod support;

use support::{lamina, s, scratch, tiny_in, Tiny};

const LINES: [&str; 6] = [
    r#"{"text": "the cat sat on the mat"}"#,
    r#"{"prompt": "2+2?", "completion": "4"}"#,
    r#"{"text": "a bird in the hand is worth two in the bush"}"#,
    r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}"#,
    r#"{"text": "rain in spain falls on the plain"}"#,
    r#"{"text": "dates: 2020-03-07 and 1999-05-01"}"#,
];

fn teacher(dir: &std::path::Path) -> String {
    tiny_in(dir, "teacher.gguf", &Tiny { dim: 16, ffn: 32, layers: 2, ..Tiny::default() })
}

#[test]
fn distill_trains_a_student_from_the_teachers_blocks_and_resumes() {
    let dir = scratch("distill-run");
    let t = teacher(&dir);
    let data = dir.join("data.jsonl");
    std::fs::write(&data, LINES.join("\n")).unwrap();
    let out = dir.join("run");
    let run = |extra: &[&str]| {
        let mut a = vec!["distill", "--teacher", &t, "--student-layers", "1", "--data", s(&data), "--out", s(&out)];
        a.extend_from_slice(&["--batch", "2", "--top-k", "4", "--shard-examples", "2", "--eval-every", "1"]);
        a.extend_from_slice(&["--val-fraction", "0.2", "--lr", "1e-2", "--warmup", "0", "--ce-weight", "0.5"]);
        a.extend_from_slice(extra);
        lamina(&a)
    };
    let (ok, stdout, err) = run(&["--steps", "2"]);
    assert!(ok, "{err}");
    assert!(err.contains("student: blocks 1 of the teacher's 2") && err.contains("shard 3/3"), "{err}");
    assert!(err.contains("outside the top k"), "{err}");
    assert!(stdout.contains("trained 2 steps") && stdout.contains("student (model.gguf)"), "{stdout}");
    assert!(out.join("teacher-cache/manifest.json").exists());
    let final_model = out.join("final/model.gguf");
    let (ok, info, err) = lamina(&["info", s(&final_model)]);
    assert!(ok && info.contains("block count             1"), "{info}{err}");
    let (ok, _, err) = lamina(&["generate", "-m", s(&final_model), "--greedy", "-n", "3", "the"]);
    assert!(ok, "{err}");

    let (ok, stdout, err) = run(&["--steps", "3", "--resume"]);
    assert!(ok, "{err}");
    assert!(stdout.contains("trained 3 steps (resumed at 2)"), "{stdout}");
    assert!(err.contains("3 of 3 shards were already complete"), "the cache is reused: {err}");

    // A damaged shard is named, with no panic.
    let shard = out.join("teacher-cache/shard-00001.bin");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = run(&["--steps", "4", "--resume", "--cache-only"]);
    assert!(ok && err.contains("truncated") && err.contains("computing it again"), "{err}");
    assert_eq!(std::fs::read(&shard).unwrap(), bytes, "the shard is recomputed as it was");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_students_and_settings_are_clear_errors() {
    let dir = scratch("distill-bad");
    let t = teacher(&dir);
    let data = dir.join("data.jsonl");
    std::fs::write(&data, LINES.join("\n")).unwrap();
    let out = dir.join("run");
    let base = ["distill", "--teacher", &t, "--data", s(&data), "--out", s(&out), "--steps", "1"];
    let fails = |extra: &[&str], needle: &str| {
        let (ok, _, err) = lamina(&[base.as_slice(), extra].concat());
        assert!(!ok && err.contains(needle) && !err.contains("panicked"), "{extra:?}: {err}");
    };
    fails(&["--student-layers", "0,2"], "block 2 does not exist");
    let other = tiny_in(&dir, "other.gguf", &Tiny { bos: 257, ..Tiny::default() });
    fails(&["--student", &other], "tokenizers differ");
    fails(&["--student-layers", "0", "--kd-weight", "0", "--ce-weight", "0"], "not both 0");
    fails(&["--student-layers", "0", "--temperature", "0"], "--temperature");
    fails(&["--student-layers", "0", "--top-k", "0"], "k 0");
    fails(&[], "--student");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn distill_takes_a_narrower_student_file_of_the_same_tokenizer() {
    let dir = scratch("distill-file");
    let t = teacher(&dir);
    let student = tiny_in(&dir, "narrow.gguf", &Tiny { dim: 8, ffn: 16, layers: 1, ..Tiny::default() });
    let data = dir.join("data.jsonl");
    std::fs::write(&data, LINES.join("\n")).unwrap();
    let out = dir.join("run");
    let args = ["distill", "--teacher", &t, "--student", &student, "--data", s(&data), "--out", s(&out)];
    let (ok, stdout, err) = lamina(&[args.as_slice(), &["--steps", "2", "--batch", "3", "--top-k", "3"]].concat());
    assert!(ok && stdout.contains("trained 2 steps"), "{stdout}{err}");
    // The run directory holds only finished files: no temporary name left behind.
    let left: Vec<_> = std::fs::read_dir(out.join("final")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| !n.to_string_lossy().starts_with('.')), "{left:?}");
    let (ok, info, err) = lamina(&["info", s(&out.join("final/model.gguf"))]);
    assert!(
        ok && info.contains("block count             1") && info.contains("embedding length        8"),
        "{info}{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
