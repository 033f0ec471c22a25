//! A GPT (GPT-2 architecture, after nanoGPT's `model.py`): token + position embeddings,
//! `n_layer` pre-norm blocks of causal self-attention and a GELU MLP, a final LayerNorm,
//! and a language-model head that shares its weight with the token embedding.
//!
//! Shapes: B batch, T time (<= ctx), C = n_embd, H = n_head, D = C / H, V = vocab.
//! Parameter names follow GPT-2 checkpoints (`h.0.attn.c_attn.weight`, ...).

use crate::causal_lm::{CausalLm, LogitsFor};
use crate::error::ModelError;
use crate::kv_cache::KvCache;
use crate::nn::{Embedding, LayerNorm, Linear, SeedStream};
use lamina_tensor::{scaled_dot_product_attention, DType, Device, Error, Result, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GptConfig {
    /// Vocabulary size V.
    pub vocab: usize,
    /// Longest sequence (context) the model sees; position embeddings are (ctx, C).
    pub ctx: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// Width C of the residual stream; a multiple of `n_head`.
    pub n_embd: usize,
    /// Dropout probability in training mode (embeddings, attention output, MLP output).
    pub dropout: f32,
}

impl GptConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::InvalidArgument { op: "GptConfig", msg });
        if self.vocab == 0 || self.ctx == 0 || self.n_layer == 0 || self.n_head == 0 || self.n_embd == 0 {
            return bad(format!("every size must be positive, got {self:?}"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return bad(format!("n_embd {} is not a multiple of n_head {}", self.n_embd, self.n_head));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        Ok(())
    }
}

/// Dropout seeds: a fresh one for every dropout call in training mode.
#[derive(Debug)]
struct Dropout {
    p: f32,
    counter: AtomicU64,
    seed: u64,
}

impl Dropout {
    fn apply(&self, x: Tensor, train: bool) -> Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(x);
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        x.dropout(self.p, crate::nn::splitmix(self.seed ^ crate::nn::splitmix(n)))
    }
}

/// Multi-head causal self-attention.
#[derive(Debug, Clone)]
pub struct CausalSelfAttention {
    pub c_attn: Linear, // C -> 3C: q, k, v side by side
    pub c_proj: Linear, // C -> C
    pub n_head: usize,
}

impl CausalSelfAttention {
    /// `causal: false` lets every position attend to every other (an encoder's attention).
    fn forward(&self, x: &Tensor, causal: bool, drop: &Dropout, train: bool) -> Result<Tensor> {
        let (b, t, c) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let (h, d) = (self.n_head, c / self.n_head);
        let qkv = self.c_attn.forward(x)?; // (B, T, 3C)
        let heads = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * c, c)? // (B, T, C)
                .reshape(&[b, t, h, d])? // (B, T, H, D)
                .transpose(1, 2) // (B, H, T, D)
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let y = scaled_dot_product_attention(&q, &k, &v, None, causal, None)?; // (B, H, T, D)
        let y = y.transpose(1, 2)?.reshape(&[b, t, c])?; // (B, T, C): heads side by side
        drop.apply(self.c_proj.forward(&y)?, train) // (B, T, C)
    }

    /// Inference over new positions x (1, T, C), attending to what `cache` holds for `layer`.
    fn forward_cached(&self, x: &Tensor, layer: usize, cache: &KvCache) -> crate::Result<Tensor> {
        let (t, c) = (x.shape()[1], x.shape()[2]);
        let (h, d) = (self.n_head, c / self.n_head);
        let qkv = self.c_attn.forward(x)?; // (1, T, 3C)
        let heads = |i: usize| -> Result<Tensor> { qkv.narrow(2, i * c, c)?.reshape(&[1, t, h, d])?.transpose(1, 2) };
        let (k_all, v_all) = cache.append(layer, &heads(1)?, &heads(2)?)?;
        let y = scaled_dot_product_attention(&heads(0)?, &k_all, &v_all, None, true, None)?; // (1, H, T, D)
        Ok(self.c_proj.forward(&y.transpose(1, 2)?.reshape(&[1, t, c])?)?)
    }
}

/// The position-wise feed-forward network: C -> 4C -> GELU -> C.
#[derive(Debug, Clone)]
pub struct Mlp {
    pub c_fc: Linear,   // C -> 4C
    pub c_proj: Linear, // 4C -> C
}

impl Mlp {
    fn forward(&self, x: &Tensor, drop: &Dropout, train: bool) -> Result<Tensor> {
        let hidden = self.c_fc.forward(x)?.gelu_tanh()?; // (B, T, 4C)
        drop.apply(self.c_proj.forward(&hidden)?, train) // (B, T, C)
    }
}

/// One transformer block, pre-norm: x + attn(ln_1(x)), then + mlp(ln_2(x)).
#[derive(Debug, Clone)]
pub struct Block {
    pub ln_1: LayerNorm,
    pub attn: CausalSelfAttention,
    pub ln_2: LayerNorm,
    pub mlp: Mlp,
}

impl Block {
    /// GPT-2 initialisation (see `Gpt::new`): weights normal(0, 0.02), the two projections
    /// into the residual stream normal(0, 0.02 / sqrt(2 n_layer)), biases 0, norms 1 and 0.
    pub fn new(n_embd: usize, n_head: usize, n_layer: usize, seeds: &mut SeedStream) -> Result<Block> {
        let (c, std) = (n_embd, 0.02);
        let proj_std = std / (2.0 * n_layer as f32).sqrt();
        Ok(Block {
            ln_1: LayerNorm::new(c)?,
            attn: CausalSelfAttention {
                c_attn: Linear::new(c, 3 * c, true, std, seeds)?,
                c_proj: Linear::new(c, c, true, proj_std, seeds)?,
                n_head,
            },
            ln_2: LayerNorm::new(c)?,
            mlp: Mlp {
                c_fc: Linear::new(c, 4 * c, true, std, seeds)?,
                c_proj: Linear::new(4 * c, c, true, proj_std, seeds)?,
            },
        })
    }

    fn forward(&self, x: &Tensor, causal: bool, drop: &Dropout, train: bool) -> Result<Tensor> {
        let x = x.add(&self.attn.forward(&self.ln_1.forward(x)?, causal, drop, train)?)?; // (B, T, C)
        x.add(&self.mlp.forward(&self.ln_2.forward(&x)?, drop, train)?) // (B, T, C)
    }

    /// Every trainable tensor, named as in GPT-2 checkpoints under `prefix` (`h.0`).
    pub fn parameters(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        self.ln_1.parameters(&format!("{prefix}.ln_1"), out);
        self.attn.c_attn.parameters(&format!("{prefix}.attn.c_attn"), out);
        self.attn.c_proj.parameters(&format!("{prefix}.attn.c_proj"), out);
        self.ln_2.parameters(&format!("{prefix}.ln_2"), out);
        self.mlp.c_fc.parameters(&format!("{prefix}.mlp.c_fc"), out);
        self.mlp.c_proj.parameters(&format!("{prefix}.mlp.c_proj"), out);
    }

    pub fn params_mut(&mut self) -> Vec<&mut Tensor> {
        let mut params = self.ln_1.params_mut();
        params.extend(self.attn.c_attn.params_mut());
        params.extend(self.attn.c_proj.params_mut());
        params.extend(self.ln_2.params_mut());
        params.extend(self.mlp.c_fc.params_mut());
        params.extend(self.mlp.c_proj.params_mut());
        params
    }

    fn forward_cached(&self, x: &Tensor, layer: usize, cache: &KvCache, drop: &Dropout) -> crate::Result<Tensor> {
        let x = x.add(&self.attn.forward_cached(&self.ln_1.forward(x)?, layer, cache)?)?;
        Ok(x.add(&self.mlp.forward(&self.ln_2.forward(&x)?, drop, false)?)?)
    }
}

#[derive(Debug)]
pub struct Gpt {
    pub cfg: GptConfig,
    pub wte: Embedding, // (V, C), also the LM head's weight
    pub wpe: Embedding, // (ctx, C)
    pub h: Vec<Block>,
    pub ln_f: LayerNorm,
    drop: Dropout,
    training: bool,
}

impl Gpt {
    /// GPT-2 initialisation: every weight normal(0, 0.02), biases 0, LayerNorm 1 and 0,
    /// and the projections that write into the residual stream (`c_proj`) scaled by
    /// 1/sqrt(2 n_layer), so the stream's variance does not grow with depth.
    /// Starts in training mode (dropout active when `cfg.dropout > 0`).
    pub fn new(cfg: GptConfig, seed: u64) -> Result<Gpt> {
        cfg.validate()?;
        let mut seeds = SeedStream::new(seed);
        let c = cfg.n_embd;
        let wte = Embedding::new(cfg.vocab, c, 0.02, &mut seeds)?;
        let wpe = Embedding::new(cfg.ctx, c, 0.02, &mut seeds)?;
        let h =
            (0..cfg.n_layer).map(|_| Block::new(c, cfg.n_head, cfg.n_layer, &mut seeds)).collect::<Result<Vec<_>>>()?;
        let drop = Dropout { p: cfg.dropout, counter: AtomicU64::new(0), seed: seeds.next_seed() };
        Ok(Gpt { cfg, wte, wpe, h, ln_f: LayerNorm::new(c)?, drop, training: true })
    }

    /// A model from loaded weights (evaluation mode, no dropout).
    pub(crate) fn from_parts(cfg: GptConfig, wte: Embedding, wpe: Embedding, h: Vec<Block>, ln_f: LayerNorm) -> Gpt {
        let drop = Dropout { p: 0.0, counter: AtomicU64::new(0), seed: 0 };
        Gpt { cfg, wte, wpe, h, ln_f, drop, training: false }
    }

    /// Move every parameter to `device` (`Gpt::new` builds on the CPU, so the initial
    /// values are the same on every device).
    pub fn to_device(&mut self, device: Device) -> Result<()> {
        let mut params: Vec<&mut Tensor> = self.wte.params_mut();
        params.extend(self.wpe.params_mut());
        for b in &mut self.h {
            params.extend(b.params_mut());
        }
        params.extend(self.ln_f.params_mut());
        params.into_iter().try_for_each(|p| crate::nn::move_param(p, device))
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.wte.weight.device()
    }

    /// Training mode turns dropout on; evaluation mode turns it off.
    pub fn set_training(&mut self, on: bool) {
        self.training = on;
    }

    pub fn is_training(&self) -> bool {
        self.training
    }

    /// Token ids (B, T), I32 or U32, T <= ctx -> next-token logits (B, T, V).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.forward_mode(ids, self.training)
    }

    pub(crate) fn forward_mode(&self, ids: &Tensor, train: bool) -> Result<Tensor> {
        let x = self.hidden_mode(ids, true, train)?; // (B, T, C)
                                                     // LM head, tied to the token embedding: logits = x @ wte^T.
        let (b, t, c) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let logits = x.reshape(&[b * t, c])?.matmul(&self.wte.weight.t()?)?; // (B*T, V)
        logits.reshape(&[b, t, self.cfg.vocab]) // (B, T, V)
    }

    /// Token ids (B, T) -> the final hidden states (B, T, C), after `ln_f`, before the LM
    /// head. `causal: false` lets every position attend to every other: the same stack as
    /// an encoder (train-demo's masked language model, which differs from the GPT only in
    /// this mask and its objective).
    pub fn hidden_states(&self, ids: &Tensor, causal: bool) -> Result<Tensor> {
        self.hidden_mode(ids, causal, self.training)
    }

    fn hidden_mode(&self, ids: &Tensor, causal: bool, train: bool) -> Result<Tensor> {
        if ids.rank() != 2 || ids.shape()[1] == 0 || ids.shape()[1] > self.cfg.ctx {
            return Err(Error::InvalidArgument {
                op: "Gpt::forward",
                msg: format!("ids must be (B, T) with 1 <= T <= ctx = {}, got {:?}", self.cfg.ctx, ids.shape()),
            });
        }
        let t = ids.shape()[1];
        let pos = Tensor::arange(0.0, t as f64, 1.0, DType::I32)?; // (T)
        let tok_emb = self.wte.forward(ids)?; // (B, T, C)
        let pos_emb = self.wpe.forward(&pos)?; // (T, C)
        let mut x = self.drop.apply(tok_emb.add(&pos_emb)?, train)?; // (B, T, C)
        for block in &self.h {
            x = block.forward(&x, causal, &self.drop, train)?; // (B, T, C)
        }
        self.ln_f.forward(&x) // (B, T, C)
    }

    /// Inference over new tokens after what `cache` holds (batch of one): logits (T or 1, V).
    fn forward_cached(&self, tokens: &[u32], cache: &mut KvCache, which: LogitsFor) -> crate::Result<Tensor> {
        let t = tokens.len();
        if t == 0 {
            return Err(ModelError::Invalid("forward needs at least one token".into()));
        }
        if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= self.cfg.vocab) {
            return Err(ModelError::Invalid(format!("token id {bad} is outside the vocabulary of {}", self.cfg.vocab)));
        }
        cache.check_room(t)?;
        let device = self.device();
        let start = cache.position();
        let ids = Tensor::from_slice(tokens, &[1, t])?.to_device(device)?;
        let pos = Tensor::arange(start as f64, (start + t) as f64, 1.0, DType::I32)?.to_device(device)?;
        let mut x = self.wte.forward(&ids)?.add(&self.wpe.forward(&pos)?)?; // (1, T, C)
        for (i, block) in self.h.iter().enumerate() {
            x = block.forward_cached(&x, i, cache, &self.drop)?;
        }
        cache.advance(t);
        if which == LogitsFor::Last {
            x = x.narrow(1, t - 1, 1)?;
        }
        let rows = x.shape()[1];
        let x = self.ln_f.forward(&x)?.reshape(&[rows, self.cfg.n_embd])?;
        Ok(x.matmul(&self.wte.weight.t()?)?) // (rows, V)
    }

    /// Mean next-token cross-entropy of `ids` (B, T) against `targets` (B, T), in nats.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let logits = self.forward(ids)?; // (B, T, V)
        let n = logits.shape()[0] * logits.shape()[1];
        logits.reshape(&[n, self.cfg.vocab])?.cross_entropy(&targets.reshape(&[n])?, -1)
    }

    /// Every trainable tensor once, with its GPT-2 name. The LM head is not listed: it is
    /// `wte.weight`.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.wte.parameters("wte", &mut out);
        self.wpe.parameters("wpe", &mut out);
        for (i, b) in self.h.iter().enumerate() {
            b.parameters(&format!("h.{i}"), &mut out);
        }
        self.ln_f.parameters("ln_f", &mut out);
        out
    }

    pub fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|(_, t)| t.numel()).sum()
    }
}

impl CausalLm for Gpt {
    fn vocab_size(&self) -> usize {
        self.cfg.vocab
    }

    fn context_length(&self) -> usize {
        self.cfg.ctx
    }

    fn device(&self) -> Device {
        Gpt::device(self)
    }

    fn new_cache(&self, capacity: usize) -> crate::Result<KvCache> {
        let d = self.cfg.n_embd / self.cfg.n_head;
        KvCache::new(self.cfg.n_layer, self.cfg.n_head, d, capacity.min(self.cfg.ctx), DType::F32, self.device())
    }

    fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: LogitsFor) -> crate::Result<Tensor> {
        lamina_tensor::cpu::parallel::install(|| self.forward_cached(tokens, cache, which))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_decode_matches_the_full_forward() {
        let mut m = Gpt::new(tiny(), 5).unwrap();
        m.set_training(false);
        let ids = [1u32, 4, 2, 7, 3];
        let full = m.forward(&Tensor::from_slice(&ids, &[1, 5]).unwrap()).unwrap().to_vec_f32().unwrap();
        let mut cache = CausalLm::new_cache(&m, 8).unwrap();
        let mut got = CausalLm::forward(&m, &ids[..3], &mut cache, LogitsFor::All).unwrap().to_vec_f32().unwrap();
        for &id in &ids[3..] {
            got.extend(CausalLm::forward(&m, &[id], &mut cache, LogitsFor::Last).unwrap().to_vec_f32().unwrap());
        }
        assert_eq!(got.len(), full.len());
        for (a, b) in got.iter().zip(&full) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert!(CausalLm::forward(&m, &[1, 2, 3, 4], &mut cache, LogitsFor::Last).is_err(), "past the context");
    }

    fn tiny() -> GptConfig {
        GptConfig { vocab: 11, ctx: 8, n_layer: 2, n_head: 2, n_embd: 8, dropout: 0.0 }
    }

    #[test]
    fn forward_shapes_and_parameter_count() {
        let m = Gpt::new(tiny(), 0).unwrap();
        let ids = Tensor::from_vec(vec![1i32, 2, 3, 4, 5, 6], &[2, 3]).unwrap();
        assert_eq!(m.forward(&ids).unwrap().shape(), &[2, 3, 11]);
        // wte + wpe + per block (2 LN + c_attn + c_proj + c_fc + c_proj) + ln_f
        let c = 8;
        let block = 4 * c + (3 * c * c + 3 * c) + (c * c + c) + (4 * c * c + 4 * c) + (4 * c * c + c);
        assert_eq!(m.num_parameters(), 11 * c + 8 * c + 2 * block + 2 * c);
        assert_eq!(m.parameters().len(), 2 + 2 * 12 + 2);
    }

    #[test]
    fn initial_loss_is_near_uniform() {
        let m = Gpt::new(tiny(), 3).unwrap();
        let ids = Tensor::from_vec((0..16).map(|i| i % 11).collect::<Vec<i32>>(), &[2, 8]).unwrap();
        let loss = m.loss(&ids, &ids).unwrap().to_scalar_f32().unwrap();
        assert!((loss - (11f32).ln()).abs() < 0.1, "loss {loss}");
    }

    #[test]
    fn tied_head_gets_gradient_from_both_uses() {
        let m = Gpt::new(tiny(), 1).unwrap();
        let ids = Tensor::from_vec(vec![0i32, 1, 2, 3], &[1, 4]).unwrap();
        m.loss(&ids, &ids).unwrap().backward().unwrap();
        for (name, p) in m.parameters() {
            let g = p.grad().unwrap_or_else(|| panic!("{name} has no gradient"));
            assert_eq!(g.shape(), p.shape(), "{name}");
        }
        // Rows of wte for ids never seen still get a gradient through the head.
        let g = m.wte.weight.grad().unwrap().to_vec::<f32>().unwrap();
        assert!(g[10 * 8..11 * 8].iter().any(|&x| x != 0.0));
    }

    #[test]
    fn causal_prefix_logits_do_not_see_the_future() {
        let mut m = Gpt::new(tiny(), 2).unwrap();
        m.set_training(false);
        let a = Tensor::from_vec(vec![1i32, 2, 3, 4], &[1, 4]).unwrap();
        let b = Tensor::from_vec(vec![1i32, 2, 9, 9], &[1, 4]).unwrap();
        let la = m.forward(&a).unwrap().to_vec::<f32>().unwrap();
        let lb = m.forward(&b).unwrap().to_vec::<f32>().unwrap();
        for i in 0..2 * 11 {
            assert!((la[i] - lb[i]).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let m = Gpt::new(tiny(), 0).unwrap();
        assert!(m.forward(&Tensor::from_vec(vec![0i32; 9], &[1, 9]).unwrap()).is_err());
        assert!(m.forward(&Tensor::from_vec(vec![11i32], &[1, 1]).unwrap()).is_err());
        assert!(Gpt::new(GptConfig { n_head: 3, ..tiny() }, 0).is_err());
    }
}
