//! `mpirun -np 2 lamina finetune` (the `mpi` feature) on the tiny LLaMA against one
//! process with the same global batch: LoRA, full fine-tuning, IA³, prompt tuning,
//! P-tuning and prefix tuning give the same losses, validation losses, gradient norms and
//! weights (within [`TOL`]: the two ranks' halves are summed in another order than one
//! process sums the whole); a run resumes on another number of ranks (2 -> 1 and 1 -> 2)
//! exactly where the uninterrupted run went; only rank 0 prints and writes; a killed or a
//! stopped rank ends the job with a clear error within seconds, and the last checkpoint
//! resumes. `mpirun -np 2 lamina distill` builds the teacher cache of one process (each
//! rank its shards) and trains the student as one process does.
//!
//! Skips when `mpirun` is missing (`LAMINA_REQUIRE_MPI=1`: fails).

mod support;

use lamina_model::safetensors::SafeTensors;
use lamina_tensor::{skip_or_fail, DType};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Largest difference allowed between a 2-rank and a 1-process run, in losses and
/// weights: f32 sums in another order differ by a few ulps per step (measured: at most
/// about 1e-6 here), which AdamW's division by the second moment can scale up.
const TOL: f32 = 1e-4;

fn mpirun_found() -> bool {
    if Command::new("mpirun").arg("--version").output().is_ok() {
        return true;
    }
    skip_or_fail("LAMINA_REQUIRE_MPI", "`mpirun` was not found (apt-get install openmpi-bin)");
    false
}

/// `mpirun -np n lamina args`, with what Open MPI needs on a 2-core machine and as root.
fn mpirun(n: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-np", &n.to_string(), "--oversubscribe", "--bind-to", "none"])
        .arg(env!("CARGO_BIN_EXE_lamina"))
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c
}

/// `lamina args` on `ranks` processes (1: without mpirun): (success, stdout, stderr).
fn run_on(ranks: usize, args: &[&str]) -> (bool, String, String) {
    let out = if ranks == 1 { support::lamina_bin().args(args).output() } else { mpirun(ranks, args).output() };
    support::text(out.unwrap())
}

/// Sequences of varied length, some with unscored prompts, so batches are padded and
/// the ranks' halves hold different numbers of scored tokens.
fn write_data(dir: &Path) -> String {
    let lines: Vec<String> = (0..16)
        .map(|i| match i % 3 {
            0 => format!(r#"{{"text": "item {i}: {}"}}"#, "abc ".repeat(1 + i % 5)),
            1 => format!(r#"{{"prompt": "count to {i}", "completion": "{}"}}"#, "1 2 3 ".repeat(1 + i % 4)),
            _ => format!(r#"{{"text": "{} {i}"}}"#, "the quick fox".repeat(1 + i % 2)),
        })
        .collect();
    let p = dir.join("data.jsonl");
    std::fs::write(&p, lines.join("\n")).unwrap();
    support::s(&p).to_string()
}

/// `finetune` of `model` on `data` into `out`: 3 steps of 2 micro-batches of 3 sequences
/// (the ranks take 1 and 2), no dropout, validation and a checkpoint every step.
fn finetune_args<'a>(model: &'a str, data: &'a str, out: &'a Path, method: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["finetune", "-m", model, "--data", data, "--out", support::s(out), "--method", method];
    a.extend_from_slice(&["--steps", "3", "--batch", "3", "--accum", "2", "--lora-dropout", "0", "--rank", "2"]);
    a.extend_from_slice(&["--lr", "1e-2", "--warmup", "1", "--val-fraction", "0.25", "--eval-every", "1"]);
    a.extend_from_slice(&["--save-every", "1", "--keep", "3"]);
    a.extend_from_slice(extra);
    a
}

/// `args` with another `--steps`.
fn with_steps<'a>(mut args: Vec<&'a str>, steps: &'a str) -> Vec<&'a str> {
    let at = args.iter().position(|a| *a == "--steps").unwrap();
    args[at + 1] = steps;
    args
}

/// Each metrics line's numbers: (step, key) -> value.
fn metrics(run: &Path) -> Vec<(u64, String, f64)> {
    let text = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let step = v["step"].as_u64().unwrap();
        for key in ["loss", "grad_norm", "val_loss", "lr"] {
            if let Some(x) = v.get(key).and_then(Value::as_f64) {
                out.push((step, key.to_string(), x));
            }
        }
    }
    out
}

fn assert_same_metrics(a: &Path, b: &Path) {
    let (ma, mb) = (metrics(a), metrics(b));
    assert_eq!(ma.iter().map(|m| (m.0, &m.1)).collect::<Vec<_>>(), mb.iter().map(|m| (m.0, &m.1)).collect::<Vec<_>>());
    for (x, y) in ma.iter().zip(&mb) {
        assert!((x.2 - y.2).abs() <= TOL as f64 * x.2.abs().max(1.0), "step {} {}: {} vs {}", x.0, x.1, x.2, y.2);
    }
}

/// The largest difference between two checkpoints' trainable tensors (same names).
fn weight_diff(a: &Path, b: &Path) -> f32 {
    let (a, b) = (
        SafeTensors::open(a.join("params.safetensors")).unwrap(),
        SafeTensors::open(b.join("params.safetensors")).unwrap(),
    );
    assert_eq!(a.names(), b.names());
    let mut worst = 0f32;
    for name in a.names() {
        let x = a.load(name, DType::F32).unwrap().to_vec::<f32>().unwrap();
        let y = b.load(name, DType::F32).unwrap().to_vec::<f32>().unwrap();
        for (p, q) in x.iter().zip(&y) {
            worst = worst.max((p - q).abs());
        }
    }
    worst
}

/// Copies `from`'s checkpoint-1 (and nothing newer) into a fresh run directory `to`.
fn fork_at_step_1(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to.join("checkpoint-1")).unwrap();
    for f in std::fs::read_dir(from.join("checkpoint-1")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join("checkpoint-1").join(f.file_name())).unwrap();
    }
    let log = std::fs::read_to_string(from.join("metrics.jsonl")).unwrap();
    let step_1: Vec<&str> = log.lines().take(2).collect(); // its loss and validation lines
    std::fs::write(to.join("metrics.jsonl"), step_1.join("\n") + "\n").unwrap();
}

#[test]
fn two_ranks_train_as_one_process_and_resume_on_either() {
    if !mpirun_found() {
        return;
    }
    let dir = support::scratch("ft-mpi");
    let m = support::tiny_in(&dir, "tiny.gguf", &support::Tiny { dim: 16, ffn: 32, layers: 2, ..Default::default() });
    let data = write_data(&dir);
    for method in ["lora", "full", "ia3", "prompt", "p-tuning", "prefix"] {
        let (one, two) = (dir.join(format!("{method}-1")), dir.join(format!("{method}-2")));
        let (ok, out1, err) = run_on(1, &finetune_args(&m, &data, &one, method, &[]));
        assert!(ok, "{err}");
        let started = Instant::now();
        let (ok, out2, err) = run_on(2, &finetune_args(&m, &data, &two, method, &[]));
        assert!(ok, "{out2}{err}");
        eprintln!("{method}: mpirun -np 2 took {:.1} s", started.elapsed().as_secs_f64());
        // Rank 0 alone prints the report and says how the batch is split.
        assert_eq!(out2.matches("trained 3 steps").count(), 1, "{out2}");
        assert!(err.contains("split between 2 processes (1 or 2 sequences each)"), "{err}");
        assert!(out1.contains("trained 3 steps") && !out1.contains("processes"), "{out1}");
        assert_same_metrics(&one, &two);
        let diff = weight_diff(&one.join("checkpoint-3"), &two.join("checkpoint-3"));
        eprintln!("{method}: 1 process vs 2 ranks: largest weight difference {diff:e}");
        assert!(diff <= TOL, "{method}: weights differ by {diff}");
        let moved = weight_diff(&one.join("checkpoint-1"), &one.join("checkpoint-3"));
        assert!(moved > 10.0 * TOL, "{method}: steps 2 and 3 moved the weights by only {moved}: nothing compared");
        assert!(two.join("final").is_dir() && two.join("best").is_dir());

        if !matches!(method, "lora" | "full") {
            continue; // the other adapters checkpoint and resume through the same code
        }
        // A run checkpointed at step 1 on 2 ranks resumes on 1, and the other way round.
        for (from, ranks, tag) in [(&two, 1, "2to1"), (&one, 2, "1to2")] {
            let fork = dir.join(format!("{method}-{tag}"));
            fork_at_step_1(from, &fork);
            let (ok, out, err) = run_on(ranks, &finetune_args(&m, &data, &fork, method, &["--resume"]));
            assert!(ok && out.contains("resumed at 1"), "{tag}: {out}{err}");
            assert_same_metrics(&one, &fork);
            let diff = weight_diff(&one.join("checkpoint-3"), &fork.join("checkpoint-3"));
            eprintln!("{method} resumed {tag}: largest weight difference {diff:e}");
            assert!(diff <= TOL, "{method} {tag}: weights differ by {diff}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_ranks_distill_as_one_process() {
    if !mpirun_found() {
        return;
    }
    let dir = support::scratch("kd-mpi");
    let t =
        support::tiny_in(&dir, "teacher.gguf", &support::Tiny { dim: 16, ffn: 32, layers: 2, ..Default::default() });
    let data = write_data(&dir);
    let args = |out: &Path| -> Vec<String> {
        let a = ["distill", "--teacher", &t, "--student-layers", "1", "--data", &data, "--out", support::s(out)];
        let b = ["--steps", "3", "--batch", "3", "--accum", "2", "--lr", "1e-2", "--warmup", "1", "--top-k", "4"];
        let c = ["--shard-examples", "4", "--ce-weight", "0.5", "--val-fraction", "0.25", "--eval-every", "1"];
        [&a[..], &b, &c, &["--save-every", "1", "--keep", "3"]].concat().into_iter().map(String::from).collect()
    };
    let (one, two) = (dir.join("kd-1"), dir.join("kd-2"));
    let (ok, _, err) = run_on(1, &args(&one).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    let (ok, out2, err) = run_on(2, &args(&two).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{out2}{err}");
    assert_eq!(out2.matches("trained 3 steps").count(), 1, "rank 0 alone reports: {out2}");
    // 12 training examples in shards of 4: rank 0 computes shards 0 and 2, rank 1 shard 1.
    assert!(err.contains("teacher cache (rank 0's part): shard 2/2"), "{err}");
    assert_eq!(err.matches("student: blocks 1").count(), 1, "{err}");
    let cache = |run: &Path| {
        let mut files: Vec<_> =
            std::fs::read_dir(run.join("teacher-cache")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.iter().map(|f| (f.file_name().unwrap().to_owned(), std::fs::read(f).unwrap())).collect::<Vec<_>>()
    };
    assert_eq!(cache(&one), cache(&two), "the ranks' cache is one process's, byte for byte");
    assert_same_metrics(&one, &two);
    let diff = weight_diff(&one.join("checkpoint-3"), &two.join("checkpoint-3"));
    eprintln!("distill: 1 process vs 2 ranks: largest weight difference {diff:e}");
    assert!(diff <= TOL, "distill: weights differ by {diff}");
    let moved = weight_diff(&one.join("checkpoint-1"), &one.join("checkpoint-3"));
    assert!(moved > 10.0 * TOL, "steps 2 and 3 moved the weights by only {moved}: nothing compared");
    assert!(two.join("final/model.gguf").is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The pid of rank `rank` of the job whose processes carry `mark` in their environment.
fn rank_pid(mark: &str, rank: usize) -> Option<u32> {
    let want = [mark.to_string(), format!("OMPI_COMM_WORLD_RANK={rank}")];
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let env = std::fs::read(e.path().join("environ")).ok()?;
        let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
        want.iter().all(|w| vars.contains(&w.as_bytes())).then_some(pid)
    })
}

/// Waits for `child` at most `limit`: its output, or `None` (and it is killed).
fn wait_for(mut child: Child, limit: Duration) -> Option<Output> {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// A long 2-rank run; once it has checkpointed, rank 1 gets `signal`. The job must end
/// within 20 s; returns its stderr (after checking that it failed).
fn signal_rank_1(dir: &Path, m: &str, data: &str, signal: &str) -> String {
    let run = dir.join(format!("run-{signal}"));
    let mark = format!("LAMINA_TEST_JOB={}-{signal}", std::process::id());
    let args = with_steps(finetune_args(m, data, &run, "lora", &[]), "100000");
    let (key, value) = mark.split_once('=').unwrap();
    let child = mpirun(2, &args)
        .env(key, value)
        .env("LAMINA_DIST_TIMEOUT", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !run.join("checkpoint-2").is_dir() {
        assert!(started.elapsed() < Duration::from_secs(30), "the run did not checkpoint within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rank_pid(&mark, 1).expect("rank 1's process");
    let sent = Instant::now();
    Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
    let out =
        wait_for(child, Duration::from_secs(20)).unwrap_or_else(|| panic!("{signal}: the job still ran after 20 s"));
    eprintln!("rank 1 got SIG{signal}: the job ended {:.1} s later", sent.elapsed().as_secs_f64());
    assert!(!out.status.success(), "{signal}: the job must fail");
    let (_, _, err) = support::text(out);
    eprintln!(
        "its stderr ends:\n{}",
        err.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    // The newest checkpoint resumes (on one process) for one more step.
    let newest: u64 = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("checkpoint-")?.parse().ok())
        .max()
        .unwrap();
    let steps = (newest + 1).to_string();
    let (ok, out, err2) = run_on(1, &with_steps(finetune_args(m, data, &run, "lora", &["--resume"]), &steps));
    assert!(ok && out.contains(&format!("resumed at {newest}")), "after SIG{signal}: {out}{err2}");
    err
}

#[test]
fn a_killed_or_stopped_rank_ends_the_job_with_a_clear_error() {
    if !mpirun_found() {
        return;
    }
    let dir = support::scratch("ft-mpi-fault");
    let m = support::tiny_in(&dir, "tiny.gguf", &support::Tiny::default());
    let data = write_data(&dir);
    let err = signal_rank_1(&dir, &m, &data, "KILL");
    assert!(err.contains("rank 1") && err.contains("signal 9"), "mpirun names the killed rank:\n{err}");
    let err = signal_rank_1(&dir, &m, &data, "STOP");
    assert!(
        err.contains("error: rank 0 of 2: all-reduce did not complete within 2.0 s"),
        "rank 0 gives up on the stopped rank:\n{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
