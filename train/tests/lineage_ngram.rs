//! The interpolated Kneser-Ney n-gram model: counts and probabilities against a
//! hand-worked example and against NLTK's `KneserNeyInterpolated` (tests/fixtures/kneser_ney,
//! made by scripts/reference/kneser_ney_reference.py); every distribution sums to 1 over
//! the vocabulary.

use lamina_train::data::SHIPPED_CORPUS;
use lamina_train::lineage::ngram::{Discounts, KneserNey};
use lamina_train::CharSplit;
use proptest::prelude::*;

const A: u32 = 0;
const B: u32 = 1;
const C: u32 = 2;
const D: u32 = 3;
const BOS: u32 = 4; // the boundary: id V

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "got {got:?}, want {want:?}");
    }
}

/// "abcabc", order 3, vocabulary {a, b, c, d}, every discount 0.5. Worked by hand:
///
/// raw trigrams (boundary-padded): BBa 1, Bab 1, abc 2, bca 1, cab 1
/// bigram continuations (distinct left neighbours): Ba 1, ab 2 (B, c), bc 1, ca 1
/// unigram continuations: a 2 (B, c), b 1, c 1, d 0; 4 in all over 3 distinct tokens
///
/// p1 = (max(c - .5, 0) + .5 * 3 * 1/4) / 4  = a 15/32, b 7/32, c 7/32, d 3/32
/// p2(. | b): only "bc" (1 of 1)             = c .5 + .5 p1(c) = 39/64; a 15/64, b 7/64, d 3/64
/// p3(. | ab): only "abc" (2 of 2)           = c 1.5/2 + .25 p2(c|b) = 231/256; a 15/256, b 7/256, d 3/256
/// p3(. | BB): only "BBa", p2(. | B) = a 47/64 ... = a 111/128, b 7/128, c 7/128, d 3/128
#[test]
fn a_hand_worked_example() {
    let text = [A, B, C, A, B, C];
    let kn = KneserNey::fit(&text, 4, 3, Discounts::Fixed(vec![0.5; 3])).unwrap();
    // Raw counts at the top order, continuation counts below.
    assert_eq!(kn.count(&[A, B, C]), 2);
    assert_eq!(kn.count(&[BOS, BOS, A]), 1);
    assert_eq!(kn.count(&[B, C]), 1, "bc occurs twice, always after a");
    assert_eq!(kn.count(&[A, B]), 2, "ab follows the boundary and c");
    assert_eq!((kn.count(&[A]), kn.count(&[B]), kn.count(&[C]), kn.count(&[D])), (2, 1, 1, 0));
    assert_eq!(kn.num_counts(), 5 + 4 + 3);

    let frac = |v: [u32; 4], d: f64| v.map(|x| x as f64 / d);
    close(&kn.distribution(&[A, B]), &frac([15, 7, 231, 3], 256.0));
    close(&kn.distribution(&[C, A, B]), &frac([15, 7, 231, 3], 256.0)); // only the last two count
    close(&kn.distribution(&[]), &frac([111, 7, 7, 3], 128.0));
    // Unseen contexts back off: (b, b) to p2(. | b); (a, d) and (d, d) to p1.
    close(&kn.distribution(&[B, B]), &frac([15, 7, 39, 3], 64.0));
    close(&kn.distribution(&[A, D]), &frac([15, 7, 7, 3], 32.0));
    close(&kn.distribution(&[D, D]), &frac([15, 7, 7, 3], 32.0));

    // Scoring "abc": p(b | Ba) = .5 + .5 p2(b | a) = .5 + .5 (1.5/2 + .25 p1(b)) = 231/256,
    // and p(c | ab) = 231/256.
    let (nats, count) = kn.score(&[A, B, C]);
    assert_eq!(count, 2);
    assert!((nats + 2.0 * (231.0f64 / 256.0).ln()).abs() < 1e-12, "{nats}");
}

#[test]
fn discounts_are_estimated_from_count_of_counts() {
    // Top order (raw): 5 trigrams, counts 1, 1, 2, 1, 1 -> n1 4, n2 1 -> 4 / 6.
    // Bigram continuations 1, 2, 1, 1 -> 3 / 5. Unigram continuations 2, 1, 1 -> 2 / 4.
    let kn = KneserNey::fit(&[A, B, C, A, B, C], 4, 3, Discounts::Estimated).unwrap();
    close(kn.discounts(), &[0.5, 0.6, 4.0 / 6.0]);
}

#[derive(serde::Deserialize)]
struct Reference {
    text: String,
    vocab: Vec<String>,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    order: usize,
    discount: f64,
    history: String,
    probs: Vec<f64>,
}

/// NLTK uses one discount above the unigram level and none at it, so the model is set up
/// with [0, d, ..., d]; probabilities agree to rounding.
#[test]
fn agrees_with_nltk() {
    let path = lamina_testkit::repo_root().join("tests/fixtures/kneser_ney/nltk.json");
    let r: Reference = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vocab: Vec<char> = r.vocab.iter().map(|s| s.chars().next().unwrap()).collect();
    let id = |c: char| vocab.iter().position(|&v| v == c).unwrap() as u32;
    let text: Vec<u32> = r.text.chars().map(id).collect();
    let mut worst = 0.0f64;
    for case in &r.cases {
        let mut d = vec![case.discount; case.order];
        d[0] = 0.0;
        let kn = KneserNey::fit(&text, vocab.len(), case.order, Discounts::Fixed(d)).unwrap();
        let history: Vec<u32> = case.history.chars().map(id).collect();
        let got = kn.distribution(&history);
        for (g, w) in got.iter().zip(&case.probs) {
            worst = worst.max((g - w).abs());
        }
        assert!(
            got.iter().zip(&case.probs).all(|(g, w)| (g - w).abs() < 1e-12),
            "order {} discount {} history {:?}",
            case.order,
            case.discount,
            case.history
        );
    }
    eprintln!("{} NLTK cases, largest difference {worst:.1e}", r.cases.len());
}

fn sums_to_one(kn: &KneserNey, history: &[u32]) {
    let p = kn.distribution(history);
    let total: f64 = p.iter().sum();
    assert!((total - 1.0).abs() < 1e-9, "history {history:?}: sum {total}");
    assert!(p.iter().all(|&x| x > 0.0 && x.is_finite()), "every token keeps some probability");
}

/// On the shipped corpus at every order, with estimated discounts: every context of the
/// validation text (seen or not in training) gives a distribution.
#[test]
fn distributions_sum_to_one_on_the_corpus() {
    let split = CharSplit::new(SHIPPED_CORPUS, 0.1).unwrap();
    let v = split.tokenizer.vocab_size();
    for order in 1..=6 {
        let kn = KneserNey::fit(&split.train, v, order, Discounts::Estimated).unwrap();
        for i in (0..split.val.len()).step_by(97) {
            sums_to_one(&kn, &split.val[..i]);
        }
        let (nats, count) = kn.score(&split.val);
        assert_eq!(count, split.val.len() - 1);
        assert!(nats.is_finite());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_text_and_history_gives_a_distribution(
        text in prop::collection::vec(0u32..5, 1..60),
        history in prop::collection::vec(0u32..6, 0..6),
        order in 1usize..5,
        d in 0.05f64..=1.0,
    ) {
        // Vocabulary 6: token 5 never occurs in the text (it may in the history).
        let fixed = KneserNey::fit(&text, 6, order, Discounts::Fixed(vec![d; order])).unwrap();
        sums_to_one(&fixed, &history);
        let estimated = KneserNey::fit(&text, 6, order, Discounts::Estimated).unwrap();
        sums_to_one(&estimated, &history);
    }
}

#[test]
fn bad_settings_are_errors() {
    assert!(KneserNey::fit(&[], 3, 2, Discounts::Estimated).is_err());
    assert!(KneserNey::fit(&[0, 1], 3, 0, Discounts::Estimated).is_err());
    assert!(KneserNey::fit(&[0, 3], 3, 2, Discounts::Estimated).is_err(), "token outside the vocabulary");
    assert!(KneserNey::fit(&[0, 1], 3, 2, Discounts::Fixed(vec![0.5])).is_err(), "one discount per order");
    assert!(KneserNey::fit(&[0, 1], 3, 2, Discounts::Fixed(vec![0.5, 1.5])).is_err());
}

#[test]
fn sampling_is_seeded_and_stays_in_the_vocabulary() {
    let kn = KneserNey::fit(&[A, B, C, A, B, C], 4, 3, Discounts::Estimated).unwrap();
    let a = kn.generate(&[A], 50, 1.0, None, 7).unwrap();
    assert_eq!(a.len(), 51);
    assert!(a.iter().all(|&t| t < 4));
    assert_eq!(a, kn.generate(&[A], 50, 1.0, None, 7).unwrap());
    // Greedy from "ab": c is the most likely next token.
    assert_eq!(kn.generate(&[A, B], 1, 0.0, None, 0).unwrap(), vec![A, B, C]);
}
