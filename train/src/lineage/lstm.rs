//! The neural generation: an LSTM language model (Hochreiter & Schmidhuber 1997, the
//! cell of PyTorch's `nn.LSTM`) over characters, written with Lamina's tensor ops so
//! autograd differentiates it and it runs on any backend; trained with truncated
//! backpropagation through time.
//!
//! ```text
//! x_t = emb[id_t]                                   (B, E)
//! [i f o g] = x_t W_ih^T + b + h_{t-1} W_hh^T       (B, 4H)
//! c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g) (B, H)
//! h_t = sigmoid(o) * tanh(c_t)                      (B, H)
//! logits_t = h_t W_out^T + b_out                    (B, V)
//! ```
//!
//! The gates are laid out i, f, o, g (PyTorch's order is i, f, g, o) so that one sigmoid
//! and one tanh cover them.

use super::score::{overlapping_rows, score_logits, Score};
use crate::fit::Learner;
use crate::TrainError;
use lamina_model::nn::{move_param, normal_param};
use lamina_model::sampling::{Sampler, SamplerConfig};
use lamina_model::{Embedding, Linear, SeedStream};
use lamina_tensor::{no_grad, DType, Device, Error, Result, Tensor};

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LstmConfig {
    pub vocab: usize,
    /// Width E of the character embedding.
    pub embd: usize,
    /// Width H of the state.
    pub hidden: usize,
}

#[derive(Debug)]
pub struct Lstm {
    pub cfg: LstmConfig,
    pub emb: Embedding, // (V, E)
    pub w_ih: Linear,   // E -> 4H, with the gates' bias
    pub w_hh: Linear,   // H -> 4H, no bias
    pub head: Linear,   // H -> V
}

/// What carries over from one window to the next: h and c, (B, H) each.
#[derive(Clone, Debug)]
pub struct LstmState {
    pub h: Tensor,
    pub c: Tensor,
}

impl LstmState {
    /// The same values cut from the graph (truncated BPTT: gradients stop here).
    pub fn detach(&self) -> LstmState {
        LstmState { h: self.h.detach(), c: self.c.detach() }
    }
}

impl Lstm {
    /// Weights normal(0, 1/sqrt(fan_in)) (PyTorch draws uniform with the same scale),
    /// gate biases 0 except the forget gate's, 1 (Jozefowicz et al. 2015: remember by
    /// default), embedding normal(0, 1) as `nn.Embedding`.
    pub fn new(cfg: LstmConfig, seed: u64) -> Result<Lstm> {
        let LstmConfig { vocab, embd, hidden } = cfg;
        if vocab == 0 || embd == 0 || hidden == 0 {
            return Err(Error::InvalidArgument {
                op: "Lstm::new",
                msg: format!("every size must be positive: {cfg:?}"),
            });
        }
        let mut seeds = SeedStream::new(seed);
        let emb = Embedding { weight: normal_param(&[vocab, embd], 1.0, &mut seeds)? };
        let w_ih = Linear::new(embd, 4 * hidden, true, 1.0 / (embd as f32).sqrt(), &mut seeds)?;
        let w_hh = Linear::new(hidden, 4 * hidden, false, 1.0 / (hidden as f32).sqrt(), &mut seeds)?;
        let head = Linear::new(hidden, vocab, true, 1.0 / (hidden as f32).sqrt(), &mut seeds)?;
        let bias: Vec<f32> =
            (0..4 * hidden).map(|j| if (hidden..2 * hidden).contains(&j) { 1.0 } else { 0.0 }).collect();
        if let Some(b) = &w_ih.bias {
            b.assign(&Tensor::from_vec(bias, &[4 * hidden])?)?;
        }
        Ok(Lstm { cfg, emb, w_ih, w_hh, head })
    }

    pub fn to_device(&mut self, device: Device) -> Result<()> {
        let mut params = self.emb.params_mut();
        params.extend(self.w_ih.params_mut());
        params.extend(self.w_hh.params_mut());
        params.extend(self.head.params_mut());
        params.into_iter().try_for_each(|p| move_param(p, device))
    }

    pub fn device(&self) -> Device {
        self.emb.weight.device()
    }

    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.emb.parameters("emb", &mut out);
        self.w_ih.parameters("w_ih", &mut out);
        self.w_hh.parameters("w_hh", &mut out);
        self.head.parameters("head", &mut out);
        out
    }

    pub fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|(_, t)| t.numel()).sum()
    }

    /// h = c = 0 for `batch` sequences, on the model's device.
    pub fn zero_state(&self, batch: usize) -> Result<LstmState> {
        let z = Tensor::zeros(&[batch, self.cfg.hidden], DType::F32)?.to_device(self.device())?;
        Ok(LstmState { h: z.clone(), c: z })
    }

    /// Token ids (B, T) from `state` -> logits (B, T, V) and the state after position T.
    pub fn forward(&self, ids: &Tensor, state: &LstmState) -> Result<(Tensor, LstmState)> {
        let (b, t, hid) = (ids.shape()[0], ids.shape()[1], self.cfg.hidden);
        // The input's share of every gate, for all steps at once, time-major so that
        // each step's slice is contiguous.
        let xw = self.w_ih.forward(&self.emb.forward(&ids.t()?.contiguous()?)?)?; // (T, B, 4H)
        let (mut h, mut c) = (state.h.clone(), state.c.clone());
        let mut hs = Vec::with_capacity(t);
        for i in 0..t {
            let gates = xw.narrow(0, i, 1)?.reshape(&[b, 4 * hid])?.add(&self.w_hh.forward(&h)?)?; // (B, 4H)
            (h, c) = cell(&gates, &c, hid)?;
            hs.push(h.unsqueeze(0)?); // (1, B, H)
        }
        let hs: Vec<&Tensor> = hs.iter().collect();
        let out = Tensor::cat(&hs, 0)?.transpose(0, 1)?; // (B, T, H)
        Ok((self.head.forward(&out)?, LstmState { h, c })) // (B, T, V)
    }

    /// Mean next-token cross-entropy of `ids` (B, T) against `targets` (B, T, -1: not
    /// scored), and the state after the window.
    pub fn loss(&self, ids: &Tensor, targets: &Tensor, state: &LstmState) -> Result<(Tensor, LstmState)> {
        let (logits, state) = self.forward(ids, state)?;
        let n = ids.numel();
        Ok((logits.reshape(&[n, self.cfg.vocab])?.cross_entropy(&targets.reshape(&[n])?, -1)?, state))
    }

    /// Validation score of `tokens` (see `score.rs`): `lanes` stretches read in parallel,
    /// each after `warmup` characters of context (the first from the start of the text),
    /// the state carried through each stretch in windows of `window`.
    pub fn score(&self, tokens: &[u32], lanes: usize, warmup: usize, window: usize) -> Result<Score> {
        let targets = tokens.len().saturating_sub(1);
        let len = (targets + (lanes - 1) * warmup).div_ceil(lanes).max(warmup + 1);
        let rows = overlapping_rows(tokens, len, warmup);
        let mut state = self.zero_state(rows.rows)?;
        let mut total = Score::default();
        no_grad(|| {
            for start in (0..len).step_by(window) {
                let w = window.min(len - start);
                let cols = |v: &[i32]| -> Vec<i32> {
                    (0..rows.rows).flat_map(|r| v[r * len + start..r * len + start + w].to_vec()).collect()
                };
                let ids = Tensor::from_vec(cols(&rows.inputs), &[rows.rows, w])?;
                let (logits, next) = self.forward(&ids, &state)?;
                total.add(score_logits(&logits.reshape(&[rows.rows * w, self.cfg.vocab])?, &cols(&rows.targets))?);
                state = next;
            }
            Ok(total)
        })
    }

    /// `prompt` followed by `n` sampled tokens (the GPT's sampler), the state carried.
    pub fn generate(
        &self,
        prompt: &[u32],
        n: usize,
        temperature: f32,
        top_k: Option<usize>,
        seed: u64,
    ) -> Result<Vec<u32>> {
        if prompt.is_empty() {
            return Err(Error::InvalidArgument { op: "Lstm::generate", msg: "empty prompt".into() });
        }
        let invalid = |e: lamina_model::ModelError| Error::InvalidArgument { op: "Lstm::generate", msg: e.to_string() };
        let mut sampler = Sampler::new(SamplerConfig::temperature_top_k(temperature, top_k, seed)).map_err(invalid)?;
        let mut seq = prompt.to_vec();
        no_grad(|| {
            let mut state = self.zero_state(1)?;
            let mut input: Vec<i32> = prompt.iter().map(|&t| t as i32).collect();
            for _ in 0..n {
                let ids = Tensor::from_vec(input.clone(), &[1, input.len()])?;
                let (logits, next) = self.forward(&ids, &state)?; // (1, T, V)
                let last = logits.narrow(1, input.len() - 1, 1)?.reshape(&[self.cfg.vocab])?.to_vec_f32()?;
                let token = sampler.sample(&last, &seq).map_err(invalid)?;
                seq.push(token);
                (state, input) = (next, vec![token as i32]);
            }
            Ok(seq)
        })
    }
}

/// One step of the cell: gates (B, 4H) laid out i, f, o, g; c (B, H) -> (h, c).
fn cell(gates: &Tensor, c: &Tensor, hid: usize) -> Result<(Tensor, Tensor)> {
    let ifo = gates.narrow(1, 0, 3 * hid)?.sigmoid()?; // (B, 3H)
    let g = gates.narrow(1, 3 * hid, hid)?.tanh()?; // (B, H)
    let (i, f, o) = (ifo.narrow(1, 0, hid)?, ifo.narrow(1, hid, hid)?, ifo.narrow(1, 2 * hid, hid)?);
    let c = f.mul(c)?.add(&i.mul(&g)?)?; // (B, H)
    let h = o.mul(&c.tanh()?)?; // (B, H)
    Ok((h, c))
}

/// `lanes` parallel reads of a token stream for truncated BPTT: lane b reads the b-th of
/// `lanes` equal segments, `bptt` tokens a step, and starts each window where its last
/// one ended (with the state that window left). At the end of the segments every lane
/// starts over, from a fresh state.
#[derive(Clone, Debug)]
pub struct StreamBatches {
    tokens: Vec<i32>,
    lanes: usize,
    bptt: usize,
    segment: usize,
    pos: usize,
}

impl StreamBatches {
    pub fn new(tokens: &[u32], lanes: usize, bptt: usize) -> std::result::Result<StreamBatches, String> {
        if lanes == 0 || bptt == 0 {
            return Err(format!("lanes ({lanes}) and bptt ({bptt}) must be positive"));
        }
        let segment = tokens.len() / lanes;
        if segment < bptt + 1 {
            return Err(format!("{} tokens in {lanes} lanes cannot fill a window of {bptt} (+1 target)", tokens.len()));
        }
        Ok(StreamBatches { tokens: tokens.iter().map(|&t| t as i32).collect(), lanes, bptt, segment, pos: 0 })
    }

    /// x (B, T), y (B, T) and whether the lanes started over (the state must be reset).
    pub fn next_batch(&mut self) -> Result<(Tensor, Tensor, bool)> {
        if self.pos + self.bptt + 1 > self.segment {
            self.pos = 0;
        }
        let fresh = self.pos == 0;
        let (b, t) = (self.lanes, self.bptt);
        let mut x = Vec::with_capacity(b * t);
        let mut y = Vec::with_capacity(b * t);
        for lane in 0..b {
            let i = lane * self.segment + self.pos;
            x.extend_from_slice(&self.tokens[i..i + t]);
            y.extend_from_slice(&self.tokens[i + 1..i + t + 1]);
        }
        self.pos += t;
        Ok((Tensor::from_vec(x, &[b, t])?, Tensor::from_vec(y, &[b, t])?, fresh))
    }

    pub fn tokens_per_batch(&self) -> usize {
        self.lanes * self.bptt
    }
}

/// An LSTM, its stream of windows and the state between them, for [`crate::fit`].
pub struct LstmLearner {
    pub model: Lstm,
    pub batches: StreamBatches,
    state: Option<LstmState>,
}

impl LstmLearner {
    pub fn new(model: Lstm, batches: StreamBatches) -> LstmLearner {
        LstmLearner { model, batches, state: None }
    }
}

impl Learner for LstmLearner {
    fn next_loss(&mut self) -> std::result::Result<Tensor, TrainError> {
        let (x, y, restart) = self.batches.next_batch()?;
        let state = match self.state.take() {
            Some(s) if !restart => s,
            _ => self.model.zero_state(x.shape()[0])?,
        };
        let (loss, next) = self.model.loss(&x, &y, &state)?;
        self.state = Some(next.detach());
        Ok(loss)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.parameters()
    }

    fn tokens_per_step(&self) -> usize {
        self.batches.tokens_per_batch()
    }
}
