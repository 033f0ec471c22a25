//! The per-token comparison of two next-token distributions and the summary statistics
//! llama-perplexity prints with `--kl-divergence`, all in f64.
//!
//! Uncertainties follow llama.cpp: the standard error of a mean is
//! `sqrt(var / (n - 1))` with the population variance `var`; a perplexity's error is
//! `ppl * se(mean NLL)`; the log-ratio's error subtracts twice the covariance of the two
//! NLLs (the same tokens are scored by both models, so their errors are correlated);
//! the RMS of Δp takes its error from the mean of Δp² by the delta method; "same top"
//! is a binomial proportion. Percentiles interpolate linearly between sorted values.

use crate::error::{ModelError, Result};

/// One scored position: the base model's and the candidate's view of the next token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Position {
    /// KL(base || candidate) over the whole vocabulary, in nats.
    pub kld: f64,
    /// Negative log-likelihood of the true next token under the candidate and the base.
    pub nll: f64,
    pub nll_base: f64,
    /// Whether both models rank the same token first.
    pub same_top: bool,
    /// p_candidate(true token) - p_base(true token).
    pub dp: f64,
}

/// Index and value of the largest element (the first one on ties, as llama.cpp).
fn argmax(row: &[f32]) -> (usize, f64) {
    let mut best = (0, row[0]);
    for (i, &v) in row.iter().enumerate().skip(1) {
        if v > best.1 {
            best = (i, v);
        }
    }
    (best.0, best.1 as f64)
}

/// log sum exp(row), shifted by the row's maximum for range.
fn log_sum_exp(row: &[f32], max: f64) -> f64 {
    max + row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln()
}

/// Compare the base model's logits `base` with the candidate's `logits` at one position
/// whose true next token is `target`. Both rows are logits over the same vocabulary.
pub fn compare_position(base: &[f32], logits: &[f32], target: usize) -> Result<Position> {
    if base.len() != logits.len() || base.is_empty() || target >= base.len() {
        return Err(ModelError::Invalid(format!(
            "comparing logits: rows of {} and {} entries, target {target}",
            base.len(),
            logits.len()
        )));
    }
    let (top_base, max_base) = argmax(base);
    let (top, max) = argmax(logits);
    // A NaN anywhere makes the log-sum-exp NaN; +inf makes the maximum infinite. (-inf is
    // a token the model rules out, which is fine.)
    let lse_base = log_sum_exp(base, max_base);
    let lse = log_sum_exp(logits, max);
    if !lse_base.is_finite() || !lse.is_finite() {
        return Err(ModelError::Invalid(format!(
            "a model produced non-finite logits (log-sum-exp: base {lse_base}, candidate {lse})"
        )));
    }
    // sum p_b (log p_b - log p_q); terms with p_b = 0 contribute 0 (0 log 0 = 0). When the
    // rows are bit-identical every term is exactly 0.
    let mut kld = 0f64;
    for (&b, &q) in base.iter().zip(logits) {
        let log_pb = b as f64 - lse_base;
        let pb = log_pb.exp();
        if pb > 0.0 {
            kld += pb * (log_pb - (q as f64 - lse));
        }
    }
    let nll = lse - logits[target] as f64;
    let nll_base = lse_base - base[target] as f64;
    Ok(Position { kld, nll, nll_base, same_top: top == top_base, dp: (-nll).exp() - (-nll_base).exp() })
}

/// A value and its standard error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub err: f64,
}

/// The shape of a per-token quantity's distribution.
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    pub mean: Estimate,
    pub min: f64,
    pub max: f64,
    pub median: f64,
    /// (fraction, value) for the fractions in [`PERCENTILES`].
    pub percentiles: Vec<(f64, f64)>,
}

/// The percentiles llama-perplexity prints.
pub const PERCENTILES: [f64; 9] = [0.999, 0.99, 0.95, 0.90, 0.5, 0.10, 0.05, 0.01, 0.001];

impl Distribution {
    /// The value at `fraction` if it is one of [`PERCENTILES`].
    pub fn at(&self, fraction: f64) -> Option<f64> {
        self.percentiles.iter().find(|(p, _)| *p == fraction).map(|&(_, v)| v)
    }
}

/// What `perplexity --kl-base` reports (fractions, not percentages).
#[derive(Clone, Debug, PartialEq)]
pub struct KlReport {
    pub n_ctx: usize,
    pub chunks: usize,
    pub tokens_scored: usize,
    pub ppl: Estimate,
    pub ppl_base: Estimate,
    /// Correlation of the two models' per-token NLLs.
    pub nll_correlation: f64,
    pub ln_ppl_ratio: Estimate,
    pub ppl_ratio: Estimate,
    pub ppl_diff: Estimate,
    pub kld: Distribution,
    /// p_candidate - p_base of the true token.
    pub dp: Distribution,
    pub dp_rms: Estimate,
    /// The fraction of positions where both models rank the same token first.
    pub same_top: Estimate,
}

/// Mean and the standard error of the mean.
fn mean_se(values: impl Iterator<Item = f64> + Clone) -> (f64, f64, f64) {
    let n = values.clone().count() as f64;
    let mean = values.clone().sum::<f64>() / n;
    let var = values.map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let se = if n > 1.0 { (var / (n - 1.0)).sqrt() } else { 0.0 };
    (mean, se, var)
}

/// Linear interpolation between the sorted values around `fraction * (n - 1)`.
pub fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let x = fraction.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let i = x.floor() as usize;
    let t = x - i as f64;
    let next = sorted[(i + 1).min(sorted.len() - 1)];
    if t == 0.0 {
        sorted[i]
    } else {
        (1.0 - t) * sorted[i] + t * next
    }
}

fn distribution(values: impl Iterator<Item = f64> + Clone) -> Distribution {
    let (mean, err, _) = mean_se(values.clone());
    let mut sorted: Vec<f64> = values.collect();
    sorted.sort_by(f64::total_cmp);
    Distribution {
        mean: Estimate { value: mean, err },
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        median: percentile(&sorted, 0.5),
        percentiles: PERCENTILES.iter().map(|&p| (p, percentile(&sorted, p))).collect(),
    }
}

/// Summarise the scored positions of `chunks` chunks of `n_ctx` tokens.
pub fn summarize(positions: &[Position], n_ctx: usize, chunks: usize) -> Result<KlReport> {
    if positions.is_empty() {
        return Err(ModelError::Invalid("no positions were scored".into()));
    }
    let n = positions.len() as f64;
    let p = positions.iter();
    let (m_q, se_q, var_q) = mean_se(p.clone().map(|x| x.nll));
    let (m_b, se_b, var_b) = mean_se(p.clone().map(|x| x.nll_base));
    // Population covariance of the two NLLs; the covariance of their means divides by n - 1.
    let cov = p.clone().map(|x| (x.nll - m_q) * (x.nll_base - m_b)).sum::<f64>() / n;
    let cov_means = if n > 1.0 { cov / (n - 1.0) } else { 0.0 };
    let nll_correlation = if var_q > 0.0 && var_b > 0.0 { cov / (var_q * var_b).sqrt() } else { 1.0 };
    let ln_ratio = m_q - m_b;
    let ln_ratio_err = (se_q * se_q + se_b * se_b - 2.0 * cov_means).max(0.0).sqrt();
    let (ppl, ppl_base) = (m_q.exp(), m_b.exp());
    let (ppl_err, ppl_base_err) = (ppl * se_q, ppl_base * se_b);
    let diff_var = ppl_err * ppl_err + ppl_base_err * ppl_base_err - 2.0 * ppl * ppl_base * cov_means;
    let (ms_dp, se_ms_dp, _) = mean_se(p.clone().map(|x| x.dp * x.dp));
    let dp_rms = ms_dp.sqrt();
    let same = positions.iter().filter(|x| x.same_top).count() as f64 / n;
    Ok(KlReport {
        n_ctx,
        chunks,
        tokens_scored: positions.len(),
        ppl: Estimate { value: ppl, err: ppl_err },
        ppl_base: Estimate { value: ppl_base, err: ppl_base_err },
        nll_correlation,
        ln_ppl_ratio: Estimate { value: ln_ratio, err: ln_ratio_err },
        ppl_ratio: Estimate { value: ln_ratio.exp(), err: ln_ratio.exp() * ln_ratio_err },
        ppl_diff: Estimate { value: ppl - ppl_base, err: diff_var.max(0.0).sqrt() },
        kld: distribution(p.clone().map(|x| x.kld)),
        dp: distribution(p.clone().map(|x| x.dp)),
        dp_rms: Estimate { value: dp_rms, err: if dp_rms > 0.0 { 0.5 / dp_rms * se_ms_dp } else { 0.0 } },
        same_top: Estimate { value: same, err: if n > 1.0 { (same * (1.0 - same) / (n - 1.0)).sqrt() } else { 0.0 } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values computed independently with numpy float64, as KL = sum p log(p / q) (a
    /// ratio, not the difference of log-probabilities the code uses):
    /// p = softmax([1, 2, 3, -1]), q = softmax([1.5, 1, 2, 0.5]).
    #[test]
    fn one_position_equals_a_hand_computation() {
        let base = [1.0f32, 2.0, 3.0, -1.0];
        let cand = [1.5f32, 1.0, 2.0, 0.5];
        let pos = compare_position(&base, &cand, 1).unwrap();
        let p: Vec<f64> = softmax(&base);
        let q: Vec<f64> = softmax(&cand);
        let kl_ratio: f64 = p.iter().zip(&q).map(|(p, q)| p * (p / q).ln()).sum();
        assert!((pos.kld - kl_ratio).abs() < 1e-15, "{} vs {kl_ratio}", pos.kld);
        assert!((pos.kld - 0.20410769265703518).abs() < 1e-12, "{}", pos.kld);
        assert!((pos.nll - 1.7873386716983297).abs() < 1e-12, "{}", pos.nll);
        assert!((pos.nll_base - 1.4197166463153394).abs() < 1e-12, "{}", pos.nll_base);
        assert!((pos.dp - (q[1] - p[1])).abs() < 1e-15);
        assert!(pos.same_top, "both rank token 2 first");
        assert!(!compare_position(&base, &[3.0, 1.0, 2.0, 0.0], 0).unwrap().same_top);
    }

    fn softmax(x: &[f32]) -> Vec<f64> {
        let e: Vec<f64> = x.iter().map(|&v| (v as f64).exp()).collect();
        let s: f64 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    #[test]
    fn identical_rows_have_exactly_zero_divergence() {
        let row: Vec<f32> = (0..1000).map(|i| ((i * 7919) % 1013) as f32 * 0.037 - 12.0).collect();
        let pos = compare_position(&row, &row, 17).unwrap();
        assert_eq!(pos.kld, 0.0);
        assert_eq!(pos.dp, 0.0);
        assert!(pos.same_top);
    }

    #[test]
    fn impossible_tokens_and_bad_rows() {
        // The base gives token 2 probability 0: it adds nothing, not NaN.
        let pos = compare_position(&[0.0, 1.0, f32::NEG_INFINITY], &[0.0, 1.0, 2.0], 0).unwrap();
        assert!(pos.kld.is_finite() && pos.kld > 0.0);
        assert!(compare_position(&[0.0, f32::NAN], &[0.0, 1.0], 0).is_err());
        assert!(compare_position(&[0.0, f32::INFINITY], &[0.0, 1.0], 0).is_err());
        assert!(compare_position(&[0.0, 1.0], &[0.0, 1.0, 2.0], 0).is_err());
        assert!(compare_position(&[0.0, 1.0], &[0.0, 1.0], 2).is_err());
    }

    #[test]
    fn summary_statistics_match_their_definitions() {
        let positions: Vec<Position> = (0..50)
            .map(|i| {
                let x = i as f64;
                Position {
                    kld: x * 0.01,
                    nll: 2.0 + (x * 0.3).sin(),
                    nll_base: 1.9 + (x * 0.3).sin() * 0.9,
                    same_top: i % 5 != 0,
                    dp: (x * 0.7).cos() * 0.1,
                }
            })
            .collect();
        let r = summarize(&positions, 8, 1).unwrap();
        let mean = |f: &dyn Fn(&Position) -> f64| positions.iter().map(f).sum::<f64>() / 50.0;
        assert!((r.ppl.value - mean(&|p| p.nll).exp()).abs() < 1e-12);
        assert!((r.ppl_ratio.value - (mean(&|p| p.nll) - mean(&|p| p.nll_base)).exp()).abs() < 1e-12);
        assert!((r.kld.mean.value - 0.245).abs() < 1e-12);
        assert_eq!(r.kld.max, 0.49);
        assert_eq!(r.kld.min, 0.0);
        assert!((r.kld.median - 0.245).abs() < 1e-12, "between the 25th and 26th values");
        assert!((r.kld.at(0.99).unwrap() - 0.4851).abs() < 1e-12, "0.99 * 49 = 48.51");
        assert!((r.same_top.value - 0.8).abs() < 1e-12);
        assert!((r.dp_rms.value - mean(&|p| p.dp * p.dp).sqrt()).abs() < 1e-12);
        // Standard error of the KLD mean: sample standard deviation / sqrt(n).
        let sd = (positions.iter().map(|p| (p.kld - 0.245).powi(2)).sum::<f64>() / 49.0).sqrt();
        assert!((r.kld.mean.err - sd / 50f64.sqrt()).abs() < 1e-12);
        // NLLs that move together: correlation 1, and the ratio's error is far below
        // what independent errors would give.
        assert!((r.nll_correlation - 1.0).abs() < 1e-9, "{}", r.nll_correlation);
        let independent = (r.ppl.err / r.ppl.value).hypot(r.ppl_base.err / r.ppl_base.value);
        assert!(r.ln_ppl_ratio.err < 0.2 * independent);
        assert!(summarize(&[], 8, 0).is_err());
    }
}
