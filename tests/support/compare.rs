//! Comparing an engine result with the reference, ggml-style: normalised mean squared
//! error over the finite elements, the largest error relative to the output's scale (one
//! bad element among thousands barely moves the NMSE), and NaN/inf disagreements counted
//! separately, since a NaN is a different bug from an inaccuracy.

use lamina_tensor::DType;

/// Acceptance thresholds for one (op, dtype).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tol {
    /// Bound on sum((a - b)^2) / sum(b^2).
    pub nmse: f64,
    /// Bound on max|a - b| / max|b|.
    pub max_rel: f64,
}

impl Tol {
    /// Bit-exact agreement.
    pub const EXACT: Tol = Tol { nmse: 0.0, max_rel: 0.0 };

    /// `k` unit roundoffs u of `dtype` relative to the output's scale: max error
    /// <= k u max|b| and NMSE <= (k u)^2 (what per-element errors of k u would give).
    pub fn ulps(k: f64, dtype: DType) -> Tol {
        let e = k * dtype.epsilon();
        Tol { nmse: e * e, max_rel: e }
    }
}

/// How far `actual` is from `expected` (same length, row-major).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Comparison {
    pub n: usize,
    /// Over elements finite in both; 0 when there are none.
    pub nmse: f64,
    pub max_err: f64,
    /// max |scale| over finite elements: the result, or the scale given to `compare_on_scale`.
    pub scale: f64,
    /// Elements where exactly one side is NaN.
    pub nan_mismatch: usize,
    /// Elements where neither is NaN, one is infinite, and they differ.
    pub inf_mismatch: usize,
}

impl Comparison {
    /// max_err / scale (0 when both are 0, inf when only the error is nonzero).
    pub fn max_rel(&self) -> f64 {
        ratio(self.max_err, self.scale)
    }

    pub fn passes(&self, tol: Tol) -> bool {
        self.nan_mismatch == 0 && self.inf_mismatch == 0 && self.nmse <= tol.nmse && self.max_rel() <= tol.max_rel
    }
}

fn ratio(num: f64, den: f64) -> f64 {
    match (num == 0.0, den == 0.0) {
        (true, _) => 0.0,
        (false, true) => f64::INFINITY,
        (false, false) => num / den,
    }
}

pub fn compare(actual: &[f64], expected: &[f64]) -> Comparison {
    compare_on_scale(actual, expected, expected)
}

/// As `compare`, with errors measured relative to `scale` (same length) instead of the
/// result: max_rel = max|a - b| / max|scale|, nmse = sum (a - b)^2 / sum scale^2.
pub fn compare_on_scale(actual: &[f64], expected: &[f64], scale: &[f64]) -> Comparison {
    assert_eq!(actual.len(), expected.len(), "compare: lengths differ");
    assert_eq!(scale.len(), expected.len(), "compare: scale length differs");
    let mut c = Comparison { n: actual.len(), ..Default::default() };
    let (mut err2, mut ref2) = (0.0, 0.0);
    for ((&a, &b), &s) in actual.iter().zip(expected).zip(scale) {
        if a.is_nan() || b.is_nan() {
            c.nan_mismatch += (a.is_nan() != b.is_nan()) as usize;
        } else if a.is_infinite() || b.is_infinite() {
            c.inf_mismatch += (a != b) as usize;
        } else {
            let e = (a - b).abs();
            err2 += e * e;
            ref2 += s * s;
            c.max_err = c.max_err.max(e);
            c.scale = c.scale.max(s.abs());
        }
    }
    c.nmse = ratio(err2, ref2);
    c
}

/// Plain text table with aligned columns (for failure reports).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells.iter().zip(&width).map(|(c, &w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    out += &line(
        width
            .iter()
            .map(|&w| &"----------------------------------------------------------------"[..w.min(64)])
            .collect(),
    );
    for r in rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_inf_are_counted_apart() {
        let c = compare(&[1.0, f64::NAN, f64::INFINITY, 2.0, f64::NAN], &[1.0, 1.0, 5.0, 2.5, f64::NAN]);
        assert_eq!((c.nan_mismatch, c.inf_mismatch), (1, 1));
        assert_eq!(c.max_err, 0.5);
        assert!((c.nmse - 0.25 / (1.0 + 6.25)).abs() < 1e-15);
        assert!(!c.passes(Tol { nmse: 1.0, max_rel: 1.0 }));
        assert!(compare(&[0.0, f64::NEG_INFINITY], &[0.0, f64::NEG_INFINITY]).passes(Tol::EXACT));
    }
}
