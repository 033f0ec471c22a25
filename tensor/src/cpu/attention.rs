//! Fused scaled-dot-product attention forward: one task per query row, the score row
//! kept in a small buffer (never a (T, T) matrix), softmax and the weighted sum of values
//! done while the row is in cache.
//!
//! q: (B, Hq, Tq, D), k: (B, Hkv, Tk, D), v: (B, Hkv, Tk, Dv), grouped-query heads:
//! query head h reads key/value head h / (Hq / Hkv). Causal masking aligns the last
//! query with the last key (query i sees keys j <= i + Tk - Tq), as in KV-cache decode.

use super::{float_only, isa, parallel, simd};
use crate::error::Result;
use crate::storage::{filled, CpuStorage};
use crate::Layout;
use rayon::prelude::*;

#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: (&CpuStorage, &Layout),
    k: (&CpuStorage, &Layout),
    v: (&CpuStorage, &Layout),
    mask: Option<(&CpuStorage, &Layout)>,
    causal: bool,
    scale: f32,
) -> Result<CpuStorage> {
    float_only("attention", q.0.dtype())?;
    let (b, hq, tq, d) = (q.1.shape()[0], q.1.shape()[1], q.1.shape()[2], q.1.shape()[3]);
    let (hkv, tk, dv) = (k.1.shape()[1], k.1.shape()[2], v.1.shape()[3]);
    let group = hq / hkv;
    let mut out = filled(b * hq * tq * dv, 0f32)?;
    let (qv, kv, vv) = (q.0.f32_view(q.1), k.0.f32_view(k.1), v.0.f32_view(v.1));
    // The mask arrives broadcast to (B, Hq, Tq, Tk).
    let mv = mask.map(|(s, l)| s.f32_view(l));
    let isa = isa::active();
    if dv > 0 {
        parallel::install(|| {
            out.par_chunks_mut(dv).enumerate().for_each_init(
                || (vec![0f32; tk], vec![0f32; tk]),
                |(scores, p), (row, o)| {
                    let (bh, i) = (row / tq, row % tq);
                    let (bi, h) = (bh / hq, bh % hq);
                    let kvh = bi * hkv + h / group;
                    let qrow = &qv[row * d..(row + 1) * d];
                    let visible = if causal { (i + 1 + tk).saturating_sub(tq).min(tk) } else { tk };
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = if j < visible {
                            let krow = &kv[(kvh * tk + j) * d..(kvh * tk + j + 1) * d];
                            let mut val = simd::dot(isa, qrow, krow) * scale;
                            if let Some(m) = &mv {
                                val += m[row * tk + j];
                            }
                            val
                        } else {
                            f32::NEG_INFINITY
                        };
                    }
                    simd::softmax_row(isa, scores, p);
                    o.iter_mut().for_each(|x| *x = 0.0);
                    for (j, &pj) in p.iter().enumerate().take(visible) {
                        if pj != 0.0 {
                            simd::axpy(isa, pj, &vv[(kvh * tk + j) * dv..(kvh * tk + j + 1) * dv], o);
                        }
                    }
                },
            )
        });
    }
    Ok(CpuStorage::from_f32(q.0.dtype(), out))
}
