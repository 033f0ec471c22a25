//! `lineage::run`, the engine of `lamina train-demo --arch/--compare`, end to end on a
//! slice of the shipped corpus and a few steps: every model trains in the shared loop,
//! is scored on the same validation characters and the causal ones write a sample.

use lamina_train::data::SHIPPED_CORPUS;
use lamina_train::lineage::{run, Arch, LineageConfig, Sampling};
use lamina_train::{Budget, CharSplit, Progress};

#[test]
fn all_four_train_score_and_sample() {
    let text: String = SHIPPED_CORPUS.chars().take(6000).collect();
    let mut cfg = LineageConfig {
        budget: Budget::Steps(3),
        batch: 4,
        progress: Progress::Quiet,
        sampling: Some(Sampling { prompt: "The ".into(), len: 12, temperature: 0.8, top_k: None }),
        ..LineageConfig::default()
    };
    cfg.gpt.ctx = 16;
    let entries = run(&Arch::ALL, &text, &cfg).unwrap();
    let split = CharSplit::new(&text, cfg.val_fraction).unwrap();
    assert_eq!(entries.iter().map(|e| e.arch).collect::<Vec<_>>(), Arch::ALL);
    for e in &entries {
        assert_eq!(e.val.count, split.val.len() - 1, "{}: every validation character but the first", e.arch);
        let bits = e.val.bits_per_token();
        // Better than nothing (log2 of the vocabulary), worse than certain.
        assert!(bits > 0.5 && bits < (split.tokenizer.vocab_size() as f64).log2() + 1.0, "{}: {bits}", e.arch);
        assert_eq!(e.fit.as_ref().map(|f| f.steps()), e.arch.is_neural().then_some(3), "{}", e.arch);
        match &e.sample {
            Some(s) => assert!(e.arch.is_causal() && s.starts_with("The ") && s.chars().count() == 16, "{s:?}"),
            None => assert_eq!(e.arch, Arch::Encoder, "only the encoder writes no sample"),
        }
        assert!(e.size > 0);
    }
}
