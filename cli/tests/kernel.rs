//! `lamina kernel check` on the worked examples of `examples/kernels/` (lavapipe in CI):
//! the naive and tiled kernels pass, the one with a subtle bug fails naming the failing
//! case and the first differing element, and a file that breaks the binding contract is
//! refused before anything runs; `bench` times against the built-in kernel; `tune` never
//! picks a candidate that fails verification and caches its winner; `--swap` runs a whole
//! model with a user's kernel; `bench --roofline` draws what it measured.

use std::path::{Path, PathBuf};
use std::process::Command;

fn example(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kernels").join(name);
    p.to_str().unwrap().to_string()
}

/// `lamina kernel ARGS` -> (success, stdout, stderr), or `None` (after saying why) where
/// there is no GPU adapter; under LAMINA_REQUIRE_GPU=1 that is a failure instead.
fn kernel(args: &[&str]) -> Option<(bool, String, String)> {
    kernel_with_cache(args, &cache_dir("untuned"))
}

/// `kernel`, with the tuning cache in `cache` (never the user's).
fn kernel_with_cache(args: &[&str], cache: &Path) -> Option<(bool, String, String)> {
    let gpu = lamina_testkit::gpu()?;
    let lamina_tensor::Device::Gpu(ordinal) = gpu else { unreachable!("gpu() returns a GPU") };
    let out = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .env("LAMINA_CACHE_DIR", cache)
        .arg("kernel")
        .args(args)
        .args(["--gpu", &ordinal.to_string()])
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    let (stdout, stderr) = (text(out.stdout), text(out.stderr));
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    Some((out.status.success(), stdout, stderr))
}

/// A tuning cache directory of this test process's own.
fn cache_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lamina-kernel-cache-{}-{name}", std::process::id()))
}

fn tmp(name: &str, text: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("lamina-kernel-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn the_naive_kernel_passes_on_f32() {
    let Some((ok, out, err)) = kernel(&["check", &example("naive.wgsl"), "--op", "matmul", "--cases", "16"]) else {
        return;
    };
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("verdict: PASS") && out.contains("16 property cases passed"), "{out}");
    assert!(out.contains("f32-only") && !out.contains(" f16 "), "f16/bf16 are skipped and said so:\n{out}");
    // Every conformance row, both layouts, with its statistics and tolerance.
    assert!(
        out.contains("matmul [65,33]ᵀ [33,17]") && out.contains("strided") && out.contains("3.6e-12, 1.9e-6"),
        "{out}"
    );
}

#[test]
fn the_tiled_kernel_passes_in_every_float_dtype() {
    let Some((ok, out, err)) = kernel(&["check", &example("tiled.wgsl"), "--op", "matmul", "--cases", "16"]) else {
        return;
    };
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("verdict: PASS") && out.contains("tile 32x32"), "{out}");
    assert!(out.contains(" bf16 ") && out.contains(" f16 "), "{out}");
    // A tuned variant (8x8 invocations: 16x16 tiles) passes too.
    let (ok, out, err) =
        kernel(&["check", &example("tiled.wgsl"), "--op", "matmul", "--override", "WG=8", "--cases", "8"]).unwrap();
    assert!(ok && out.contains("tile 16x16"), "{out}\n{err}");
}

#[test]
fn the_buggy_kernel_fails_showing_where() {
    let Some((ok, out, err)) = kernel(&["check", &example("tiled_bug.wgsl"), "--op", "matmul", "--cases", "16"]) else {
        return;
    };
    assert!(!ok, "the bug went unnoticed:\n{out}");
    assert!(out.contains("verdict: FAIL") && err.contains("fails `kernel check`"), "{out}\n{err}");
    // K = 64 is whole tiles: that row passes; K = 33 is not.
    assert!(out.lines().any(|l| l.starts_with("pass") && l.contains("[4,64] [64,40]")), "{out}");
    assert!(out.contains("FAIL matmul [65,33] [33,17] f32 contig"), "{out}");
    assert!(out.contains("first differing element: C[0, 0]"), "{out}");
    // The property failure is shrunk: a small product with K under one tile.
    let shrunk = out.split("smallest failing case").nth(1).unwrap_or_else(|| panic!("no shrunk case:\n{out}"));
    assert!(shrunk.contains("first differing element"), "{out}");
}

#[test]
fn a_contract_mismatch_is_refused_before_anything_runs() {
    let text = std::fs::read_to_string(example("naive.wgsl")).unwrap();
    let bad = tmp(
        "rebound.wgsl",
        &text.replace("@binding(3) var<storage, read_write> c", "@binding(5) var<storage, read_write> c"),
    );
    let Some((ok, out, err)) = kernel(&["check", bad.to_str().unwrap(), "--op", "matmul"]) else { return };
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("binding contract")
            && err.contains("binding 3 (`c`")
            && err.contains("binding 5 (`c`) is not in the contract")
            && err.contains("docs/kernels/matmul.md"),
        "{err}"
    );
    let (ok, _, err) = kernel(&["check", &example("naive.wgsl"), "--op", "matmul", "--entry", "nope"]).unwrap();
    assert!(!ok && err.contains("no entry point `nope`") && err.contains("main"), "{err}");
    let (ok, _, err) = kernel(&["check", "/no/such/kernel.wgsl", "--op", "matmul"]).unwrap();
    assert!(!ok && err.contains("cannot read the kernel file"), "{err}");
    let _ = std::fs::remove_file(bad);
}

#[test]
fn bench_times_a_kernel_against_the_built_in_one() {
    let args = ["bench", &example("tiled.wgsl"), "--op", "matmul", "--sizes", "32,8x33x16", "--repeat", "2", "--json"];
    let Some((ok, out, err)) = kernel(&args) else { return };
    assert!(ok, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert!(["gpu-timestamps", "wall-around-sync"].contains(&v["clock"].as_str().unwrap()), "{v}");
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v}");
    assert_eq!((rows[1]["m"].as_u64(), rows[1]["k"].as_u64(), rows[1]["n"].as_u64()), (Some(8), Some(33), Some(16)));
    for r in rows {
        assert_eq!(r["agrees"], true, "{r}");
        for key in ["builtin_s", "user_s", "builtin_gflops", "user_gflops", "ratio"] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{key}: {r}");
        }
    }
    // A wrong kernel is timed but flagged (K = 33 is not whole tiles of 16).
    let args = ["bench", &example("tiled_bug.wgsl"), "--op", "matmul", "--sizes", "8x33x16", "--repeat", "1"];
    let (ok, out, err) = kernel(&args).unwrap();
    assert!(ok && out.contains("DIFFERS") && out.contains("run `lamina kernel check`"), "{out}\n{err}");
}

#[test]
fn tune_verifies_before_timing_and_caches_the_winner() {
    let cache = cache_dir("tune");
    let tiled = example("tiled.wgsl");
    let args = ["tune", &tiled, "--op", "matmul", "--search", "WG=4,8", "--size", "32", "--repeat", "1"];
    let Some((ok, out, err)) = kernel_with_cache(&args, &cache) else { return };
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("WG=4") && out.contains("WG=8") && out.contains("winner: WG="), "{out}");
    let lines = std::fs::read_to_string(cache.join("tuning.tsv")).unwrap();
    assert_eq!(lines.lines().filter(|l| l.contains("\tmatmul\t")).count(), 1, "{lines}");
    // check uses the cached values when given no --override.
    let (ok, out, err) = kernel_with_cache(&["check", &tiled, "--op", "matmul", "--cases", "2"], &cache).unwrap();
    assert!(ok && err.contains("using the tuned overrides"), "{out}\n{err}");
    // Every candidate of the buggy kernel fails verification: none is chosen or cached.
    let args = ["tune", &example("tiled_bug.wgsl"), "--op", "matmul", "--search", "WG=4,8", "--size", "32"];
    let (ok, out, err) = kernel_with_cache(&args, &cache).unwrap();
    assert!(!ok && out.matches("rejected: fails").count() == 2 && err.contains("no candidate passed"), "{out}\n{err}");
    let _ = std::fs::remove_dir_all(cache);
}

/// A tiny LLaMA whose products have K = 24 and 40: not multiples of tiled_bug.wgsl's BK
/// (16), so its bug shows (the committed fixture's 32 and 64 would hide it).
fn odd_llama() -> PathBuf {
    use lamina_testkit::tiny_llama::{tiny_llama, Tiny};
    let path = std::env::temp_dir().join(format!("lamina-kernel-swap-{}.gguf", std::process::id()));
    tiny_llama(&path, &Tiny { dim: 24, ffn: 40, layers: 2, ..Tiny::default() });
    path
}

/// `lamina perplexity` of `model` on the GPU with `--swap KERNEL`, from its JSON.
fn perplexity_swapped(model: &Path, gpu: lamina_tensor::Device, swap: Option<&str>) -> f64 {
    let device = gpu.to_string();
    let mut args = vec!["perplexity", "-m", model.to_str().unwrap(), "--device", &device];
    args.extend(["--chunk", "32", "--chunks", "2", "--json"]);
    args.extend(swap.iter().flat_map(|s| ["--swap", s]));
    let out = Command::new(env!("CARGO_BIN_EXE_lamina"))
        .env("LAMINA_CACHE_DIR", cache_dir("untuned"))
        .args(&args)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert_eq!(swap.is_some(), stderr.contains("--swap: every matmul on"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    v["perplexity"].as_f64().unwrap_or_else(|| panic!("no perplexity: {v}"))
}

/// `--swap`: the tiled example in place of the engine's matmul gives a whole model the
/// same perplexity on the GPU; the buggy one changes it (so the swap is really in effect);
/// on the CPU, where there is no WGSL matmul to replace, `perplexity` and `finetune` refuse
/// it before loading anything.
#[test]
fn a_swapped_kernel_runs_a_whole_model() {
    let model = odd_llama();
    let refused = |command: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lamina"))
            .args(command)
            .args(["-m", model.to_str().unwrap(), "--swap", &example("tiled.wgsl")])
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!out.status.success() && err.contains("--device gpu") && !err.contains("panicked"), "{err}");
    };
    refused(&["perplexity"]);
    refused(&["finetune", "--data", "no-such-data.jsonl", "-o", "no-such-run"]);
    if let Some(gpu) = lamina_testkit::gpu() {
        let builtin = perplexity_swapped(&model, gpu, None);
        let tiled = perplexity_swapped(&model, gpu, Some(&example("tiled.wgsl")));
        assert!((tiled - builtin).abs() <= 1e-4 * builtin, "built-in {builtin}, tiled.wgsl {tiled}");
        let buggy = perplexity_swapped(&model, gpu, Some(&example("tiled_bug.wgsl")));
        assert!((buggy - builtin).abs() > 1e-2 * builtin, "the buggy kernel made no difference: {buggy} vs {builtin}");
    }
    let _ = std::fs::remove_file(model);
}

/// `lamina bench --roofline`: the CPU and every GPU adapter, each case a point whose
/// intensity is its flops over its compulsory bytes; the SVG draws exactly the JSON's points.
#[test]
fn bench_draws_every_device_on_its_roofline() {
    let svg = std::env::temp_dir().join(format!("lamina-roofline-{}.svg", std::process::id()));
    let args = ["bench", "--ops", "matmul,add", "--sizes", "32", "--repeat", "1", "--json"];
    let out = Command::new(env!("CARGO_BIN_EXE_lamina")).args(args).arg("--roofline").arg(&svg).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success() && !stderr.contains("panicked"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let devices = v["devices"].as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
    let gpus = devices.iter().filter(|d| d["device"].as_str().unwrap().starts_with("gpu")).count();
    assert_eq!(devices.len(), 1 + gpus, "{v}");
    if lamina_testkit::gpu().is_some() {
        assert!(gpus >= 1, "no GPU panel: {v}");
    }
    let text = std::fs::read_to_string(&svg).unwrap();
    let mut points = 0;
    for d in &devices {
        let roof = &d["roofline"];
        let pts = roof["points"].as_array().unwrap();
        assert_eq!(pts.len(), 2, "{roof}");
        // (32x32)@(32x32): 2 * 32^3 flops over 3 * 32^2 f32 read or written.
        assert!((pts[0]["intensity"].as_f64().unwrap() - 16.0 / 3.0).abs() < 1e-9, "{roof}");
        assert!(pts[1]["intensity"].as_f64().unwrap() < 0.1, "add: 1 flop per 12 bytes: {roof}");
        for p in pts {
            assert!(p["gflops"].as_f64().unwrap() > 0.0 && text.contains(p["label"].as_str().unwrap()), "{p}");
        }
        points += pts.len();
        let ceil = &roof["ceilings"];
        let cpu = d["device"] == "cpu";
        assert!(ceil["gbs"].as_f64().unwrap() > 0.0, "{ceil}");
        assert!(ceil["bandwidth_source"].as_str().unwrap().starts_with("measured"), "{ceil}");
        assert_eq!(ceil["gflops"].is_null(), !cpu, "the CPU's compute roof is stated, a GPU's unknown: {ceil}");
        for source in ["compute_source", "bandwidth_source"] {
            assert!(text.contains(ceil[source].as_str().unwrap()), "the panel says where its roofs come from: {ceil}");
        }
        if cpu {
            let model = roof["device"].as_str().unwrap();
            assert!(model.starts_with("cpu (") && text.contains(model), "the CPU's model names its panel: {model}");
        }
    }
    let markers = text.lines().filter(|l| l.starts_with("<circle") && l.contains("fill-opacity")).count();
    assert_eq!(markers, points, "one marker per point");
    let _ = std::fs::remove_file(svg);
}
