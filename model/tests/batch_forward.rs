//! `CausalLm::forward_batch` (several sequences, each with its own cache, in one pass: what
//! the server's continuous batching runs) against the same sequences run one at a time.
//!
//! Tolerance: on the CPU each row of a batched pass goes through the same per-row kernels
//! as in a single-sequence pass (norms, RoPE, attention per sequence, and the quantized
//! products, whose rows are bit-identical for any row count), so with quantized weights
//! the logits are equal bit for bit. With f32 weights the GEMM sums a row in a different
//! order when M > 1 (packed micro-kernel instead of the matrix-vector path): differences
//! stay below 1e-4 relative to the largest logit (measured: about 1e-6).

use lamina_model::gguf::GgufFile;
use lamina_model::kv_cache::KvCache;
use lamina_model::llama::Activation;
use lamina_model::{CausalLm, Llama, LlamaConfig, LoadOptions, LogitsFor, SeqStep};
use lamina_tensor::{Device, RopeConvention};

fn tiny() -> LlamaConfig {
    LlamaConfig {
        arch: "llama".into(),
        vocab_size: 50,
        dim: 64,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 16,
        ffn_dim: 96,
        norm_eps: 1e-5,
        rope_base: 10000.0,
        rope_convention: RopeConvention::Interleaved,
        context_length: 64,
        ..Default::default()
    }
}

/// The family options that touch attention and the block: Gemma-style (per-head norms,
/// post-norms, GELU, scaled embeddings, soft-capped scores and logits, sliding-window
/// layers with their own RoPE base) and Phi-3-style (fused qkv and gate/up).
fn family_variants() -> Vec<(&'static str, LlamaConfig)> {
    vec![
        ("llama", tiny()),
        (
            "gemma-like",
            LlamaConfig {
                qk_norm: true,
                post_norms: true,
                activation: Activation::GeluTanh,
                embed_scale: true,
                attn_softcap: Some(50.0),
                final_softcap: Some(30.0),
                sliding_window: Some(3),
                swa_layers: Some(vec![true, false]),
                rope_base_swa: Some(1000.0),
                ..tiny()
            },
        ),
        ("phi3-like", LlamaConfig { fused_qkv: true, fused_gate_up: true, qkv_bias: true, ..tiny() }),
    ]
}

/// Three sequences at different positions: one prefilling its whole prompt, one taking a
/// chunk after a cached prefix, one decoding a single token. Returns (batched, one by one)
/// logits for `which`, and checks the caches end up equally long.
fn both_ways(m: &dyn CausalLm, which: LogitsFor) -> (Vec<f32>, Vec<f32>) {
    let prefixes: [&[u32]; 3] = [&[], &[3, 1, 4, 1, 5], &[2, 7, 1, 8, 2, 8, 1, 8]];
    let new: [&[u32]; 3] = [&[9, 2, 6, 5, 3], &[5, 8, 9], &[2]];
    let caches = || -> Vec<KvCache> {
        prefixes
            .iter()
            .map(|p| {
                let mut c = m.new_cache(32).unwrap();
                if !p.is_empty() {
                    m.forward(p, &mut c, LogitsFor::Last).unwrap();
                }
                c
            })
            .collect()
    };
    let _g = lamina_tensor::NoGradGuard::new();
    let mut batched_caches = caches();
    let mut seqs: Vec<SeqStep> =
        batched_caches.iter_mut().zip(new).map(|(cache, tokens)| SeqStep { tokens, cache }).collect();
    let batched = m.forward_batch(&mut seqs, which).unwrap().to_vec_f32().unwrap();
    let mut single = Vec::new();
    for ((mut cache, tokens), b) in caches().into_iter().zip(new).zip(&batched_caches) {
        single.extend(m.forward(tokens, &mut cache, which).unwrap().to_vec_f32().unwrap());
        assert_eq!(cache.len(), b.len());
    }
    (batched, single)
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn batched_float_model_matches_one_sequence_at_a_time() {
    for (family, config) in family_variants() {
        let m = Llama::random(config, false, 0.2, 3, Device::Cpu).unwrap();
        for which in [LogitsFor::Last, LogitsFor::All] {
            let (b, s) = both_ways(&m, which);
            let rows = if which == LogitsFor::Last { 3 } else { 9 };
            assert_eq!(b.len(), rows * 50);
            let d = max_rel_diff(&b, &s);
            eprintln!("{family} {which:?}: batched f32 logits differ from single by {d:e} (relative to the largest)");
            assert!(d < 1e-4, "{family} {which:?}: batched differs by {d} (relative)");
        }
    }
}

#[test]
fn batched_quantized_model_is_bit_identical() {
    let Some(path) = lamina_testkit::smollm2() else { return };
    let f = GgufFile::open(path).unwrap();
    let m = Llama::from_gguf_with(&f, LoadOptions::on(Device::Cpu)).unwrap();
    let (b, s) = both_ways(&m, LogitsFor::Last);
    assert!(b == s, "batched differs from single by {} (relative)", max_rel_diff(&b, &s));
}

#[test]
fn a_refused_batch_advances_no_cache() {
    let m = Llama::random(tiny(), true, 0.2, 3, Device::Cpu).unwrap();
    let (mut a, mut b) = (m.new_cache(8).unwrap(), m.new_cache(4).unwrap());
    let mut seqs = [SeqStep { tokens: &[1, 2, 3], cache: &mut a }, SeqStep { tokens: &[1, 2, 3, 4, 5], cache: &mut b }];
    let err = m.forward_batch(&mut seqs, LogitsFor::Last).unwrap_err().to_string();
    assert!(err.contains("context"), "{err}");
    assert!(a.is_empty() && b.is_empty());
    let mut seqs = [SeqStep { tokens: &[1], cache: &mut a }, SeqStep { tokens: &[50], cache: &mut b }];
    assert!(m.forward_batch(&mut seqs, LogitsFor::Last).unwrap_err().to_string().contains("vocabulary"));
    assert!(a.is_empty() && b.is_empty());
}

#[test]
fn batched_gpu_pass_matches_the_cpu() {
    let Some(ordinal) = lamina_tensor::gpu::test_ordinal() else { return };
    let cpu = Llama::random(tiny(), true, 0.2, 5, Device::Cpu).unwrap();
    let gpu = Llama::random(tiny(), true, 0.2, 5, Device::Gpu(ordinal)).unwrap();
    let (b_cpu, _) = both_ways(&cpu, LogitsFor::Last);
    let (b_gpu, s_gpu) = both_ways(&gpu, LogitsFor::Last);
    let (within, across) = (max_rel_diff(&b_gpu, &s_gpu), max_rel_diff(&b_gpu, &b_cpu));
    eprintln!("GPU: batched vs single {within:e}, batched GPU vs CPU {across:e} (relative)");
    assert!(within < 1e-4 && across < 1e-4);
}

#[test]
fn hidden_states_are_the_normed_rows_before_the_head() {
    let m = Llama::random(tiny(), true, 0.2, 3, Device::Cpu).unwrap();
    let _g = lamina_tensor::NoGradGuard::new();
    let h = m.hidden_states(&[4, 8, 15, 16]).unwrap();
    assert_eq!(h.shape(), &[4, 64]);
    let logits = m.head.forward(&h).unwrap().to_vec_f32().unwrap();
    let want = m.forward(&[4, 8, 15, 16], &mut m.new_cache(8).unwrap(), LogitsFor::All).unwrap().to_vec_f32().unwrap();
    assert!(max_rel_diff(&logits, &want) < 1e-5);
}
