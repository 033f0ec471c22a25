//! The AdamW update over one slice of parameters (`crate::optim::adamw_step` splits the
//! tensor over threads): portable and generic over the SIMD level. Both paths round op by
//! op in the same order (no FMA), so they agree bit for bit.

/// One step's constants: the hyperparameters and the bias corrections `1 - beta^t`.
#[derive(Clone, Copy, Debug)]
pub struct AdamWConsts {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub bc1: f32,
    pub bc2: f32,
}

/// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// p -= lr ((m / bc1) / (sqrt(v / bc2) + eps) + wd p), element by element.
pub(super) fn portable(h: &AdamWConsts, p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
    for i in 0..p.len() {
        m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g[i];
        v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g[i] * g[i];
        let update = (m[i] / h.bc1) / ((v[i] / h.bc2).sqrt() + h.eps);
        p[i] -= h.lr * (update + h.weight_decay * p[i]);
    }
}

/// The same update `V::LANES` elements at a time (a partial vector for the tail).
///
/// # Safety
/// Inside `V::with` on a CPU with the level; all four slices have the same length.
#[inline(always)]
pub(super) unsafe fn vector<V: super::vector::F32Vec>(
    h: &AdamWConsts,
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    g: &[f32],
) {
    let n = p.len();
    debug_assert!(m.len() == n && v.len() == n && g.len() == n);
    // SAFETY: every access is inside the four slices (i + len <= n).
    unsafe {
        let s = V::splat;
        let (b1, b2, c1, c2) = (s(h.beta1), s(h.beta2), s(1.0 - h.beta1), s(1.0 - h.beta2));
        let (bc1, bc2, eps, lr, wd) = (s(h.bc1), s(h.bc2), s(h.eps), s(h.lr), s(h.weight_decay));
        let (pp, pm, pv, pg) = (p.as_mut_ptr(), m.as_mut_ptr(), v.as_mut_ptr(), g.as_ptr());
        let mut i = 0;
        while i < n {
            let len = V::LANES.min(n - i);
            let (gi, mi, vi, pi) =
                (load::<V>(pg, i, len), load::<V>(pm, i, len), load::<V>(pv, i, len), load::<V>(pp, i, len));
            let mi = b1.mul(mi).add(c1.mul(gi));
            let vi = b2.mul(vi).add(c2.mul(gi).mul(gi));
            let update = mi.div(bc1).div(vi.div(bc2).sqrt().add(eps));
            let pi = pi.sub(lr.mul(update.add(wd.mul(pi))));
            for (x, ptr) in [(mi, pm), (vi, pv), (pi, pp)] {
                if len == V::LANES {
                    x.store(ptr.add(i))
                } else {
                    x.store_partial(ptr.add(i), len)
                }
            }
            i += len;
        }
    }
}

/// `len <= LANES` lanes at `p + i`.
#[inline(always)]
unsafe fn load<V: super::vector::F32Vec>(p: *const f32, i: usize, len: usize) -> V {
    // SAFETY: the caller's bounds; inside `V::with`.
    unsafe {
        if len == V::LANES {
            V::load(p.add(i))
        } else {
            V::load_partial(p.add(i), len)
        }
    }
}
