//! Fused neural-network ops: softmax, norms, cross-entropy, embedding, RoPE, attention,
//! dropout. Each has a fused forward kernel per backend; their backward rules are in
//! `autograd/grad.rs`, the fused ones through `nn_backward.rs`.

use crate::autograd::Op;
use crate::error::{invalid, Error, Result};
use crate::layout::resolve_axis;
use crate::ops::shape::index_values;
use crate::{DType, Layout, Tensor};

/// How RoPE pairs up the features of a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RopeConvention {
    /// (x[2i], x[2i+1]): GGUF / GPT-J / Meta's original LLaMA.
    Interleaved,
    /// (x[i], x[i + d/2]): Hugging Face / GPT-NeoX.
    SplitHalves,
}

impl Tensor {
    /// Softmax along `dim`, max-subtracted so large logits do not overflow.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, false)
    }

    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, true)
    }

    fn softmax_impl(&self, dim: isize, log: bool) -> Result<Tensor> {
        self.check_float("softmax")?;
        let r = self.rank().max(1);
        let d = resolve_axis("softmax", dim, r)?;
        if self.rank() == 0 {
            return self.reshape(&[1])?.softmax_impl(0, log)?.reshape(&[]);
        }
        if d != r - 1 {
            // Move `dim` last (a view), apply, move it back.
            return self.transpose(d as isize, -1)?.softmax_impl(-1, log)?.transpose(d as isize, -1);
        }
        let out = self.storage().softmax_last(self.layout(), log)?;
        let x = self.clone();
        Ok(Tensor::from_kernel(
            out,
            self.shape(),
            || if log { Op::LogSoftmax { x } } else { Op::Softmax { x } },
            &[self],
        ))
    }

    fn check_param(&self, op: &'static str, p: Option<&Tensor>) -> Result<()> {
        if let Some(p) = p {
            self.check_same_dtype(op, p)?; // also checks the device
            let d = *self.shape().last().unwrap_or(&0);
            if p.shape() != [d] {
                return Err(Error::ShapeMismatch { op, lhs: self.shape().to_vec(), rhs: p.shape().to_vec() });
            }
        }
        Ok(())
    }

    /// (x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased variance).
    pub fn layer_norm(&self, weight: Option<&Tensor>, bias: Option<&Tensor>, eps: f32) -> Result<Tensor> {
        self.check_float("layer_norm")?;
        if self.rank() == 0 {
            return Err(invalid("layer_norm", "needs rank >= 1"));
        }
        self.check_param("layer_norm", weight)?;
        self.check_param("layer_norm", bias)?;
        let (w, b) = (weight.map(|t| t.storage()), bias.map(|t| t.storage()));
        let (w, b) = (w.as_deref().zip(weight.map(Tensor::layout)), b.as_deref().zip(bias.map(Tensor::layout)));
        let (y, mean, rstd) = self.storage().layer_norm(self.layout(), w, b, eps)?;
        let stat_shape = stats_shape(self.shape());
        // Row statistics stay f32 whatever x's dtype: the backward needs them exact.
        let mean = Tensor::from_storage(mean, Layout::contiguous(&stat_shape), None);
        let rstd = Tensor::from_storage(rstd, Layout::contiguous(&stat_shape), None);
        let mut inputs = vec![self];
        inputs.extend(weight);
        inputs.extend(bias);
        Ok(Tensor::from_kernel(
            y,
            self.shape(),
            || Op::LayerNorm { x: self.clone(), weight: weight.cloned(), bias: bias.cloned(), mean, rstd },
            &inputs,
        ))
    }

    /// x / sqrt(mean(x^2) + eps) * weight over the last dim.
    pub fn rms_norm(&self, weight: Option<&Tensor>, eps: f32) -> Result<Tensor> {
        self.check_float("rms_norm")?;
        if self.rank() == 0 {
            return Err(invalid("rms_norm", "needs rank >= 1"));
        }
        self.check_param("rms_norm", weight)?;
        let w = weight.map(|t| t.storage());
        let (y, rstd) = self.storage().rms_norm(self.layout(), w.as_deref().zip(weight.map(Tensor::layout)), eps)?;
        let rstd = Tensor::from_storage(rstd, Layout::contiguous(&stats_shape(self.shape())), None);
        let mut inputs = vec![self];
        inputs.extend(weight);
        Ok(Tensor::from_kernel(
            y,
            self.shape(),
            || Op::RmsNorm { x: self.clone(), weight: weight.cloned(), rstd },
            &inputs,
        ))
    }

    /// Mean cross-entropy of logits (N, C) against integer targets (N), skipping rows
    /// whose target is `ignore_index`. Returns a 0-d f32 tensor (NaN if all are ignored).
    pub fn cross_entropy(&self, targets: &Tensor, ignore_index: i64) -> Result<Tensor> {
        self.check_float("cross_entropy")?;
        if self.rank() != 2 || targets.rank() != 1 || targets.shape()[0] != self.shape()[0] {
            return Err(Error::ShapeMismatch {
                op: "cross_entropy",
                lhs: self.shape().to_vec(),
                rhs: targets.shape().to_vec(),
            });
        }
        let t = index_values("cross_entropy", targets)?;
        let out = self.storage().cross_entropy(self.layout(), &t, ignore_index)?;
        Ok(Tensor::from_kernel(
            out,
            &[],
            || Op::CrossEntropy { logits: self.clone(), targets: targets.clone(), ignore_index },
            &[self],
        ))
    }

    /// Rows of an embedding table (V, D) for integer ids of any shape: (ids..., D).
    /// The backward scatter-adds into the table.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(invalid("embedding", format!("table must be (vocab, dim), got {:?}", self.shape())));
        }
        let flat = ids.flatten_all()?;
        let rows = self.index_select(0, &flat)?;
        let mut shape = ids.shape().to_vec();
        shape.push(self.shape()[1]);
        rows.reshape(&shape)
    }

    /// Rotate feature pairs of x (..., T, D) by the angles in cos/sin (T, D/2).
    pub fn rope(&self, cos: &Tensor, sin: &Tensor, convention: RopeConvention) -> Result<Tensor> {
        self.check_float("rope")?;
        self.check_same_dtype("rope", cos)?;
        self.check_same_dtype("rope", sin)?;
        let r = self.rank();
        if r < 2 || !self.shape()[r - 1].is_multiple_of(2) {
            return Err(invalid("rope", format!("x must be (..., T, D) with even D, got {:?}", self.shape())));
        }
        let want = [self.shape()[r - 2], self.shape()[r - 1] / 2];
        for t in [cos, sin] {
            if t.shape() != want {
                return Err(Error::ShapeMismatch { op: "rope", lhs: want.to_vec(), rhs: t.shape().to_vec() });
            }
        }
        let (c, s) = (cos.storage(), sin.storage());
        let out = self.storage().rope(self.layout(), (&c, cos.layout()), (&s, sin.layout()), convention)?;
        Ok(Tensor::from_kernel(
            out,
            self.shape(),
            || Op::Rope { x: self.graph_link(), cos: cos.clone(), sin: sin.clone(), convention },
            &[self],
        ))
    }

    /// Zero each element with probability `p` and scale the rest by 1/(1-p). The mask is
    /// a pure function of `seed` and the element's row-major index (element i is kept when
    /// `uniform_at(seed, i) >= p`), so the tape records only (p, seed): the backward rule
    /// regenerates the mask instead of keeping a tensor-sized one alive until backward.
    pub fn dropout(&self, p: f32, seed: u64) -> Result<Tensor> {
        if !(0.0..1.0).contains(&p) {
            return Err(invalid("dropout", format!("probability must be in [0, 1), got {p}")));
        }
        if p == 0.0 {
            return Ok(self.clone());
        }
        self.check_float("dropout")?;
        let out = self.storage().dropout(self.layout(), p, seed)?;
        Ok(Tensor::from_kernel(out, self.shape(), || Op::Dropout { x: self.graph_link(), p, seed }, &[self]))
    }
}

/// Shape of per-row statistics: the input's with the last dim set to 1.
fn stats_shape(shape: &[usize]) -> Vec<usize> {
    let mut s = shape.to_vec();
    if let Some(l) = s.last_mut() {
        *l = 1;
    }
    s
}

/// cos/sin tables (T, D/2) for positions `start..start+t`: angle i is
/// pos * base^(-2i/D).
pub fn rope_tables(start: usize, t: usize, d: usize, base: f32, dtype: DType) -> Result<(Tensor, Tensor)> {
    let half = d / 2;
    let mut cos = Vec::with_capacity(t * half);
    let mut sin = Vec::with_capacity(t * half);
    for pos in start..start + t {
        for i in 0..half {
            let theta = pos as f64 * (base as f64).powf(-2.0 * i as f64 / d as f64);
            cos.push(theta.cos() as f32);
            sin.push(theta.sin() as f32);
        }
    }
    Ok((Tensor::from_f32s(cos, &[t, half], dtype)?, Tensor::from_f32s(sin, &[t, half], dtype)?))
}

/// The additive mask (Tq, Tk) that attention applies: the user's mask plus -inf above
/// the causal diagonal. `None` when there is nothing to add.
pub(crate) fn sdpa_mask(
    mask: Option<&Tensor>,
    causal: bool,
    tq: usize,
    tk: usize,
    like: &Tensor,
) -> Result<Option<Tensor>> {
    let dtype = like.dtype();
    let mut m = mask.cloned();
    if causal {
        let shift = tk as isize - tq as isize;
        let v: Vec<f32> = (0..tq * tk)
            .map(|idx| {
                let (i, j) = ((idx / tk) as isize, (idx % tk) as isize);
                if j <= i + shift {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let c = Tensor::from_f32s(v, &[tq, tk], dtype)?.to_device(like.device())?;
        m = Some(match m {
            Some(user) => user.add(&c)?,
            None => c,
        });
    }
    Ok(m)
}

/// softmax(q k^T * scale + mask) v with causal masking and grouped-query heads.
/// q: (B, Hq, Tq, D), k: (B, Hkv, Tk, D), v: (B, Hkv, Tk, Dv) with Hq a multiple of Hkv;
/// mask broadcastable to (B, Hq, Tq, Tk); scale defaults to 1/sqrt(D).
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
    causal: bool,
    scale: Option<f32>,
) -> Result<Tensor> {
    q.check_float("attention")?;
    q.check_same_dtype("attention", k)?;
    q.check_same_dtype("attention", v)?;
    let bad = || Error::ShapeMismatch { op: "attention", lhs: q.shape().to_vec(), rhs: k.shape().to_vec() };
    if q.rank() != 4 || k.rank() != 4 || v.rank() != 4 {
        return Err(bad());
    }
    let (b, hq, tq, d) = (q.shape()[0], q.shape()[1], q.shape()[2], q.shape()[3]);
    let (hkv, tk) = (k.shape()[1], k.shape()[2]);
    if k.shape()[0] != b || k.shape()[3] != d || hkv == 0 || hq % hkv != 0 || v.shape()[..3] != k.shape()[..3] {
        return Err(bad());
    }
    if causal && tq > tk {
        return Err(invalid("attention", format!("causal attention needs Tq <= Tk, got {tq} > {tk}")));
    }
    let scale = scale.unwrap_or(1.0 / (d as f32).sqrt());
    let full = [b, hq, tq, tk];
    let mask_b = match mask {
        Some(m) => {
            q.check_same_dtype("attention", m)?;
            Some(m.broadcast_to(&full)?)
        }
        None => None,
    };
    let out = {
        let (ks, vs) = (k.storage(), v.storage());
        let ms = mask_b.as_ref().map(|m| m.storage());
        let mc = ms.as_deref().zip(mask_b.as_ref().map(Tensor::layout));
        q.storage().attention(q.layout(), (&ks, k.layout()), (&vs, v.layout()), mc, causal, scale)?
    };
    let mut inputs = vec![q, k, v];
    inputs.extend(mask);
    Ok(Tensor::from_kernel(
        out,
        &[b, hq, tq, v.shape()[3]],
        || Op::Attention { q: q.clone(), k: k.clone(), v: v.clone(), mask: mask.cloned(), causal, scale },
        &inputs,
    ))
}
