//! Means and their standard errors, as lm-evaluation-harness reports them: the sample
//! standard deviation (n - 1 in the denominator) over the square root of n.

/// The mean of `values` and its standard error (None for fewer than two values).
pub fn mean_stderr(values: &[f64]) -> (f64, Option<f64>) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, Some((var / n as f64).sqrt()))
}

/// 1.0 for true, 0.0 for false: a rate is the mean of these.
pub fn indicator(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_of_a_rate_by_hand() {
        // 1, 0, 1, 1: mean 0.75, sample variance (3 * 0.0625 + 0.5625) / 3 = 0.25, stderr sqrt(0.25 / 4) = 0.25.
        let (m, s) = mean_stderr(&[1.0, 0.0, 1.0, 1.0]);
        assert_eq!(m, 0.75);
        assert!((s.unwrap() - 0.25).abs() < 1e-15);
        assert_eq!(mean_stderr(&[2.0]), (2.0, None));
        assert!(mean_stderr(&[]).0.is_nan());
    }
}
