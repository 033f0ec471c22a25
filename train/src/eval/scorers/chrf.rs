//! chrF as sacreBLEU computes a sentence score (`CHRF()` defaults: character n-grams of
//! orders 1 to 6, no word n-grams, beta = 2, case kept, whitespace removed before the
//! n-grams are taken). For each order, the n-grams shared by the answer and the reference
//! (clipped counts), over those of the answer (precision) and of the reference (recall);
//! the precisions and recalls are averaged over the orders both texts have n-grams of, and
//! the score is 100 x F-beta of the two averages (recall weighted beta^2 = 4 times). This is
//! sacreBLEU's default, compatible with the original chrF++.py (not its `eps_smoothing` mode).

use std::collections::HashMap;

pub const CHAR_ORDER: usize = 6;
pub const BETA: f64 = 2.0;

fn ngrams(chars: &[char], n: usize) -> HashMap<&[char], usize> {
    let mut m = HashMap::new();
    for g in chars.windows(n) {
        *m.entry(g).or_default() += 1;
    }
    m
}

/// (answer n-grams, reference n-grams, shared n-grams) of order `n`.
fn statistics(o: &[char], r: &[char], n: usize) -> (usize, usize, usize) {
    let (a, b) = (ngrams(o, n), ngrams(r, n));
    let shared = a.iter().map(|(g, &c)| c.min(b.get(g).copied().unwrap_or(0))).sum();
    (a.values().sum(), b.values().sum(), shared)
}

/// chrF of `output` against `reference`, 0 to 100.
pub fn chrf(output: &str, reference: &str) -> f64 {
    let strip = |s: &str| -> Vec<char> { s.chars().filter(|c| !c.is_whitespace()).collect() };
    let (o, r) = (strip(output), strip(reference));
    let (mut precision, mut recall, mut orders) = (0.0, 0.0, 0usize);
    for n in 1..=CHAR_ORDER {
        let (n_out, n_ref, shared) = statistics(&o, &r, n);
        if n_out > 0 && n_ref > 0 {
            precision += shared as f64 / n_out as f64;
            recall += shared as f64 / n_ref as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    let (p, r) = (precision / orders as f64, recall / orders as f64);
    let factor = BETA * BETA;
    if p + r == 0.0 {
        return 0.0;
    }
    100.0 * (1.0 + factor) * p * r / (factor * p + r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrf_by_hand() {
        // "ab" vs "abc": order 1: answer {a, b}, reference {a, b, c}, shared 2: P 1, R 2/3.
        // Order 2: {ab} vs {ab, bc}: P 1, R 1/2. Order 3: the answer has none (skipped).
        // Averages P = 1, R = 7/12; F2 = 5 P R / (4 P + R) = (35/12) / (55/12) = 7/11.
        assert!((chrf("ab", "abc") - 700.0 / 11.0).abs() < 1e-9);
        assert!((chrf("a b c", "abc") - 100.0).abs() < 1e-9, "whitespace is removed");
        assert_eq!(chrf("xyz", "abc"), 0.0);
        assert_eq!(chrf("", "abc"), 0.0);
        // Clipped counts: "aaa" vs "a": order 1 shared min(3, 1) = 1: P 1/3, R 1; order 2: reference has none.
        // F2 = 5 (1/3) / (4/3 + 1) = (5/3) / (7/3) = 5/7.
        assert!((chrf("aaa", "a") - 500.0 / 7.0).abs() < 1e-9);
        // Longer sentences, against sacreBLEU 2.6's CHRF().sentence_score (all the above agree with it too).
        assert!((chrf("The cat sat on the mat.", "the cat lay on a mat") - 32.164122740366274).abs() < 1e-9);
        assert!((chrf("Le chat est sur le tapis.", "Le chat était sur le tapis.") - 66.99411938531398).abs() < 1e-9);
    }
}
