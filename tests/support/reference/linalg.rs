//! Batched matmul and scaled-dot-product attention, as the textbook triple loops.

use crate::tensor::{broadcast_shape, RefTensor};

/// Swap the last two dims (a copy).
pub fn transpose_last(x: &RefTensor) -> RefTensor {
    let r = x.rank();
    let mut shape = x.shape.clone();
    shape.swap(r - 2, r - 1);
    RefTensor::from_fn(&shape, |i| {
        let mut j = i.to_vec();
        j.swap(r - 2, r - 1);
        x.at(&j)
    })
}

/// (..., m, k) @ (..., k, n) -> (..., m, n); the batch dims broadcast.
pub fn matmul(a: &RefTensor, b: &RefTensor) -> RefTensor {
    let (ra, rb) = (a.rank(), b.rank());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    assert_eq!(k, b.shape[rb - 2], "matmul: inner dims differ");
    let batch = broadcast_shape(&a.shape[..ra - 2], &b.shape[..rb - 2]).expect("matmul: batch dims do not broadcast");
    let mut shape = batch.clone();
    shape.extend([m, n]);
    RefTensor::from_fn(&shape, |idx| {
        let (bi, i, j) = (&idx[..idx.len() - 2], idx[idx.len() - 2], idx[idx.len() - 1]);
        let mut ia: Vec<usize> = bi.to_vec();
        ia.extend([i, 0]);
        let mut ib: Vec<usize> = bi.to_vec();
        ib.extend([0, j]);
        (0..k)
            .map(|p| {
                let (la, lb) = (ia.len(), ib.len());
                ia[la - 1] = p;
                ib[lb - 2] = p;
                a.at_broadcast(&ia) * b.at_broadcast(&ib)
            })
            .sum()
    })
}

/// softmax(q k^T * scale + mask) v with grouped-query heads: q (B, Hq, Tq, D),
/// k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv); query head h reads key/value head
/// h / (Hq / Hkv). `mask` broadcasts to (B, Hq, Tq, Tk) and is added to the scores.
/// Causal: query i sees keys j <= i + Tk - Tq (the last query aligned with the last key).
/// `scale` defaults to 1/sqrt(D).
pub fn attention(
    q: &RefTensor,
    k: &RefTensor,
    v: &RefTensor,
    mask: Option<&RefTensor>,
    causal: bool,
    scale: Option<f64>,
) -> RefTensor {
    let (b, hq, tq, d) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3]);
    let (hkv, tk, dv) = (k.shape[1], k.shape[2], v.shape[3]);
    let group = hq / hkv;
    let scale = scale.unwrap_or(1.0 / (d as f64).sqrt());
    let mut out = RefTensor::zeros(&[b, hq, tq, dv]);
    for bi in 0..b {
        for h in 0..hq {
            let kh = h / group;
            for i in 0..tq {
                let scores: Vec<f64> = (0..tk)
                    .map(|j| {
                        if causal && j + tq > i + tk {
                            return f64::NEG_INFINITY;
                        }
                        let dot: f64 = (0..d).map(|c| q.at(&[bi, h, i, c]) * k.at(&[bi, kh, j, c])).sum();
                        dot * scale + mask.map_or(0.0, |m| m.at_broadcast(&[bi, h, i, j]))
                    })
                    .collect();
                let mx = scores.iter().fold(f64::NEG_INFINITY, |a, &s| a.max(s));
                let e: Vec<f64> = scores.iter().map(|&s| (s - mx).exp()).collect();
                let sum: f64 = e.iter().sum();
                for c in 0..dv {
                    let o: f64 = (0..tk).map(|j| e[j] / sum * v.at(&[bi, kh, j, c])).sum();
                    out.data[((bi * hq + h) * tq + i) * dv + c] = o;
                }
            }
        }
    }
    out
}
