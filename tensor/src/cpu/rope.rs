//! Rotary position embedding. x: (..., T, D); cos, sin: (T, D/2).
//! Interleaved pairs rotate (x[2i], x[2i+1]) (GGUF/GPT-J); split halves rotate
//! (x[i], x[i + D/2]) (HF/NeoX). Angle i of position t is given by cos[t, i], sin[t, i].

use super::{float_only, parallel, rows_per_task};
use crate::error::Result;
use crate::ops::RopeConvention;
use crate::storage::CpuStorage;
use crate::Layout;
use rayon::prelude::*;

pub fn rope(
    x: &CpuStorage,
    lx: &Layout,
    cos: &CpuStorage,
    lc: &Layout,
    sin: &CpuStorage,
    ls: &Layout,
    convention: RopeConvention,
) -> Result<CpuStorage> {
    float_only("rope", x.dtype())?;
    let r = lx.rank();
    let (t, d) = (lx.shape()[r - 2], lx.shape()[r - 1]);
    let half = d / 2;
    let xv = x.f32_view(lx);
    let (cv, sv) = (cos.f32_view(lc), sin.f32_view(ls));
    let mut out = vec![0f32; xv.len()];
    if d > 0 {
        let per = rows_per_task(d);
        parallel::install(|| {
            out.par_chunks_mut(per * d).zip(xv.par_chunks(per * d)).enumerate().for_each(|(task, (o, x))| {
                for (j, (o, x)) in o.chunks_mut(d).zip(x.chunks(d)).enumerate() {
                    let pos = (task * per + j) % t;
                    let (c, s) = (&cv[pos * half..(pos + 1) * half], &sv[pos * half..(pos + 1) * half]);
                    for i in 0..half {
                        let (a, b) = match convention {
                            RopeConvention::Interleaved => (2 * i, 2 * i + 1),
                            RopeConvention::SplitHalves => (i, i + half),
                        };
                        o[a] = x[a] * c[i] - x[b] * s[i];
                        o[b] = x[a] * s[i] + x[b] * c[i];
                    }
                }
            })
        });
    }
    Ok(CpuStorage::from_f32(x.dtype(), out))
}
