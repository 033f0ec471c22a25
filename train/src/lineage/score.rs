//! One measure for every model of the lineage: validation bits per character. Each model
//! scores characters 1..n of the validation text, each once (the first is context only:
//! a causal model has nothing to predict it from), with as much of the text before it as
//! the model can use. This file holds the layout the windowed models share.

use lamina_tensor::{no_grad, Result, Tensor};
use std::f64::consts::LN_2;

/// Summed negative log-likelihood and how many tokens it covers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    pub nats: f64,
    pub count: usize,
}

impl Score {
    pub fn add(&mut self, other: Score) {
        self.nats += other.nats;
        self.count += other.count;
    }

    pub fn nats_per_token(&self) -> f64 {
        self.nats / self.count as f64
    }

    pub fn bits_per_token(&self) -> f64 {
        self.nats_per_token() / LN_2
    }
}

/// Rows of `len` inputs over a token stream, each starting `len - overlap` after the one
/// before; the first row scores every target, the others only their last `len - overlap`
/// (the first `overlap` positions are context), so every target 1..n is scored once and,
/// past the first row, after at least `overlap` tokens of context. Past the end, inputs
/// are 0 and targets -1 (not scored). Targets are the inputs shifted by one.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    pub inputs: Vec<i32>,  // (rows, len)
    pub targets: Vec<i32>, // (rows, len), -1: not scored
    pub rows: usize,
    pub len: usize,
}

pub fn overlapping_rows(tokens: &[u32], len: usize, overlap: usize) -> Rows {
    assert!(len > overlap, "rows of {len} cannot overlap by {overlap}");
    let targets_total = tokens.len().saturating_sub(1);
    let stride = len - overlap;
    let rows = 1 + targets_total.saturating_sub(len).div_ceil(stride);
    let mut inputs = vec![0i32; rows * len];
    let mut targets = vec![-1i32; rows * len];
    for r in 0..rows {
        let start = r * stride;
        let first_scored = if r == 0 { 0 } else { overlap };
        for j in 0..len {
            let i = start + j; // input position; its target is i + 1
            if i < tokens.len() {
                inputs[r * len + j] = tokens[i] as i32;
            }
            if j >= first_scored && i + 1 < tokens.len() {
                targets[r * len + j] = tokens[i + 1] as i32;
            }
        }
    }
    Rows { inputs, targets, rows, len }
}

/// Summed cross-entropy of `logits` (N, V) against `targets` (N, -1: not scored).
pub fn score_logits(logits: &Tensor, targets: &[i32]) -> Result<Score> {
    let count = targets.iter().filter(|&&t| t >= 0).count();
    if count == 0 {
        return Ok(Score::default());
    }
    let t = Tensor::from_vec(targets.to_vec(), &[targets.len()])?;
    let mean = no_grad(|| logits.cross_entropy(&t, -1)?.to_scalar_f32())?;
    Ok(Score { nats: mean as f64 * count as f64, count })
}

/// Score `rows` through a model that maps ids (B, len) to logits (B, len, V), `batch`
/// rows at a time.
pub fn score_rows(rows: &Rows, batch: usize, logits_of: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Score> {
    let mut total = Score::default();
    let mut r = 0;
    while r < rows.rows {
        let b = batch.min(rows.rows - r);
        let span = r * rows.len..(r + b) * rows.len;
        let ids = Tensor::from_vec(rows.inputs[span.clone()].to_vec(), &[b, rows.len])?;
        let logits = no_grad(|| logits_of(&ids))?; // (b, len, V)
        let v = logits.shape()[2];
        total.add(score_logits(&logits.reshape(&[b * rows.len, v])?, &rows.targets[span])?);
        r += b;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_scored_once_after_enough_context() {
        for n in [1usize, 2, 5, 8, 9, 10, 23, 100] {
            let tokens: Vec<u32> = (0..n as u32).collect();
            let rows = overlapping_rows(&tokens, 8, 3);
            let mut seen = vec![0; n];
            for r in 0..rows.rows {
                for j in 0..8 {
                    let t = rows.targets[r * 8 + j];
                    if t >= 0 {
                        assert_eq!(t, rows.inputs[r * 8 + j] + 1, "targets follow inputs");
                        assert!(r == 0 || j >= 3, "row {r} scores a context position");
                        seen[t as usize] += 1;
                    }
                }
            }
            assert_eq!(seen.first().copied().unwrap_or(0), 0, "token 0 is context only");
            assert!(seen.iter().skip(1).all(|&c| c == 1), "n {n}: {seen:?}");
        }
    }

    #[test]
    fn score_of_uniform_logits_is_log_v() {
        let logits = Tensor::zeros(&[3, 4], lamina_tensor::DType::F32).unwrap();
        let s = score_logits(&logits, &[1, -1, 3]).unwrap();
        assert_eq!(s.count, 2);
        assert!((s.nats - 2.0 * 4f64.ln()).abs() < 1e-5);
        assert!((s.bits_per_token() - 2.0).abs() < 1e-5);
    }
}
