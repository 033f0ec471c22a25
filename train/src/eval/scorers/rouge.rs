//! ROUGE-L as Google's `rouge-score` package computes it (`RougeScorer(["rougeL"])`, no
//! stemming): both texts lower-cased, every run of characters other than a-z and 0-9 a
//! separator (so a non-ASCII letter splits a word, as in that package), then the
//! longest common subsequence of the two token lists: precision = LCS / answer tokens,
//! recall = LCS / reference tokens, and their harmonic mean (F1), reported here.

/// rouge-score's default tokenizer.
pub fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

/// Length of the longest common subsequence (two rows of the dynamic-programming table).
pub fn lcs(a: &[String], b: &[String]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            row[j + 1] = if x == y { prev[j] + 1 } else { row[j].max(prev[j + 1]) };
        }
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// ROUGE-L F1 of `output` against `reference` (0 when either has no tokens).
pub fn rouge_l(output: &str, reference: &str) -> f64 {
    let (o, r) = (tokens(output), tokens(reference));
    if o.is_empty() || r.is_empty() {
        return 0.0;
    }
    let common = lcs(&o, &r) as f64;
    let (p, rec) = (common / o.len() as f64, common / r.len() as f64);
    if p + rec == 0.0 {
        0.0
    } else {
        2.0 * p * rec / (p + rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rouge_l_by_hand() {
        // [the, cat, sat, on, the, mat] vs [the, cat, lay, on, a, mat]: LCS the cat on mat = 4.
        // P = R = 4/6, F = 2/3.
        assert!((rouge_l("The cat sat on the mat.", "the cat lay on a mat") - 2.0 / 3.0).abs() < 1e-12);
        // Order matters: [a, b, c] vs [c, b, a] has LCS 1: P = R = 1/3.
        assert!((rouge_l("a b c", "c b a") - 1.0 / 3.0).abs() < 1e-12);
        // [police, killed, the, gunman] vs [police, kill, the, gunman]: LCS 3, F = 3/4.
        assert!((rouge_l("police killed the gunman", "police kill the gunman") - 0.75).abs() < 1e-12);
        assert_eq!(rouge_l("", "x"), 0.0);
        // Non-ASCII letters separate tokens: [stra, e] (rouge-score gives 0 against "strae").
        assert_eq!(rouge_l("Straße", "stra e"), 1.0);
        assert_eq!(rouge_l("Straße", "strae"), 0.0);
        assert_eq!(tokens("Don't stop-me NOW, 2024!"), ["don", "t", "stop", "me", "now", "2024"]);
    }
}
