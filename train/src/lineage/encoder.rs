//! The pretrained-transformer generation, encoder side: a small BERT-style masked
//! language model (Devlin et al. 2018) trained from scratch. It is the GPT of train-demo
//! with two changes: attention is bidirectional (every position sees every other) and
//! the objective is masked-character prediction, so the two differ only in the mask and
//! what is learned. (Blocks are pre-norm like the GPT's; BERT's are post-norm.)
//!
//! Masking follows BERT: 15% of each window's positions are chosen; of those, 80% become
//! the [MASK] token (id V, an input-only symbol added to the character vocabulary), 10% a
//! random character and 10% stay as they are; the loss is scored on the chosen positions.
//!
//! Its score is the pseudo-log-likelihood (Salazar et al. 2020): each validation
//! character masked in turn and predicted from the characters on both sides. That is
//! not a probability of the text (the terms do not chain into one), so it is not
//! comparable with a causal model's bits per character: it sees the future.

use super::score::{score_logits, Score};
use crate::data::{BatchSampler, Rng};
use crate::fit::Learner;
use crate::TrainError;
use lamina_model::{Gpt, GptConfig};
use lamina_tensor::{no_grad, Device, Error, Result, Tensor};

/// The printed caveat (one place, for the CLI and the table).
pub const PLL_CAVEAT: &str = "pseudo-log-likelihood: each character predicted from both sides; \
    not a probability of the text, so not comparable with a causal model's bits per character";

#[derive(Debug)]
pub struct MaskedLm {
    /// The shape; `vocab` is the characters' (`dropout` must be 0).
    pub cfg: GptConfig,
    /// The stack: a GPT over V + 1 tokens (the characters and [MASK]), run with
    /// bidirectional attention; rows 0..V of its embedding are the output head.
    pub body: Gpt,
}

impl MaskedLm {
    /// The GPT's initialisation (`Gpt::new`), one more embedding row for [MASK].
    pub fn new(cfg: GptConfig, seed: u64) -> Result<MaskedLm> {
        if cfg.dropout != 0.0 {
            return Err(Error::InvalidArgument { op: "MaskedLm::new", msg: "the encoder has no dropout".into() });
        }
        let body = Gpt::new(GptConfig { vocab: cfg.vocab + 1, ..cfg }, seed)?;
        Ok(MaskedLm { cfg, body })
    }

    /// The [MASK] token's id.
    pub fn mask_id(&self) -> u32 {
        self.cfg.vocab as u32
    }

    pub fn to_device(&mut self, device: Device) -> Result<()> {
        self.body.to_device(device)
    }

    /// Named as the GPT's (`wte` has the [MASK] row).
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        self.body.parameters()
    }

    pub fn num_parameters(&self) -> usize {
        self.body.num_parameters()
    }

    /// Ids (B, T), T <= ctx, [MASK] allowed -> logits over the characters (B, T, V).
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let x = self.body.hidden_states(ids, false)?; // (B, T, C)
        let (b, t, c) = (x.shape()[0], x.shape()[1], x.shape()[2]);
        let head = self.body.wte.weight.narrow(0, 0, self.cfg.vocab)?; // (V, C): tied, [MASK] never predicted
        x.reshape(&[b * t, c])?.matmul(&head.t()?)?.reshape(&[b, t, self.cfg.vocab])
        // (B, T, V)
    }

    /// Mean cross-entropy at the scored positions of `targets` (B, T; -1 elsewhere).
    pub fn loss(&self, ids: &Tensor, targets: &Tensor) -> Result<Tensor> {
        let n = ids.numel();
        self.forward(ids)?.reshape(&[n, self.cfg.vocab])?.cross_entropy(&targets.reshape(&[n])?, -1)
    }

    /// Pseudo-log-likelihood of tokens[1..]: each masked in a window of ctx around it
    /// (centred where the text allows), `batch` windows a pass.
    pub fn score(&self, tokens: &[u32], batch: usize) -> Result<Score> {
        let t = self.cfg.ctx.min(tokens.len());
        let positions: Vec<usize> = (1..tokens.len()).collect();
        let mut total = Score::default();
        for chunk in positions.chunks(batch.max(1)) {
            let mut ids = Vec::with_capacity(chunk.len() * t);
            let mut targets = vec![-1i32; chunk.len() * t];
            for (r, &p) in chunk.iter().enumerate() {
                let start = p.saturating_sub(t / 2).min(tokens.len() - t);
                ids.extend(tokens[start..start + t].iter().map(|&x| x as i32));
                ids[r * t + p - start] = self.mask_id() as i32;
                targets[r * t + p - start] = tokens[p] as i32;
            }
            let ids = Tensor::from_vec(ids, &[chunk.len(), t])?;
            let logits = no_grad(|| self.forward(&ids))?; // (rows, T, V)
            total.add(score_logits(&logits.reshape(&[chunk.len() * t, self.cfg.vocab])?, &targets)?);
        }
        Ok(total)
    }

    /// Fill the [MASK] positions of `ids` with the most likely character each.
    pub fn fill(&self, ids: &[u32]) -> Result<Vec<u32>> {
        let input = Tensor::from_vec(ids.iter().map(|&x| x as i32).collect::<Vec<_>>(), &[1, ids.len()])?;
        let logits = no_grad(|| self.forward(&input))?.to_vec_f32()?; // (1, T, V)
        let v = self.cfg.vocab;
        Ok(ids
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if x != self.mask_id() {
                    return x;
                }
                let row = &logits[i * v..(i + 1) * v];
                (0..v).fold(0, |best, j| if row[j] > row[best] { j } else { best }) as u32
            })
            .collect())
    }
}

/// Random training windows with BERT's masking: (inputs, targets), targets -1 where not
/// chosen.
pub struct MaskedBatches {
    windows: BatchSampler,
    rng: Rng,
    vocab: usize,
}

impl MaskedBatches {
    pub fn new(tokens: &[u32], vocab: usize, batch: usize, ctx: usize, seed: u64) -> std::result::Result<Self, String> {
        let windows = BatchSampler::new(tokens, batch, ctx, seed)?;
        Ok(MaskedBatches { windows, rng: Rng::new(seed ^ 0x6d61_736b), vocab })
    }

    pub fn next_batch(&mut self) -> Result<(Tensor, Tensor)> {
        let (x, _) = self.windows.next_batch()?; // (B, T)
        let (b, t) = (x.shape()[0], x.shape()[1]);
        let mut ids = x.to_vec::<i32>()?;
        let mut targets = vec![-1i32; b * t];
        let chosen = ((t as f64 * 0.15).round() as usize).max(1);
        for row in 0..b {
            for p in self.choose(t, chosen) {
                let i = row * t + p;
                targets[i] = ids[i];
                let u = self.rng.below(10);
                if u < 8 {
                    ids[i] = self.vocab as i32; // [MASK]
                } else if u == 8 {
                    ids[i] = self.rng.below(self.vocab) as i32;
                }
            }
        }
        Ok((Tensor::from_vec(ids, &[b, t])?, Tensor::from_vec(targets, &[b, t])?))
    }

    /// `k` distinct positions of `0..t` (a partial Fisher-Yates shuffle).
    fn choose(&mut self, t: usize, k: usize) -> Vec<usize> {
        let mut all: Vec<usize> = (0..t).collect();
        for i in 0..k.min(t) {
            let j = i + self.rng.below(t - i);
            all.swap(i, j);
        }
        all.truncate(k.min(t));
        all
    }

    pub fn tokens_per_batch(&self) -> usize {
        self.windows.tokens_per_batch()
    }
}

/// A masked LM and its masked windows, for [`crate::fit`].
pub struct EncoderLearner {
    pub model: MaskedLm,
    pub batches: MaskedBatches,
}

impl Learner for EncoderLearner {
    fn next_loss(&mut self) -> std::result::Result<Tensor, TrainError> {
        let (x, y) = self.batches.next_batch()?;
        Ok(self.model.loss(&x, &y)?)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.parameters()
    }

    fn tokens_per_step(&self) -> usize {
        self.batches.tokens_per_batch()
    }
}
