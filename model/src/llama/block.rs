//! One decoder block's forward pass, with every family's options:
//!
//! ```text
//! h = norm(x)                                  attn_norm
//! q, k, v = h Wq, h Wk, h Wv                   (or one fused qkv projection; + biases)
//! q, k = norm_head(q), norm_head(k)            per-head RMSNorm (Qwen3, Gemma 3)
//! q, k = rope(q), rope(k)                      this layer's base (Gemma 3's local layers)
//! a = attention(q, k, v)                       causal; sliding window; soft-capped scores
//! x = x + post_norm(adapter(a Wo))             post_norm only in Gemma; adapter: a bottleneck
//!                                              adapter's y + up(act(down(y))), where attached
//! h = norm(x)                                  ffn_norm
//! x = x + post_norm(adapter(down(act(h Wg) * h Wu)))   SiLU or GELU; gate/up fused in Phi-3
//! ```

use super::{Llama, Pass};
use crate::error::Result;
use crate::kv_cache::KvCache;
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
    /// New positions (rows) of the pass.
    len: usize,
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
        Ok(PassContext { ropes, window_mask, causal_mask, start, len: t })
    }

    /// The RoPE tables of several sequences' passes one after the other, for a batched
    /// pass over all their rows (each sequence's masks stay in its own context).
    pub(super) fn joined(parts: &[PassContext]) -> Result<PassContext> {
        let ropes = parts[0]
            .ropes
            .iter()
            .map(|(base, _, _)| {
                let (cos, sin): (Vec<&Tensor>, Vec<&Tensor>) = parts.iter().map(|p| p.rope(*base)).unzip();
                Ok((*base, Tensor::cat(&cos, 0)?, Tensor::cat(&sin, 0)?))
            })
            .collect::<Result<_>>()?;
        let len = parts.iter().map(|p| p.len).sum();
        Ok(PassContext { ropes, window_mask: None, causal_mask: None, start: 0, len })
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
    /// One decoder block over x (batch * seq, dim). With caches (inference, batch 1) x holds
    /// the new tokens of one or more sequences in turn: each sequence's keys and values
    /// extend its own cache and its attention covers its cached prefix. Without (training)
    /// attention is causal within each sequence. `Pass::Train`'s step seed
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
            let ia3 = b.ia3.get(target);
            let h = match ia3 {
                Some(v) => v.scale_input(h)?,
                None => h.clone(),
            };
            let mut y = proj.forward(&h)?;
            if let Some(l) = b.lora.get(target) {
                y = y.add(&l.delta(&h, pass.step_seed().map(|s| dropout_seed(s, layer, target)))?)?;
            }
            match ia3 {
                Some(v) => v.scale_output(y),
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
        let a = match pass {
            Pass::Cached(seqs) => attend_cached(c, layer, &q, &k, &v, seqs)?,
            Pass::Train { prefix: None, .. } => attend(c, layer, &q, &k, &v, ctx)?,
            Pass::Train { prefix: Some(p), .. } => {
                let (k, v) = self.prepend_prefix(p, layer, k, v)?;
                attend(c, layer, &q, &k, &v, ctx)?
            }
        };
        let a = a.permute(&[0, 2, 1, 3])?.reshape(&[batch * t, c.q_dim()])?;
        let y = b.bottleneck.after_attention(project(Target::O, &a)?)?;
        let x = x.add(&post_norm(y, b.post_attn_norm.as_ref(), c.norm_eps)?)?;
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
        let y = b.bottleneck.after_mlp(project(Target::Down, &gate.mul(&up)?)?)?;
        Ok(x.add(&post_norm(y, b.post_ffn_norm.as_ref(), c.norm_eps)?)?)
    }
}

/// Causal attention of q over k, v with the layer's window and score soft-cap.
fn attend(c: &LlamaConfig, layer: usize, q: &Tensor, k: &Tensor, v: &Tensor, ctx: &PassContext) -> Result<Tensor> {
    let window = c.window(layer).and(ctx.window_mask.as_ref());
    match c.attn_softcap {
        None => Ok(scaled_dot_product_attention(q, k, v, window, true, c.attn_scale)?),
        Some(cap) => softcapped_attention(c, q, k, v, ctx, window, cap),
    }
}

/// Attention of each sequence's new rows over its cache, after storing their keys and
/// values there. q (1, heads, T, hd), k and v (1, kv_heads, T, hd) hold every sequence's
/// rows in turn (`ctx.len` each); the result is (1, heads, T, hd) in the same order. One
/// sequence (plain generation) takes the tensors as they are; a batch splits them (views,
/// no copy) and joins the outputs.
fn attend_cached(
    c: &LlamaConfig,
    layer: usize,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    seqs: &[(&KvCache, &PassContext)],
) -> Result<Tensor> {
    if let [(cache, ctx)] = seqs {
        let (k_all, v_all) = cache.append(layer, k, v)?;
        return attend(c, layer, q, &k_all, &v_all, ctx);
    }
    let mut outs = Vec::with_capacity(seqs.len());
    let mut row = 0;
    for &(cache, ctx) in seqs {
        let part = |x: &Tensor| x.narrow(2, row, ctx.len);
        let (k_all, v_all) = cache.append(layer, &part(k)?, &part(v)?)?;
        outs.push(attend(c, layer, &part(q)?, &k_all, &v_all, ctx)?);
        row += ctx.len;
    }
    Ok(Tensor::cat(&outs.iter().collect::<Vec<_>>(), 2)?)
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
