//! `prune_gguf` on small synthetic models: exact zero counts, per-row / per-matrix / global
//! cuts equal to an f64 sort of the magnitudes, 2:4 groups, untouched embeddings / head /
//! norms, requantization that keeps (Q8_0) or loses (Q4_1) the zeros, measured; bad
//! requests as clear errors that leave no file.

mod support;

use lamina_model::gguf::{self, GgufFile, GgufTensor, MetaValue};
use lamina_model::prune::{prune_gguf, OutType, Pattern, PruneConfig, Scope};
use lamina_model::quantize::{quantize_model, Target};
use lamina_model::{CausalLm, Gpt, LogitsFor};
use lamina_tensor::quant::{dequantize, GgmlType};
use lamina_tensor::Device;
use support::TempDir;

/// (name, ne, scale): a LLaMA-like table; the MLP weights are larger, so a global cut
/// takes more from attention than from the MLP.
const TABLE: [(&str, [u64; 2], f32); 7] = [
    ("token_embd.weight", [32, 10], 1.0),
    ("blk.0.attn_norm.weight", [32, 1], 1.0),
    ("blk.0.attn_q.weight", [32, 6], 1.0),
    ("blk.0.ffn_down.weight", [64, 5], 3.0),
    ("blk.1.attn_k.weight", [32, 4], 1.0),
    ("output_norm.weight", [32, 1], 1.0),
    ("output.weight", [32, 10], 1.0),
];

/// Non-zero values with many repeated magnitudes (ties) and both signs.
fn values(n: usize, seed: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let v = ((i * 7919 + seed * 104729) % 61) as f32 - 30.0;
            scale * if v == 0.0 { 0.5 } else { v * 0.01 }
        })
        .collect()
}

fn synthetic() -> GgufFile {
    let data: Vec<Vec<u8>> = TABLE
        .iter()
        .enumerate()
        .map(|(i, (_, ne, s))| values((ne[0] * ne[1]) as usize, i, *s).iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let ne: Vec<Vec<u64>> =
        TABLE.iter().map(|(name, ne, _)| if name.contains("norm") { vec![ne[0]] } else { ne.to_vec() }).collect();
    let tensors: Vec<GgufTensor> = TABLE
        .iter()
        .zip(&data)
        .zip(&ne)
        .map(|(((name, _, _), data), ne)| GgufTensor { name, ty: GgmlType::F32, ne, data })
        .collect();
    let meta = vec![
        ("general.architecture".to_string(), MetaValue::String("llama".into())),
        ("general.file_type".to_string(), MetaValue::U32(0)),
        ("llama.block_count".to_string(), MetaValue::U32(2)),
    ];
    GgufFile::from_bytes(gguf::to_bytes(meta, &tensors).unwrap()).unwrap()
}

fn prunable(name: &str) -> bool {
    name.starts_with("blk.") && !name.contains("norm")
}

fn read(f: &GgufFile, name: &str) -> Vec<f32> {
    let info = f.tensor_info(name).unwrap();
    dequantize(info.ty, f.tensor_bytes(info), info.n_elements() as usize).unwrap()
}

/// The f64 reference: zero the `k` smallest |x| of `v`, the earlier one first on ties.
fn reference(v: &[f32], k: usize) -> Vec<f32> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| (v[a] as f64).abs().total_cmp(&(v[b] as f64).abs()).then(a.cmp(&b)));
    let mut out = v.to_vec();
    order[..k].iter().for_each(|&i| out[i] = 0.0);
    out
}

fn run(cfg: PruneConfig) -> (GgufFile, lamina_model::prune::PruneReport) {
    let dir = TempDir::new("prune");
    let out = dir.path("out.gguf");
    let input = synthetic();
    let report = prune_gguf(&input, &out, &cfg, |done, total| assert!(done <= total)).unwrap();
    assert_eq!(dir.files(), ["out.gguf"], "no temporary file is left behind");
    let f = GgufFile::open(&out).unwrap();
    for (name, _, _) in TABLE.iter().filter(|t| !prunable(t.0)) {
        let (a, b) = (input.tensor_info(name).unwrap(), f.tensor_info(name).unwrap());
        assert_eq!(input.tensor_bytes(a), f.tensor_bytes(b), "{name} is copied untouched");
    }
    assert_eq!(f.get_u64("llama.block_count").unwrap(), 2, "metadata is carried over");
    assert!(f.get_str("lamina.pruning").is_ok());
    (f, report)
}

fn cfg(sparsity: Option<f64>, pattern: Pattern, scope: Option<Scope>) -> PruneConfig {
    PruneConfig::new(sparsity, pattern, scope, OutType::F32).unwrap()
}

#[test]
fn per_row_cut_zeroes_exactly_the_smallest_of_each_row() {
    let (f, r) = run(cfg(Some(0.3), Pattern::Unstructured, None));
    let input = synthetic();
    for (name, ne, _) in TABLE.iter().filter(|t| prunable(t.0)) {
        let (got, orig) = (read(&f, name), read(&input, name));
        let k = (0.3 * ne[0] as f64).round() as usize;
        for (g, o) in got.chunks(ne[0] as usize).zip(orig.chunks(ne[0] as usize)) {
            assert_eq!(g.iter().filter(|v| **v == 0.0).count(), k, "{name}");
            assert_eq!(g, &reference(o, k)[..], "{name}");
        }
    }
    let kinds: Vec<&str> = r.kinds.iter().map(|k| k.kind).collect();
    assert_eq!(kinds, ["attn_q", "attn_k", "ffn_down"]);
    assert_eq!(r.zeros_out(), r.zeros_requested);
    assert_eq!(r.zeros_requested, 6 * 10 + 4 * 10 + 5 * 19);
}

#[test]
fn global_and_per_matrix_cuts_equal_one_sort_over_their_weights() {
    let input = synthetic();
    let names: Vec<&str> = TABLE.iter().filter(|t| prunable(t.0)).map(|t| t.0).collect();
    let all: Vec<f32> = names.iter().flat_map(|n| read(&input, n)).collect();
    let k = (0.5 * all.len() as f64).round() as usize;
    let want = reference(&all, k);
    let (f, r) = run(cfg(Some(0.5), Pattern::Unstructured, Some(Scope::Global)));
    let got: Vec<f32> = names.iter().flat_map(|n| read(&f, n)).collect();
    assert_eq!(got, want);
    assert_eq!((r.zeros_out(), r.zeros_requested), (k as u64, k as u64));
    // The larger MLP weights mostly survive a global cut; a per-row cut takes half of each.
    let sparsity = |kind| r.kinds.iter().find(|k| k.kind == kind).unwrap().sparsity();
    assert!(sparsity("ffn_down") < 0.3 && sparsity("attn_q") > 0.6, "{:?}", r.kinds);

    let (f, _) = run(cfg(Some(0.5), Pattern::Unstructured, Some(Scope::Tensor)));
    for n in &names {
        let orig = read(&input, n);
        assert_eq!(read(&f, n), reference(&orig, (0.5 * orig.len() as f64).round() as usize), "{n}");
    }
}

#[test]
fn two_of_four_keeps_the_two_largest_of_every_group() {
    let (f, r) = run(cfg(None, "2:4".parse().unwrap(), None));
    let input = synthetic();
    for (name, _, _) in TABLE.iter().filter(|t| prunable(t.0)) {
        for (g, o) in read(&f, name).chunks(4).zip(read(&input, name).chunks(4)) {
            assert_eq!(g.iter().filter(|v| **v == 0.0).count(), 2, "{name}");
            assert_eq!(g, &reference(o, 2)[..], "{name}");
        }
    }
    assert_eq!(r.sparsity(), 0.5);
    // 0.5 agrees with 2:4; other sparsities and scopes do not.
    assert!(PruneConfig::new(Some(0.5), Pattern::NOfM { keep: 2, group: 4 }, None, OutType::F16).is_ok());
}

#[test]
fn bad_requests_are_clear_errors() {
    let un = Pattern::Unstructured;
    for s in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        let e = PruneConfig::new(Some(s), un, None, OutType::F16).unwrap_err().to_string();
        assert!(e.contains("--sparsity") && e.contains("0 to 1"), "{s}: {e}");
    }
    let e = PruneConfig::new(None, un, None, OutType::F16).unwrap_err().to_string();
    assert!(e.contains("needs --sparsity"), "{e}");
    let two4 = Pattern::NOfM { keep: 2, group: 4 };
    let e = PruneConfig::new(Some(0.3), two4, None, OutType::F16).unwrap_err().to_string();
    assert!(e.contains("2:4") && e.contains("0.3"), "{e}");
    let e = PruneConfig::new(None, two4, Some(Scope::Global), OutType::F16).unwrap_err().to_string();
    assert!(e.contains("--scope"), "{e}");
    for p in ["4:2", "0:4", "2:2", "x", "2:", "sparse"] {
        assert!(p.parse::<Pattern>().is_err(), "{p}");
    }
    assert_eq!("1:8".parse::<Pattern>().unwrap(), Pattern::NOfM { keep: 1, group: 8 });

    // Rows of 32 and 64 are not whole groups of 3: refused before anything is written.
    let dir = TempDir::new("prune-bad");
    let out = dir.path("out.gguf");
    let c = PruneConfig::new(None, "1:3".parse().unwrap(), None, OutType::F16).unwrap();
    let e = prune_gguf(&synthetic(), &out, &c, |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("groups of 3"), "{e}");
    // A model without linear layers.
    let only_embd = GgufFile::from_bytes(
        gguf::to_bytes(
            vec![],
            &[GgufTensor { name: "token_embd.weight", ty: GgmlType::F32, ne: &[1, 1], data: &[0; 4] }],
        )
        .unwrap(),
    )
    .unwrap();
    let e =
        prune_gguf(&only_embd, &out, &cfg(Some(0.5), Pattern::Unstructured, None), |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("no linear-layer weights"), "{e}");
    assert!(dir.files().is_empty(), "a refused run leaves no file: {:?}", dir.files());
}

/// Quantized input, requantized to its own type: Q8_0 keeps every zero (a zero rounds to
/// the zero code), Q4_1 loses most (its blocks decode as d * q + min). The report counts
/// what the file holds.
#[test]
fn requantized_zeros_are_measured_not_assumed() {
    let dir = TempDir::new("prune-q");
    for (ty, keeps) in [(GgmlType::Q8_0, true), (GgmlType::Q4_1, false)] {
        let q = dir.path(&format!("{ty}.gguf"));
        quantize_model(&synthetic(), &q, &Target::parse(ty.name()).unwrap(), false, |_, _| {}).unwrap();
        let input = GgufFile::open(&q).unwrap();
        let out = dir.path(&format!("{ty}-pruned.gguf"));
        let c = PruneConfig::new(Some(0.5), Pattern::Unstructured, None, OutType::Same).unwrap();
        let r = prune_gguf(&input, &out, &c, |_, _| {}).unwrap();
        let f = GgufFile::open(&out).unwrap();
        let mut zeros = 0;
        for (name, _, _) in TABLE.iter().filter(|t| prunable(t.0)) {
            assert_eq!(f.tensor_info(name).unwrap().ty, ty);
            zeros += read(&f, name).iter().filter(|v| **v == 0.0).count() as u64;
        }
        assert_eq!(r.zeros_out(), zeros, "{ty}: the report counts the file's zeros");
        assert_eq!(r.conversions, [(ty, ty)]);
        if keeps {
            assert!(zeros >= r.zeros_requested, "{ty}: {zeros} < {}", r.zeros_requested);
        } else {
            assert!(zeros < r.zeros_requested / 2, "{ty}: {zeros} of {} survived", r.zeros_requested);
        }
        // The default (F16) keeps them all.
        let c = PruneConfig { out: OutType::F16, ..c };
        let r = prune_gguf(&input, &out, &c, |_, _| {}).unwrap();
        assert!(r.zeros_out() >= r.zeros_requested);
        assert_eq!(GgufFile::open(&out).unwrap().get_u64("general.file_type").unwrap(), 1);
    }
}

#[test]
fn a_pruned_gpt2_still_runs() {
    let input = GgufFile::open(lamina_testkit::repo_root().join("tests/fixtures/gpt2-tiny/gpt2-tiny.gguf")).unwrap();
    let dir = TempDir::new("prune-gpt2");
    let out = dir.path("pruned.gguf");
    let c = PruneConfig::new(None, "2:4".parse().unwrap(), None, OutType::F16).unwrap();
    let r = prune_gguf(&input, &out, &c, |_, _| {}).unwrap();
    let kinds: Vec<&str> = r.kinds.iter().map(|k| k.kind).collect();
    assert_eq!(kinds, ["attn_output", "attn_qkv", "ffn_up", "ffn_down"]);
    assert_eq!(r.sparsity(), 0.5);
    let m = Gpt::from_gguf(&GgufFile::open(&out).unwrap(), Device::Cpu).unwrap();
    let _g = lamina_tensor::NoGradGuard::new();
    let logits = CausalLm::forward(&m, &[1, 2, 3], &mut CausalLm::new_cache(&m, 8).unwrap(), LogitsFor::All).unwrap();
    assert!(logits.to_vec_f32().unwrap().iter().all(|v| v.is_finite()));
}
