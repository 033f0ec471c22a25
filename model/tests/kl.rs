//! `kl_divergence` on the tiny GPT-2 fixture: a model against itself is exactly 0 with the
//! same top token everywhere; a Q4_0 copy against the F16 original gives the statistics an
//! independent f64 computation from the full logits gives; a cached base gives the same
//! report; different vocabularies and tokenizers are refused with a clear message.

mod support;

use lamina_model::gguf::{self, GgufFile, MetaArray, MetaValue};
use lamina_model::kl::{check_same_tokenizer, kl_divergence, tokenize_for_both, Base, BaseCache, KlOptions};
use lamina_model::perplexity::perplexity;
use lamina_model::quantize::{quantize_model, Target};
use lamina_model::{BpeTokenizer, CausalLm, Gpt, GptConfig, LogitsFor};
use lamina_tensor::Device;

fn tiny() -> GgufFile {
    GgufFile::open(lamina_testkit::repo_root().join("tests/fixtures/gpt2-tiny/gpt2-tiny.gguf")).unwrap()
}

/// 100 pseudo-random ids of the fixture's 64-token vocabulary.
fn tokens() -> Vec<u32> {
    (0..100u32).map(|i| (i * 37 + i * i * 11 + 5) % 64).collect()
}

const OPTS: KlOptions = KlOptions { n_ctx: 16, max_chunks: Some(4), bos: Some(0) };

#[test]
fn a_model_against_itself_is_exactly_zero() {
    let m = Gpt::from_gguf(&tiny(), Device::Cpu).unwrap();
    let mut calls = 0;
    let r = kl_divergence(Base::Model(&m), &m, &tokens(), OPTS, |p| {
        calls += 1;
        assert_eq!((p.done, p.total), (calls, 4));
    })
    .unwrap();
    assert_eq!(calls, 4);
    assert_eq!((r.chunks, r.tokens_scored), (4, 4 * 7));
    assert_eq!(r.kld.mean.value, 0.0);
    assert_eq!(r.kld.max, 0.0);
    assert_eq!(r.same_top.value, 1.0);
    assert_eq!(r.dp_rms.value, 0.0);
    assert_eq!(r.ppl.value, r.ppl_base.value);
    assert_eq!(r.ppl_ratio.value, 1.0);
    // The same perplexity the perplexity command measures.
    let ppl = perplexity(&m, &tokens(), 16, Some(4), Some(0), |_, _, _| {}).unwrap();
    assert!((r.ppl.value - ppl.perplexity).abs() < 1e-12 * ppl.perplexity);
}

/// softmax in f64.
fn probs(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

fn all_logits(m: &Gpt, chunk: &[u32]) -> Vec<f32> {
    let _g = lamina_tensor::NoGradGuard::new();
    let mut cache = CausalLm::new_cache(m, chunk.len()).unwrap();
    CausalLm::forward(m, chunk, &mut cache, LogitsFor::All).unwrap().to_vec_f32().unwrap()
}

#[test]
fn a_quantized_copy_matches_an_f64_computation_from_the_full_logits() {
    let dir = support::TempDir::new("kl");
    let q4 = dir.path("q4_0.gguf");
    quantize_model(&tiny(), &q4, &Target::parse("q4_0").unwrap(), false, |_, _| {}).unwrap();
    let base = Gpt::from_gguf(&tiny(), Device::Cpu).unwrap();
    let cand = Gpt::from_gguf(&GgufFile::open(&q4).unwrap(), Device::Cpu).unwrap();
    let r = kl_divergence(Base::Model(&base), &cand, &tokens(), OPTS, |_| {}).unwrap();

    // Reference: all logits of both models, KL as sum p log(p / q).
    let (mut kls, mut same, mut nll, mut nll_b, mut dp2) = (Vec::new(), 0, 0f64, 0f64, 0f64);
    for c in 0..4 {
        let mut chunk = tokens()[c * 16..(c + 1) * 16].to_vec();
        chunk[0] = 0;
        let (lb, lq) = (all_logits(&base, &chunk), all_logits(&cand, &chunk));
        for j in 8..15 {
            let p = probs(&lb[j * 64..(j + 1) * 64]);
            let q = probs(&lq[j * 64..(j + 1) * 64]);
            kls.push(p.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum::<f64>());
            let top = |v: &[f64]| (0..64).fold(0, |b, i| if v[i] > v[b] { i } else { b });
            same += (top(&p) == top(&q)) as usize;
            let t = chunk[j + 1] as usize;
            nll -= q[t].ln();
            nll_b -= p[t].ln();
            dp2 += (q[t] - p[t]).powi(2);
        }
    }
    let n = kls.len() as f64;
    let close = |a: f64, b: f64, what: &str| assert!((a - b).abs() <= 1e-9 * b.abs().max(1e-6), "{what}: {a} vs {b}");
    close(r.kld.mean.value, kls.iter().sum::<f64>() / n, "mean KLD");
    close(r.kld.max, kls.iter().cloned().fold(0.0, f64::max), "max KLD");
    close(r.ppl.value, (nll / n).exp(), "PPL(Q)");
    close(r.ppl_base.value, (nll_b / n).exp(), "PPL(base)");
    close(r.dp_rms.value, (dp2 / n).sqrt(), "RMS dp");
    assert_eq!(r.same_top.value, same as f64 / n);
    assert!(r.kld.mean.value > 1e-6, "4-bit rounding moves the distribution: {}", r.kld.mean.value);
    assert!(r.kld.mean.err > 0.0 && r.kld.median <= r.kld.at(0.99).unwrap());

    // The cached base gives the same report, and refuses other tokens.
    let cache = BaseCache::compute(&base, &tokens(), OPTS, |_, _| {}).unwrap();
    assert_eq!(kl_divergence(Base::Cached(&cache), &cand, &tokens(), OPTS, |_| {}).unwrap(), r);
    let mut other = tokens();
    other[20] = (other[20] + 1) % 64;
    let err = kl_divergence(Base::Cached(&cache), &cand, &other, OPTS, |_| {}).unwrap_err().to_string();
    assert!(err.contains("cached base"), "{err}");
    let err = kl_divergence(Base::Cached(&cache), &cand, &tokens(), KlOptions { max_chunks: Some(3), ..OPTS }, |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("cached base"), "{err}");
}

#[test]
fn different_vocabularies_and_too_little_text_are_errors() {
    let base = Gpt::from_gguf(&tiny(), Device::Cpu).unwrap();
    let cfg = GptConfig { vocab: 48, ctx: 16, n_layer: 1, n_head: 2, n_embd: 16, dropout: 0.0 };
    let other = Gpt::new(cfg, 1).unwrap();
    let err = kl_divergence(Base::Model(&base), &other, &tokens(), OPTS, |_| {}).unwrap_err().to_string();
    assert!(err.contains("vocabulary of 64 tokens") && err.contains("48"), "{err}");
    let err = kl_divergence(Base::Model(&base), &base, &tokens()[..10], OPTS, |_| {}).unwrap_err().to_string();
    assert!(err.contains("fewer than one chunk"), "{err}");
}

/// A byte-level tokenizer: the 256 byte characters, `extra` tokens, and the merges.
fn toy_tokenizer(extra: &[&str], merges: &[&str]) -> BpeTokenizer {
    let mut tokens: Vec<String> = lamina_model::bpe::byte_level::byte_to_char().iter().map(|c| c.to_string()).collect();
    tokens.extend(extra.iter().map(|s| s.to_string()));
    let kv = |k: &str, v| (k.to_string(), v);
    let meta = vec![
        kv("tokenizer.ggml.model", MetaValue::String("gpt2".into())),
        kv("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::String(tokens))),
        kv(
            "tokenizer.ggml.merges",
            MetaValue::Array(MetaArray::String(merges.iter().map(|s| s.to_string()).collect())),
        ),
    ];
    BpeTokenizer::from_gguf(&GgufFile::from_bytes(gguf::to_bytes(meta, &[]).unwrap()).unwrap()).unwrap()
}

#[test]
fn different_tokenizers_are_refused() {
    let a = toy_tokenizer(&["he", "ll"], &["h e", "l l"]);
    assert!(check_same_tokenizer(&a, &toy_tokenizer(&["he", "ll"], &["h e", "l l"])).is_ok());
    let err = check_same_tokenizer(&a, &toy_tokenizer(&["he"], &["h e"])).unwrap_err().to_string();
    assert!(err.contains("258 tokens") && err.contains("257"), "{err}");
    let err = check_same_tokenizer(&a, &toy_tokenizer(&["he", "lo"], &["h e", "l o"])).unwrap_err().to_string();
    assert!(err.contains("id 257") && err.contains("\"ll\"") && err.contains("\"lo\""), "{err}");
    // Same vocabulary, one merge missing: "hello" splits differently.
    let b = toy_tokenizer(&["he", "ll"], &["h e"]);
    assert!(check_same_tokenizer(&a, &b).is_ok());
    let err = tokenize_for_both(&a, &b, "hello").unwrap_err().to_string();
    assert!(err.contains("split the text differently"), "{err}");
    assert_eq!(tokenize_for_both(&a, &a, "hello").unwrap(), a.encode("hello", false, false).unwrap());
}
