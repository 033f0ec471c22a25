//! One decoder block's forward pass, with every family's options:
//!
//! ```text
//! h = norm(x)                                  attn_norm
//! q, k, v = h Wq, h Wk, h Wv                   (or one fused qkv projection; + biases)
//! q, k = norm_head(q), norm_head(k)            per-head RMSNorm (Qwen3, Gemma 3)
//! q, k = rope(q), rope(k)                      this layer's base (Gemma 3's local layers)
//! a = attention(q, k, v)                       causal; sliding window; soft-capped scores
//! x = x + post_norm(a Wo)                      post_norm only in Gemma
//! h = norm(x)                                  ffn_norm
//! x = x + post_norm(down(act(h Wg) * h Wu))    SiLU or GELU; gate/up fused in Phi-3
//! ```

use super::{Llama, Pass};
use crate::error::Result;
use crate::llama::{Activation, LlamaConfig};
use crate::lora::{dropout_seed, Target};
use lamina_tensor::{rope_tables, scaled_dot_product_attention, DType, Device, Tensor};

/// What every layer of one forward pass shares: the RoPE tables of each base in use and,
/// for sliding-window layers, the mask that hides keys beyond the window.
pub(super) struct PassContext {
    /// (base, cos, sin), one entry per distinct base.
    ropes: Vec<(f32, Tensor, Tensor)>,
    /// (Tq, Tk) additive mask: -inf where a key is `window` or more positions back.
    window_mask: Option<Tensor>,
    /// (Tq, Tk) additive causal mask, for the composed (soft-capped) attention.
    causal_mask: Option<Tensor>,
    start: usize,
}

impl PassContext {
    /// For `t` new positions after `start` cached ones.
    pub(super) fn new(c: &LlamaConfig, start: usize, t: usize, device: Device) -> Result<PassContext> {
        let mut ropes: Vec<(f32, Tensor, Tensor)> = Vec::new();
        for layer in 0..c.n_layers {
            let base = c.rope_base_of(layer);
            if !ropes.iter().any(|(b, _, _)| *b == base) {
                let (cos, sin) = rope_tables(start, t, c.head_dim, base, DType::F32)?;
                ropes.push((base, cos.to_device(device)?, sin.to_device(device)?));
            }
        }
        let mask = |hide: &dyn Fn(usize, usize) -> bool| -> Result<Tensor> {
            let tk = start + t;
            let v: Vec<f32> =
                (0..t * tk).map(|idx| if hide(start + idx / tk, idx % tk) { f32::NEG_INFINITY } else { 0.0 }).collect();
            Ok(Tensor::from_f32s(v, &[t, tk], DType::F32)?.to_device(device)?)
        };
        let window_mask = match c.sliding_window {
            Some(w) => Some(mask(&|pos, key| key + w <= pos)?),
            None => None,
        };
        let causal_mask = match c.attn_softcap {
            Some(_) => Some(mask(&|pos, key| key > pos)?),
            None => None,
        };
        Ok(PassContext { ropes, window_mask, causal_mask, start })
    }

    fn rope(&self, base: f32) -> (&Tensor, &Tensor) {
        let (_, cos, sin) = self.ropes.iter().find(|(b, _, _)| *b == base).expect("every layer's base is in the table");
        (cos, sin)
    }
}

/// cap * tanh(x / cap).
pub(super) fn softcap(x: &Tensor, cap: f32) -> Result<Tensor> {
    Ok(x.scale(1.0 / cap)?.tanh()?.scale(cap)?)
}

impl Llama {
    /// One decoder block over x (batch * seq, dim). With a cache (inference, batch 1) the
    /// new keys and values extend it and attention covers the cached prefix; without one
    /// (training) attention is causal within each sequence. `Pass::Train`'s step seed
    /// seeds the adapters' dropout.
    pub(super) fn block(
        &self,
        layer: usize,
        x: &Tensor,
        shape: (usize, usize),
        ctx: &PassContext,
        pass: Pass,
    ) -> Result<Tensor> {
        let c = &self.config;
        let b = &self.blocks[layer];
        let (batch, t) = shape;
        let project = |target: Target, h: &Tensor| -> Result<Tensor> {
            let proj = b.proj(target).expect("the loader gives a block every projection its layout uses");
            let y = proj.forward(h)?;
            match b.lora.get(target) {
                Some(l) => Ok(y.add(&l.delta(h, pass.step_seed().map(|s| dropout_seed(s, layer, target)))?)?),
                None => Ok(y),
            }
        };
        // (B*T, heads * hd) -> (B, T, heads, hd), per-head norm, -> (B, heads, T, hd)
        let heads = |y: Tensor, n: usize, norm: Option<&Tensor>| -> Result<Tensor> {
            let y = y.reshape(&[batch, t, n, c.head_dim])?;
            let y = match norm {
                Some(w) => y.rms_norm(Some(w), c.norm_eps)?,
                None => y,
            };
            Ok(y.permute(&[0, 2, 1, 3])?)
        };
        let h = x.rms_norm(Some(&b.attn_norm), c.norm_eps)?;
        let (q, k, v) = if c.fused_qkv {
            let qkv = project(Target::Qkv, &h)?;
            let (qd, kvd) = (c.q_dim(), c.kv_dim());
            (qkv.narrow(1, 0, qd)?, qkv.narrow(1, qd, kvd)?, qkv.narrow(1, qd + kvd, kvd)?)
        } else {
            (project(Target::Q, &h)?, project(Target::K, &h)?, project(Target::V, &h)?)
        };
        let (cos, sin) = ctx.rope(c.rope_base_of(layer));
        let q = heads(q, c.n_heads, b.q_norm.as_ref())?.rope(cos, sin, c.rope_convention)?;
        let k = heads(k, c.n_kv_heads, b.k_norm.as_ref())?.rope(cos, sin, c.rope_convention)?;
        let v = heads(v, c.n_kv_heads, None)?;
        let (k_all, v_all) = match pass {
            Pass::Cached(cache) => cache.append(layer, &k, &v)?,
            Pass::Train { .. } => (k, v),
        };
        let window = c.window(layer).and(ctx.window_mask.as_ref());
        let a = match c.attn_softcap {
            None => scaled_dot_product_attention(&q, &k_all, &v_all, window, true, c.attn_scale)?,
            Some(cap) => softcapped_attention(c, &q, &k_all, &v_all, ctx, window, cap)?,
        };
        let a = a.permute(&[0, 2, 1, 3])?.reshape(&[batch * t, c.q_dim()])?;
        let x = x.add(&post_norm(project(Target::O, &a)?, b.post_attn_norm.as_ref(), c.norm_eps)?)?;
        let h = x.rms_norm(Some(&b.ffn_norm), c.norm_eps)?;
        let (gate, up) = if c.fused_gate_up {
            let gu = project(Target::GateUp, &h)?;
            (gu.narrow(1, 0, c.ffn_dim)?, gu.narrow(1, c.ffn_dim, c.ffn_dim)?)
        } else {
            (project(Target::Gate, &h)?, project(Target::Up, &h)?)
        };
        let gate = match c.activation {
            Activation::Silu => gate.silu()?,
            Activation::GeluTanh => gate.gelu_tanh()?,
            Activation::GeluErf => gate.gelu_erf()?,
        };
        let y = project(Target::Down, &gate.mul(&up)?)?;
        Ok(x.add(&post_norm(y, b.post_ffn_norm.as_ref(), c.norm_eps)?)?)
    }
}

fn post_norm(y: Tensor, norm: Option<&Tensor>, eps: f32) -> Result<Tensor> {
    Ok(match norm {
        Some(w) => y.rms_norm(Some(w), eps)?,
        None => y,
    })
}

/// softmax(mask + cap * tanh(q k^T * scale / cap)) v, composed from tensor ops (Gemma 2's
/// soft-capped scores do not fit the fused attention kernel; small models only pay for
/// it). q: (B, Hq, Tq, D); k, v: (B, Hkv, Tk, D) with their heads repeated for each group
/// of query heads.
fn softcapped_attention(
    c: &LlamaConfig,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    ctx: &PassContext,
    window: Option<&Tensor>,
    cap: f32,
) -> Result<Tensor> {
    let [b, hkv, tk, d] = [k.shape()[0], k.shape()[1], k.shape()[2], k.shape()[3]];
    let group = c.n_heads / c.n_kv_heads;
    let repeat = |x: &Tensor| -> Result<Tensor> {
        if group == 1 {
            return Ok(x.clone());
        }
        Ok(x.unsqueeze(2)?.broadcast_to(&[b, hkv, group, tk, d])?.reshape(&[b, hkv * group, tk, d])?)
    };
    let scale = c.attn_scale.unwrap_or(1.0 / (d as f32).sqrt());
    let scores = softcap(&q.matmul(&repeat(k)?.transpose(-2, -1)?)?.scale(scale)?, cap)?;
    let causal = ctx.causal_mask.as_ref().expect("made for soft-capped models");
    debug_assert_eq!(causal.shape()[1], ctx.start + q.shape()[2]);
    let mut scores = scores.add(causal)?;
    if let Some(w) = window {
        scores = scores.add(w)?;
    }
    Ok(scores.softmax(-1)?.matmul(&repeat(v)?)?)
}
