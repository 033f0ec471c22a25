//! Fused scaled-dot-product attention forward, blocked over queries: for each (batch,
//! head) and each block of up to `QBLOCK` queries, the scores S = scale Q K^T are one GEMM
//! into a (block, Tk) buffer, the rows get the mask and a softmax in place, and the output
//! O = P V is a second GEMM. The full (Tq, Tk) score matrix never exists, and both products
//! run at GEMM speed rather than as one short dot product per (query, key).
//!
//! q: (B, Hq, Tq, D), k: (B, Hkv, Tk, D), v: (B, Hkv, Tk, Dv), grouped-query heads:
//! query head h reads key/value head h / (Hq / Hkv). Causal masking aligns the last
//! query with the last key (query i sees keys j <= i + Tk - Tq), as in KV-cache decode;
//! keys no query of a block can see are skipped entirely.

use super::gemm::{sgemm, MatRef};
use super::{float_only, isa, parallel, simd};
use crate::error::Result;
use crate::storage::{filled, CpuStorage};
use crate::Layout;
use rayon::prelude::*;

/// Queries per block: the score buffer is QBLOCK x Tk floats (256 KiB at Tk = 1024).
const QBLOCK: usize = 64;

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
    let qv = q.0.f32_view(q.1);
    let (kh, vh) = (Heads::new(k.0, k.1), Heads::new(v.0, v.1));
    let (kv, vv) = (&kh.data, &vh.data);
    // The mask arrives broadcast to (B, Hq, Tq, Tk).
    let mv = mask.map(|(s, l)| s.f32_view(l));
    let isa = isa::active();
    if dv == 0 || tq == 0 {
        return Ok(CpuStorage::from_f32(q.0.dtype(), out));
    }
    parallel::install(|| {
        out.par_chunks_mut(tq * dv).enumerate().for_each(|(bh, out_head)| {
            let (bi, h) = (bh / hq, bh % hq);
            let (k_off, v_off) = (kh.offset(bi, h / group), vh.offset(bi, h / group));
            out_head.par_chunks_mut(QBLOCK * dv).enumerate().for_each(|(blk, o)| {
                let i0 = blk * QBLOCK;
                let rows = o.len() / dv;
                // Keys the last query of the block may see; later keys are skipped.
                let visible = if causal { (i0 + rows + tk).saturating_sub(tq).min(tk) } else { tk };
                if visible == 0 {
                    // No keys at all (Tk = 0): an empty weighted sum, zeros (as P V with an
                    // empty inner dim). `o` is already zero.
                    return;
                }
                let mut s = vec![0f32; rows * visible];
                let qm = MatRef { data: &qv, offset: (bh * tq + i0) * d, row_stride: d, col_stride: 1 };
                // K^T: element (p, j) = k[j, p].
                let kt = MatRef { data: kv, offset: k_off, row_stride: 1, col_stride: d };
                sgemm(isa, rows, visible, d, scale, qm, kt, 0.0, &mut s, visible);
                let mut p = vec![0f32; visible];
                for (r, srow) in s.chunks_mut(visible).enumerate() {
                    let i = i0 + r;
                    if let Some(m) = &mv {
                        let mrow = &m[(bh * tq + i) * tk..(bh * tq + i) * tk + visible];
                        srow.iter_mut().zip(mrow).for_each(|(x, &mv)| *x += mv);
                    }
                    if causal {
                        let last = i + tk - tq; // the last key query i sees
                        srow.iter_mut().skip(last + 1).for_each(|x| *x = f32::NEG_INFINITY);
                    }
                    simd::softmax_row(isa, srow, &mut p, simd::Store::Cached);
                    srow.copy_from_slice(&p);
                }
                let pm = MatRef { data: &s, offset: 0, row_stride: visible, col_stride: 1 };
                let vm = MatRef { data: vv, offset: v_off, row_stride: dv, col_stride: 1 };
                sgemm(isa, rows, dv, visible, 1.0, pm, vm, 0.0, o, dv);
            })
        })
    });
    Ok(CpuStorage::from_f32(q.0.dtype(), out))
}

/// The (T, D) matrices of a (B, H, T, D) tensor: read in place when each matrix is dense
/// (a KV cache narrowed to its filled positions is, though heads are farther apart than
/// T * D), gathered into a contiguous copy otherwise.
struct Heads<'a> {
    data: std::borrow::Cow<'a, [f32]>,
    base: usize,
    batch_stride: usize,
    head_stride: usize,
}

impl<'a> Heads<'a> {
    fn new(s: &'a CpuStorage, l: &Layout) -> Heads<'a> {
        let (sh, st) = (l.shape(), l.strides());
        if let (Some(all), true) = (s.as_f32_slice(), st[3] == 1 && (st[2] == sh[3] || sh[2] <= 1)) {
            return Heads {
                data: std::borrow::Cow::Borrowed(all),
                base: l.offset(),
                batch_stride: st[0],
                head_stride: st[1],
            };
        }
        let (h, t, d) = (sh[1], sh[2], sh[3]);
        Heads { data: s.f32_view(l), base: 0, batch_stride: h * t * d, head_stride: t * d }
    }

    fn offset(&self, b: usize, h: usize) -> usize {
        self.base + b * self.batch_stride + h * self.head_stride
    }
}
