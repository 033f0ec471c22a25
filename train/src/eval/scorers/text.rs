//! Scores of a generated answer against reference answers, as SQuAD's evaluation script
//! and lm-evaluation-harness compute them; with several references an answer gets its best
//! score over them.
//!
//! - `exact_match`: equal after trimming surrounding whitespace (what `lamina eval --data`
//!   has always used);
//! - `exact_match_norm`: equal after SQuAD normalisation;
//! - `contains`: the normalised reference appears in the normalised answer, on word boundaries;
//! - `f1`, `recall`: token overlap of the normalised texts (a bag of words: each shared word
//!   counts as often as it appears in both); when either side has no words, 1 if both have
//!   none, else 0 (SQuAD v2's rule).

use super::normalize::{normalize, tokens};
use std::collections::HashMap;

pub fn exact_match(output: &str, reference: &str) -> f64 {
    f(crate::sft::exact_match(output, reference))
}

pub fn exact_match_norm(output: &str, reference: &str) -> f64 {
    f(normalize(output) == normalize(reference))
}

pub fn contains(output: &str, reference: &str) -> f64 {
    let r = normalize(reference);
    f(!r.is_empty() && format!(" {} ", normalize(output)).contains(&format!(" {r} ")))
}

/// (shared words, words in the answer, words in the reference).
fn overlap(output: &str, reference: &str) -> (usize, usize, usize) {
    let (o, r) = (tokens(output), tokens(reference));
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &r {
        *counts.entry(t).or_default() += 1;
    }
    let mut shared = 0;
    for t in &o {
        if let Some(c) = counts.get_mut(t.as_str()).filter(|c| **c > 0) {
            *c -= 1;
            shared += 1;
        }
    }
    (shared, o.len(), r.len())
}

pub fn f1(output: &str, reference: &str) -> f64 {
    let (shared, n_out, n_ref) = overlap(output, reference);
    if n_out == 0 || n_ref == 0 {
        return f(n_out == n_ref);
    }
    if shared == 0 {
        return 0.0;
    }
    let (p, r) = (shared as f64 / n_out as f64, shared as f64 / n_ref as f64);
    2.0 * p * r / (p + r)
}

pub fn recall(output: &str, reference: &str) -> f64 {
    let (shared, n_out, n_ref) = overlap(output, reference);
    if n_out == 0 || n_ref == 0 {
        return f(n_out == n_ref);
    }
    shared as f64 / n_ref as f64
}

/// The best of `score` over `references` (0 when there are none).
pub fn best(output: &str, references: &[String], score: impl Fn(&str, &str) -> f64) -> f64 {
    references.iter().map(|r| score(output, r)).fold(0.0, f64::max)
}

fn f(b: bool) -> f64 {
    crate::eval::stats::indicator(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_contains_by_hand() {
        assert_eq!(exact_match(" 2021-03-14\n", "2021-03-14"), 1.0);
        assert_eq!(exact_match("2021-03-14.", "2021-03-14"), 0.0);
        assert_eq!(exact_match_norm("The Paris.", "paris"), 1.0);
        assert_eq!(contains("I think it is Paris, France.", "paris"), 1.0);
        assert_eq!(contains("Parisian food", "paris"), 0.0, "word boundaries");
        assert_eq!(contains("anything", ""), 0.0);
    }

    #[test]
    fn f1_and_recall_by_hand() {
        // Answer "the cat sat on the mat" -> [cat, sat, on, mat]; reference "a cat on a hat" -> [cat, on, hat].
        // Shared: cat, on = 2. Precision 2/4, recall 2/3, F1 = 2 * 0.5 * 0.6667 / 1.1667 = 4/7.
        assert!((f1("the cat sat on the mat", "a cat on a hat") - 4.0 / 7.0).abs() < 1e-12);
        assert!((recall("the cat sat on the mat", "a cat on a hat") - 2.0 / 3.0).abs() < 1e-12);
        // Repeated words count as often as they appear on both sides: [dog, dog, dog] vs [dog, dog].
        assert!((f1("dog dog dog", "dog dog") - 0.8).abs() < 1e-12);
        assert_eq!(f1("blue", "red"), 0.0);
        assert_eq!(f1("the", ""), 1.0, "both empty after normalisation");
        assert_eq!(f1("a cat", "the"), 0.0);
        assert_eq!(recall("", "x"), 0.0);
    }

    #[test]
    fn several_references_take_the_best() {
        let refs = vec!["New York City".to_string(), "NYC".to_string()];
        assert_eq!(best("nyc", &refs, exact_match_norm), 1.0);
        assert!((best("new york", &refs, f1) - 0.8).abs() < 1e-12);
        assert_eq!(best("x", &[], f1), 0.0);
    }
}
