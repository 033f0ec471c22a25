//! Gradient checks of the training forward: a tiny two-layer LLaMA (GQA, interleaved
//! RoPE, SwiGLU, tied head) with LoRA adapters on every projection, against central
//! finite differences of a plain f64 implementation written here from the architecture's
//! definition. Checks the adapters' gradients (LoRA training), IA³'s vectors (output- and
//! input-scaled), a soft prompt, prefixes (direct and through their MLP), the base
//! weights' gradients (full fine-tuning), and that adapters over
//! quantized blocks (QLoRA) get the gradients of adapters over the same weights in f32.

use lamina_model::bottleneck::{BottleneckAct, BottleneckConfig, Placement};
use lamina_model::ia3::{Ia3Config, Ia3Vector};
use lamina_model::llama::Llama;
use lamina_model::lora::{LoraConfig, LoraLayer, Target};
use lamina_model::prefix::{Prefix, PrefixTuningConfig};
use lamina_model::prompt::{PTuningConfig, PromptInit, PromptTuningConfig};
use lamina_model::qnn::{Proj, QLinear};
use lamina_model::LlamaConfig;
use lamina_tensor::quant::{GgmlType, QMatrix};
use lamina_tensor::{DType, Device, RopeConvention, Tensor};

use lamina_model::llama::IGNORE;

fn config() -> LlamaConfig {
    LlamaConfig {
        arch: "llama".into(),
        vocab_size: 11,
        dim: 8,
        n_layers: 2,
        n_heads: 2,
        n_kv_heads: 1,
        head_dim: 4,
        ffn_dim: 12,
        norm_eps: 1e-5,
        rope_base: 10000.0,
        rope_convention: RopeConvention::Interleaved,
        context_length: 16,
        qkv_bias: false,
        ..Default::default()
    }
}

const BATCH: usize = 2;
const TOKENS: [u32; 10] = [1, 4, 9, 2, 7, 3, 3, 10, 0, 5];
const LABELS: [i32; 10] = [4, 9, 2, 7, IGNORE, 3, 10, IGNORE, 5, 6];

fn vals(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f32>().unwrap().iter().map(|&v| v as f64).collect()
}

// ---- the f64 reference ------------------------------------------------------------------

/// Every tensor the reference reads, by name: base weights by their GGUF names, adapters
/// as `blk.{i}.{target}.lora_a` / `.lora_b`.
type Params = std::collections::BTreeMap<String, (Vec<f64>, Vec<usize>)>;

/// y (n, out) = x (n, in) W^T for W (out, in).
fn linear(x: &[f64], n: usize, w: &[f64], out: usize) -> Vec<f64> {
    let inp = w.len() / out;
    let mut y = vec![0.0; n * out];
    for r in 0..n {
        for o in 0..out {
            y[r * out + o] = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
        }
    }
    y
}

fn rms_norm(x: &[f64], dim: usize, w: &[f64], eps: f64) -> Vec<f64> {
    let mut y = x.to_vec();
    for row in y.chunks_mut(dim) {
        let ms = row.iter().map(|v| v * v).sum::<f64>() / dim as f64;
        let r = 1.0 / (ms + eps).sqrt();
        row.iter_mut().zip(w).for_each(|(v, w)| *v *= r * w);
    }
    y
}

fn reference_loss(p: &Params, c: &LlamaConfig, scale: f64) -> f64 {
    let get = |name: &str| &p[name].0;
    let (d, hd, nh, nkv) = (c.dim, c.head_dim, c.n_heads, c.n_kv_heads);
    // A soft prompt (prompt tuning), when there is one, comes before each row's tokens.
    let virtual_rows = &reference_prompt(p);
    let n_virtual = virtual_rows.len() / d;
    let seq = TOKENS.len() / BATCH + n_virtual;
    let n = seq * BATCH;
    let emb = get("token_embd.weight");
    let mut x: Vec<f64> = TOKENS
        .chunks(seq - n_virtual)
        .flat_map(|row| {
            let tokens = row.iter().flat_map(|&t| emb[t as usize * d..(t as usize + 1) * d].to_vec());
            virtual_rows.iter().copied().chain(tokens).collect::<Vec<_>>()
        })
        .collect();
    // Prefix tuning: K' keys and values per layer before every row's, (K', layers * 2 * kv_dim)
    // in PEFT's column order, given or made by the reparameterisation MLP.
    let prefix = reference_prefix(p);
    let n_prefix = prefix.len() / (c.n_layers * 2 * nkv * hd);
    // W (l_in ⊙ h) + s B A (l_in ⊙ h), then ⊙ l_out: LoRA and IA³ where the params hold them.
    let proj = |i: usize, t: Target, h: &[f64], out: usize| -> Vec<f64> {
        let module = t.gguf_module();
        let h: Vec<f64> = match p.get(&format!("blk.{i}.{module}.ia3_in")) {
            Some((l, _)) => h.iter().enumerate().map(|(j, v)| v * l[j % l.len()]).collect(),
            None => h.to_vec(),
        };
        let mut y = linear(&h, n, get(&format!("blk.{i}.{module}.weight")), out);
        if let Some((a, a_shape)) = p.get(&format!("blk.{i}.{module}.lora_a")) {
            let r = a_shape[0];
            let ha = linear(&h, n, a, r);
            let hab = linear(&ha, n, get(&format!("blk.{i}.{module}.lora_b")), out);
            y.iter_mut().zip(hab).for_each(|(y, v)| *y += scale * v);
        }
        if let Some((l, _)) = p.get(&format!("blk.{i}.{module}.ia3_out")) {
            y.iter_mut().enumerate().for_each(|(j, v)| *v *= l[j % out]);
        }
        y
    };
    let rope = |v: &mut [f64], heads: usize| {
        for row in 0..n {
            let pos = (n_prefix + row % seq) as f64;
            for h in 0..heads {
                for i in 0..hd / 2 {
                    let theta = pos * (c.rope_base as f64).powf(-2.0 * i as f64 / hd as f64);
                    let at = row * heads * hd + h * hd + 2 * i;
                    let (a, b) = (v[at], v[at + 1]);
                    v[at] = a * theta.cos() - b * theta.sin();
                    v[at + 1] = a * theta.sin() + b * theta.cos();
                }
            }
        }
    };
    for i in 0..c.n_layers {
        let h = rms_norm(&x, d, get(&format!("blk.{i}.attn_norm.weight")), c.norm_eps as f64);
        let mut q = proj(i, Target::Q, &h, nh * hd);
        let mut k = proj(i, Target::K, &h, nkv * hd);
        let v = proj(i, Target::V, &h, nkv * hd);
        rope(&mut q, nh);
        rope(&mut k, nkv);
        let mut att = vec![0.0; n * d];
        let kv_width = nkv * hd;
        // Key or value j of kv head `kvh` at key position `tk` of batch row `b`: the layer's
        // prefixes first, then the row's own.
        let kv_at = |x: &[f64], which: usize, b: usize, tk: usize, kvh: usize, j: usize| -> f64 {
            if tk < n_prefix {
                prefix[tk * c.n_layers * 2 * kv_width + (i * 2 + which) * kv_width + kvh * hd + j]
            } else {
                x[(b * seq + tk - n_prefix) * kv_width + kvh * hd + j]
            }
        };
        for b in 0..BATCH {
            for head in 0..nh {
                let kvh = head / (nh / nkv);
                for tq in 0..seq {
                    let rq = b * seq + tq;
                    let keys = n_prefix + tq + 1;
                    let scores: Vec<f64> = (0..keys)
                        .map(|tk| {
                            (0..hd).map(|j| q[rq * nh * hd + head * hd + j] * kv_at(&k, 0, b, tk, kvh, j)).sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for j in 0..hd {
                        att[rq * d + head * hd + j] = (0..keys).map(|tk| e[tk] / z * kv_at(&v, 1, b, tk, kvh, j)).sum();
                    }
                }
            }
        }
        let o = reference_bottleneck(p, i, "attn_adapter", proj(i, Target::O, &att, d), n);
        x.iter_mut().zip(&o).for_each(|(x, o)| *x += o);
        let h = rms_norm(&x, d, get(&format!("blk.{i}.ffn_norm.weight")), c.norm_eps as f64);
        let gate = proj(i, Target::Gate, &h, c.ffn_dim);
        let up = proj(i, Target::Up, &h, c.ffn_dim);
        let g: Vec<f64> = gate.iter().zip(&up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect();
        let down = reference_bottleneck(p, i, "mlp_adapter", proj(i, Target::Down, &g, d), n);
        x.iter_mut().zip(&down).for_each(|(x, o)| *x += o);
    }
    let h = rms_norm(&x, d, get("output_norm.weight"), c.norm_eps as f64);
    let logits = linear(&h, n, emb, c.vocab_size);
    let mut total = 0.0;
    let mut scored = 0;
    for (i, &l) in LABELS.iter().enumerate() {
        if l == IGNORE {
            continue;
        }
        // Label i is for token i of its row, after the row's virtual tokens.
        let row = i / (seq - n_virtual) * seq + n_virtual + i % (seq - n_virtual);
        let z = &logits[row * c.vocab_size..(row + 1) * c.vocab_size];
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        total += lse - z[l as usize];
        scored += 1;
    }
    total / scored as f64
}

/// The soft prompt (K, dim): `prompt` as given, or P-tuning's encoder
/// relu(relu(e W0^T + b0) W1^T + b1) W2^T + b2 of `ptuning.embedding` (none: empty).
fn reference_prompt(p: &Params) -> Vec<f64> {
    if let Some((v, _)) = p.get("prompt") {
        return v.clone();
    }
    let Some((e, e_shape)) = p.get("ptuning.embedding") else { return Vec::new() };
    let mut h = e.clone();
    for i in 0..3 {
        let (w, w_shape) = &p[&format!("ptuning.w{i}")];
        h = add_bias(linear(&h, e_shape[0], w, w_shape[0]), &p[&format!("ptuning.b{i}")].0);
        if i < 2 {
            h.iter_mut().for_each(|v| *v = v.max(0.0));
        }
    }
    h
}

/// y + up(silu(down(y))) where the params hold layer i's bottleneck adapter at `site`.
fn reference_bottleneck(p: &Params, i: usize, site: &str, y: Vec<f64>, n: usize) -> Vec<f64> {
    let name = |part: &str| format!("model.layers.{i}.{site}.{part}");
    let Some((wd, wd_shape)) = p.get(&name("down.weight")) else { return y };
    let h = add_bias(linear(&y, n, wd, wd_shape[0]), &p[&name("down.bias")].0);
    let h: Vec<f64> = h.iter().map(|v| v / (1.0 + (-v).exp())).collect();
    let (wu, wu_shape) = &p[&name("up.weight")];
    let u = add_bias(linear(&h, n, wu, wu_shape[0]), &p[&name("up.bias")].0);
    y.iter().zip(u).map(|(a, b)| a + b).collect()
}

fn add_bias(mut y: Vec<f64>, b: &[f64]) -> Vec<f64> {
    y.iter_mut().enumerate().for_each(|(j, v)| *v += b[j % b.len()]);
    y
}

/// The prefixes (K', layers * 2 * kv_dim): `prefix` as given, or the reparameterisation
/// W2 tanh(W1 e + b1) + b2 of `prefix_mlp.embedding` (none: empty).
fn reference_prefix(p: &Params) -> Vec<f64> {
    if let Some((v, _)) = p.get("prefix") {
        return v.clone();
    }
    let Some((e, e_shape)) = p.get("prefix_mlp.embedding") else { return Vec::new() };
    let (w1, w1_shape) = &p["prefix_mlp.w1"];
    let (w2, w2_shape) = &p["prefix_mlp.w2"];
    let h = add_bias(linear(e, e_shape[0], w1, w1_shape[0]), &p["prefix_mlp.b1"].0);
    let h: Vec<f64> = h.iter().map(|v| v.tanh()).collect();
    add_bias(linear(&h, e_shape[0], w2, w2_shape[0]), &p["prefix_mlp.b2"].0)
}

// ---- the engine side --------------------------------------------------------------------

/// The tiny model with adapters on every projection; B random (not zero) so every
/// gradient is exercised.
fn model_with_adapters() -> (Llama, LoraConfig) {
    let mut m = Llama::random(config(), true, 0.5, 7, Device::Cpu).unwrap();
    let cfg = LoraConfig { rank: 2, alpha: 3.0, dropout: 0.0, rslora: false, targets: Target::LLAMA.to_vec() };
    m.attach_lora(&cfg, 11).unwrap();
    for (i, b) in m.blocks.iter_mut().enumerate() {
        for t in Target::LLAMA {
            let l = b.lora.get(t).unwrap().clone();
            let bt = Tensor::randn(l.b.shape(), 0.0, 0.5, 100 + i as u64 * 8 + t as u64, DType::F32).unwrap();
            b.lora.set(t, Some(LoraLayer { b: bt.requires_grad_(), ..l }));
        }
    }
    (m, cfg)
}

fn params_of(m: &Llama) -> Params {
    let mut p = Params::new();
    let mut put = |name: String, t: &Tensor| {
        p.insert(name, (vals(t), t.shape().to_vec()));
    };
    if let lamina_model::qnn::Table::Float(e) = &m.embed {
        put("token_embd.weight".into(), e);
    }
    put("output_norm.weight".into(), &m.out_norm);
    for (i, b) in m.blocks.iter().enumerate() {
        put(format!("blk.{i}.attn_norm.weight"), &b.attn_norm);
        put(format!("blk.{i}.ffn_norm.weight"), &b.ffn_norm);
        for t in Target::LLAMA {
            if let Some(Proj::Float(l)) = b.proj(t) {
                put(format!("blk.{i}.{}.weight", t.gguf_module()), &l.weight);
            }
            if let Some(l) = b.lora.get(t) {
                put(format!("blk.{i}.{}.lora_a", t.gguf_module()), &l.a);
                put(format!("blk.{i}.{}.lora_b", t.gguf_module()), &l.b);
            }
            if let Some(v) = b.ia3.get(t) {
                put(ia3_name(i, t, v), &v.l);
            }
        }
    }
    p
}

fn ia3_name(layer: usize, t: Target, v: &Ia3Vector) -> String {
    format!("blk.{layer}.{}.ia3_{}", t.gguf_module(), if v.feedforward { "in" } else { "out" })
}

/// Central differences of the reference loss for every element of `name`.
fn numeric_grad(p: &Params, name: &str, scale: f64) -> Vec<f64> {
    let h = 1e-6;
    let mut p = p.clone();
    (0..p[name].0.len())
        .map(|i| {
            let x0 = p[name].0[i];
            p.get_mut(name).unwrap().0[i] = x0 + h;
            let up = reference_loss(&p, &config(), scale);
            p.get_mut(name).unwrap().0[i] = x0 - h;
            let down = reference_loss(&p, &config(), scale);
            p.get_mut(name).unwrap().0[i] = x0;
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// f32 autograd against f64 differences: 2e-3 relative per element plus 1e-4 of the
/// largest element (a chain of ~60 f32 ops is ~1e-5 off; a wrong rule is off by O(1)).
fn assert_close(name: &str, engine: &[f64], numeric: &[f64]) {
    assert_eq!(engine.len(), numeric.len(), "{name}");
    let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 1e-6, "{name}: the gradient is all zero, the check would prove nothing");
    for (i, (e, n)) in engine.iter().zip(numeric).enumerate() {
        let tol = 2e-3 * n.abs() + 1e-4 * scale + 1e-7;
        assert!((e - n).abs() <= tol, "{name}[{i}]: autograd {e}, finite differences {n} (tol {tol})");
    }
}

#[test]
fn engine_loss_equals_the_f64_reference() {
    let (m, cfg) = model_with_adapters();
    let (loss, scored) = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap();
    assert_eq!(scored, 8);
    let want = reference_loss(&params_of(&m), &config(), cfg.scale() as f64);
    let got = loss.to_vec::<f32>().unwrap()[0] as f64;
    assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "engine {got}, reference {want}");
}

#[test]
fn lora_gradients_match_finite_differences() {
    let (m, cfg) = model_with_adapters();
    let (loss, _) = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap();
    loss.backward().unwrap();
    let p = params_of(&m);
    for (i, b) in m.blocks.iter().enumerate() {
        for t in Target::LLAMA {
            let l = b.lora.get(t).unwrap();
            for (half, tensor) in [("lora_a", &l.a), ("lora_b", &l.b)] {
                let name = format!("blk.{i}.{}.{half}", t.gguf_module());
                let g = tensor.grad().unwrap_or_else(|| panic!("{name} got no gradient"));
                assert_close(&name, &vals(&g), &numeric_grad(&p, &name, cfg.scale() as f64));
            }
        }
    }
    // The frozen base gets no gradient memory at all.
    for b in &m.blocks {
        if let Some(Proj::Float(l)) = b.proj(Target::Q) {
            assert!(l.weight.grad().is_none());
        }
    }
}

#[test]
fn full_fine_tuning_gradients_match_finite_differences() {
    let mut m = Llama::random(config(), true, 0.5, 3, Device::Cpu).unwrap();
    let params = m.make_trainable().unwrap();
    assert_eq!(params.len(), 1 + 2 * 9 + 1, "embedding, 2 x (2 norms + 7 matrices), output norm");
    let (loss, _) = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap();
    loss.backward().unwrap();
    let p = params_of(&m);
    for (name, t) in &params {
        let g = t.grad().unwrap_or_else(|| panic!("{name} got no gradient"));
        assert_close(name, &vals(&g), &numeric_grad(&p, name, 1.0));
    }
}

#[test]
fn qlora_gradients_equal_lora_over_the_dequantized_weights() {
    // Dims that hold whole Q8_0 blocks (32): the base in blocks, and the same base in f32.
    let c = LlamaConfig { dim: 64, head_dim: 32, ffn_dim: 96, ..config() };
    let mut quant = Llama::random(c.clone(), true, 0.08, 5, Device::Cpu).unwrap();
    let cfg = LoraConfig { rank: 4, alpha: 8.0, dropout: 0.0, rslora: false, targets: Target::LLAMA.to_vec() };
    for b in &mut quant.blocks {
        for t in Target::LLAMA {
            let Proj::Float(l) = b.proj(t).unwrap() else { unreachable!() };
            let q = QMatrix::from_tensor(&l.weight, GgmlType::Q8_0).unwrap();
            *b.proj_mut(t).unwrap() = Proj::Quant(QLinear { weight: q, bias: None });
        }
    }
    quant.attach_lora(&cfg, 1).unwrap();
    let mut float = Llama::random(c, true, 0.08, 5, Device::Cpu).unwrap();
    for (bf, bq) in float.blocks.iter_mut().zip(&quant.blocks) {
        for t in Target::LLAMA {
            let Proj::Quant(q) = bq.proj(t).unwrap() else { unreachable!() };
            *bf.proj_mut(t).unwrap() =
                Proj::Float(lamina_model::Linear { weight: q.weight.dequantize().unwrap(), bias: None });
            let l = bq.lora.get(t).unwrap().clone();
            let b = Tensor::randn(l.b.shape(), 0.0, 0.2, t as u64, DType::F32).unwrap();
            bf.lora.set(t, Some(LoraLayer { a: l.a.detach().requires_grad_(), b: b.requires_grad_(), ..l }));
        }
    }
    // Same adapters on both (fresh leaves so the gradients are separate).
    for (bq, bf) in quant.blocks.iter_mut().zip(&float.blocks) {
        for t in Target::LLAMA {
            let l = bf.lora.get(t).unwrap().clone();
            bq.lora.set(t, Some(LoraLayer { a: l.a.detach().requires_grad_(), b: l.b.detach().requires_grad_(), ..l }));
        }
    }
    let tokens: Vec<u32> = (0..24).map(|i| (i * 7 % 11) as u32).collect();
    let labels: Vec<i32> = (0..24).map(|i| (i * 5 + 1) % 11).collect();
    let mut grads = Vec::new();
    for m in [&quant, &float] {
        let (loss, _) = m.loss(&tokens, &labels, 2, None).unwrap();
        loss.backward().unwrap();
        grads.push(m.lora_parameters().iter().map(|(_, t)| vals(&t.grad().unwrap())).collect::<Vec<_>>());
    }
    // The quantized kernels round activations to 8 bits (as llama.cpp does), so the two
    // agree to a few percent (measured: up to 2.2% here), not to f32 precision; a wrong
    // rule would be off by O(1). Compare whole tensors by norm.
    for (gq, gf) in grads[0].iter().zip(&grads[1]) {
        let norm = |v: &mut dyn Iterator<Item = f64>| v.map(|x| x * x).sum::<f64>().sqrt();
        let diff = norm(&mut gq.iter().zip(gf).map(|(a, b)| a - b));
        let size = norm(&mut gf.iter().copied());
        assert!(size > 1e-6 && diff <= 0.05 * size, "QLoRA gradient off by {diff} (norm {size})");
    }
}

/// The tiny model with IA³ vectors on q, k (output rows: GGUF order here), v, and on the
/// inputs of up and down; random around one so every gradient is exercised.
fn model_with_ia3() -> Llama {
    let mut m = Llama::random(config(), true, 0.5, 9, Device::Cpu).unwrap();
    let targets = vec![Target::Q, Target::K, Target::V, Target::Up, Target::Down];
    let cfg = Ia3Config { targets, feedforward: vec![Target::Up, Target::Down] };
    assert_eq!(m.attach_ia3(&cfg).unwrap(), cfg);
    for (i, b) in m.blocks.iter_mut().enumerate() {
        for t in cfg.targets.iter().copied() {
            let v = b.ia3.get(t).unwrap().clone();
            let l = Tensor::randn(v.l.shape(), 1.0, 0.5, 200 + i as u64 * 8 + t as u64, DType::F32).unwrap();
            b.ia3.set(t, Some(Ia3Vector { l: l.requires_grad_(), ..v }));
        }
    }
    m
}

#[test]
fn ia3_gradients_match_finite_differences() {
    let m = model_with_ia3();
    let (loss, _) = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap();
    let p = params_of(&m);
    let want = reference_loss(&p, &config(), 1.0);
    let got = loss.to_vec::<f32>().unwrap()[0] as f64;
    assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "engine {got}, reference {want}");
    loss.backward().unwrap();
    let params = m.ia3_parameters();
    assert_eq!(params.len(), 2 * 5);
    for (i, b) in m.blocks.iter().enumerate() {
        for (t, v) in b.ia3.iter() {
            let name = ia3_name(i, t, v);
            let g = v.l.grad().unwrap_or_else(|| panic!("{name} got no gradient"));
            assert_close(&name, &vals(&g), &numeric_grad(&p, &name, 1.0));
        }
    }
}

#[test]
fn ia3_merged_into_the_weights_gives_the_adapted_loss() {
    let mut m = model_with_ia3();
    let adapted = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap().0.to_scalar_f32().unwrap();
    assert_eq!(m.merge_adapters().unwrap(), 2 * 5);
    assert!(!m.has_adapters());
    let merged = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap().0.to_scalar_f32().unwrap();
    assert!((adapted - merged).abs() < 1e-5, "adapted {adapted}, merged {merged}");
}

#[test]
fn prompt_tuning_gradients_match_finite_differences() {
    let mut m = Llama::random(config(), true, 0.5, 4, Device::Cpu).unwrap();
    let cfg = PromptTuningConfig { num_virtual_tokens: 3, init: PromptInit::Random };
    m.attach_prompt(&cfg, &[], 17).unwrap();
    let (loss, scored) = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap();
    assert_eq!(scored, 8, "the virtual tokens are never scored");
    let mut p = params_of(&m);
    let prompt = &m.prompt.as_ref().unwrap().embeddings;
    p.insert("prompt".into(), (vals(prompt), prompt.shape().to_vec()));
    let want = reference_loss(&p, &config(), 1.0);
    let got = loss.to_vec::<f32>().unwrap()[0] as f64;
    assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "engine {got}, reference {want}");
    loss.backward().unwrap();
    let g = prompt.grad().expect("the soft prompt got no gradient");
    assert_close("prompt", &vals(&g), &numeric_grad(&p, "prompt", 1.0));
    // Text init: the embeddings of the init text's tokens, repeated to K.
    let text = PromptTuningConfig { num_virtual_tokens: 5, init: PromptInit::Text("ab".into()) };
    m.attach_prompt(&text, &[4, 9], 0).unwrap();
    let emb = &p["token_embd.weight"].0;
    let d = config().dim;
    let want: Vec<f64> = [4, 9, 4, 9, 4].iter().flat_map(|&t| emb[t * d..(t + 1) * d].to_vec()).collect();
    assert_eq!(vals(&m.prompt.as_ref().unwrap().embeddings), want);
}

/// The prefixes' trainable tensors by the reference's names.
fn prefix_params(prefix: &Prefix) -> Vec<(&'static str, Tensor)> {
    match prefix {
        Prefix::Direct(v) => vec![("prefix", v.clone())],
        Prefix::Projected(m) => vec![
            ("prefix_mlp.embedding", m.embedding.clone()),
            ("prefix_mlp.w1", m.hidden.weight.clone()),
            ("prefix_mlp.b1", m.hidden.bias.clone().unwrap()),
            ("prefix_mlp.w2", m.out.weight.clone()),
            ("prefix_mlp.b2", m.out.bias.clone().unwrap()),
        ],
    }
}

#[test]
fn prefix_tuning_gradients_match_finite_differences() {
    for projection in [None, Some(5)] {
        let mut m = Llama::random(config(), true, 0.5, 6, Device::Cpu).unwrap();
        let cfg = PrefixTuningConfig { num_virtual_tokens: 3, projection };
        m.attach_prefix(&cfg, 19).unwrap();
        let (loss, scored) = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap();
        assert_eq!(scored, 8, "{projection:?}: the prefixes are never scored");
        let mut p = params_of(&m);
        let trained = prefix_params(m.prefix.as_ref().unwrap());
        assert_eq!(trained.len(), m.prefix_parameters().len());
        for (name, t) in &trained {
            p.insert(name.to_string(), (vals(t), t.shape().to_vec()));
        }
        let want = reference_loss(&p, &config(), 1.0);
        let got = loss.to_vec::<f32>().unwrap()[0] as f64;
        assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "{projection:?}: engine {got}, reference {want}");
        loss.backward().unwrap();
        for (name, t) in &trained {
            let g = t.grad().unwrap_or_else(|| panic!("{name} got no gradient"));
            assert_close(name, &vals(&g), &numeric_grad(&p, name, 1.0));
        }
    }
}

#[test]
fn p_tuning_gradients_match_finite_differences() {
    let mut m = Llama::random(config(), true, 0.5, 8, Device::Cpu).unwrap();
    m.attach_p_tuning(&PTuningConfig { num_virtual_tokens: 3, hidden: 5 }, 29).unwrap();
    let (loss, scored) = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap();
    assert_eq!(scored, 8, "the virtual tokens are never scored");
    let prompt = m.prompt.as_ref().unwrap();
    let enc = prompt.encoder.as_ref().unwrap();
    let mut trained = vec![("ptuning.embedding".to_string(), prompt.embeddings.clone())];
    for (i, l) in enc.layers.iter().enumerate() {
        trained.push((format!("ptuning.w{i}"), l.weight.clone()));
        trained.push((format!("ptuning.b{i}"), l.bias.clone().unwrap()));
    }
    assert_eq!(trained.len(), m.prompt_parameters().len());
    let mut p = params_of(&m);
    for (name, t) in &trained {
        p.insert(name.clone(), (vals(t), t.shape().to_vec()));
    }
    let want = reference_loss(&p, &config(), 1.0);
    let got = loss.to_vec::<f32>().unwrap()[0] as f64;
    assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "engine {got}, reference {want}");
    loss.backward().unwrap();
    for (name, t) in &trained {
        let g = t.grad().unwrap_or_else(|| panic!("{name} got no gradient"));
        assert_close(name, &vals(&g), &numeric_grad(&p, name, 1.0));
    }
}

#[test]
fn bottleneck_adapter_gradients_match_finite_differences() {
    let mut m = Llama::random(config(), true, 0.5, 10, Device::Cpu).unwrap();
    let cfg = BottleneckConfig { size: 3, placement: Placement::Houlsby, activation: BottleneckAct::Silu };
    m.attach_bottleneck(&cfg, 37).unwrap();
    let fresh = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap().0.to_scalar_f32().unwrap();
    let base = reference_loss(&params_of(&m), &config(), 1.0);
    assert!((fresh as f64 - base).abs() < 1e-5 * base.max(1.0), "a fresh adapter is the identity");
    // Random up projections (they start at zero, which would leave down's gradient zero).
    for (i, b) in m.blocks.iter_mut().enumerate() {
        for (j, a) in [b.bottleneck.attn.as_mut().unwrap(), b.bottleneck.mlp.as_mut().unwrap()].into_iter().enumerate()
        {
            for (k, t) in a.up.params_mut().into_iter().enumerate() {
                let seed = 300 + 4 * i as u64 + 2 * j as u64 + k as u64;
                *t = Tensor::randn(t.shape(), 0.0, 0.5, seed, DType::F32).unwrap().requires_grad_();
            }
        }
    }
    let trained = m.bottleneck_parameters();
    assert_eq!(trained.len(), 2 * 2 * 4, "2 layers x 2 sites x (down, up) x (weight, bias)");
    let mut p = params_of(&m);
    for (name, t) in &trained {
        p.insert(name.clone(), (vals(t), t.shape().to_vec()));
    }
    let (loss, _) = m.loss(&TOKENS, &LABELS, BATCH, None).unwrap();
    let want = reference_loss(&p, &config(), 1.0);
    let got = loss.to_vec::<f32>().unwrap()[0] as f64;
    assert!((got - want).abs() < 1e-5 * want.abs().max(1.0), "engine {got}, reference {want}");
    loss.backward().unwrap();
    for (name, t) in &trained {
        let g = t.grad().unwrap_or_else(|| panic!("{name} got no gradient"));
        assert_close(name, &vals(&g), &numeric_grad(&p, name, 1.0));
    }
    assert!(m.merge_adapters().is_err(), "bottleneck adapters cannot be merged");
    // Saved and loaded (Lamina's own layout) onto the same base: the same loss.
    let dir = std::env::temp_dir().join(format!("lamina-bottleneck-{}", std::process::id()));
    m.save_bottleneck(&dir, &cfg, "tiny").unwrap();
    let mut fresh = Llama::random(config(), true, 0.5, 10, Device::Cpu).unwrap();
    assert_eq!(fresh.load_adapter(&dir, false).unwrap(), lamina_model::llama::AdapterKind::Bottleneck(cfg));
    std::fs::remove_dir_all(&dir).unwrap();
    let reloaded = fresh.loss(&TOKENS, &LABELS, BATCH, None).unwrap().0.to_scalar_f32().unwrap() as f64;
    assert!((reloaded - got).abs() < 1e-6 * got.abs().max(1.0), "saved and loaded: {reloaded}, trained {got}");
}
