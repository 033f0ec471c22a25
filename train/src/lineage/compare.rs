//! Train some or all of the lineage on one corpus: the n-gram is counted, the neural
//! models train interleaved in one `fit_interleaved` run (so under a time budget each
//! gets the same training time under the same machine load), then each is scored on the
//! validation split and the causal ones write a sample.

use super::encoder::{EncoderLearner, MaskedBatches, MaskedLm};
use super::lstm::{Lstm, LstmConfig, LstmLearner, StreamBatches};
use super::ngram::{Discounts, KneserNey};
use super::score::{overlapping_rows, score_rows, Score};
use super::Arch;
use crate::data::{BatchSampler, CharSplit};
use crate::fit::{fit_interleaved, Budget, FitConfig, FitReport, Learner};
use crate::{AdamWConfig, Clock, CosineSchedule, GptLearner, Progress, TrainError};
use lamina_model::{Gpt, GptConfig};
use lamina_tensor::Device;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Sampling {
    pub prompt: String,
    pub len: usize,
    pub temperature: f32,
    pub top_k: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct LineageConfig {
    /// For each neural model.
    pub budget: Budget,
    /// What training time counts, for the budget and the table (the n-gram's counting
    /// too): the process's CPU time by default, so that the comparison does not depend
    /// on what else the machine runs (`crate::clock`); the wall clock on a GPU.
    pub clock: Clock,
    pub ngram_order: usize,
    /// The GPT's shape (`vocab` is ignored); the encoder has the same one, without
    /// dropout (it has none).
    pub gpt: GptConfig,
    /// The LSTM's widths (`vocab` is ignored); it unrolls `gpt.ctx` steps a window.
    pub lstm: LstmConfig,
    /// Windows (LSTM: lanes) of `gpt.ctx` characters a step, for every neural model.
    pub batch: usize,
    pub max_lr: f32,
    pub min_lr: f32,
    /// The part of the budget spent warming the learning rate up.
    pub warmup_fraction: f32,
    pub grad_clip: Option<f32>,
    pub val_fraction: f32,
    /// Where the neural models train (the n-gram counts on the CPU).
    pub device: Device,
    pub seed: u64,
    pub progress: Progress,
    /// Text from the causal models after training (None: no sample).
    pub sampling: Option<Sampling>,
}

impl Default for LineageConfig {
    /// train-demo's GPT (2 layers, width 64, windows of 32, batch 32, AdamW 3e-3 cosine)
    /// with dropout 0.1; an encoder of the same shape; an LSTM of the same parameter count
    /// (width 128 over 64-wide embeddings); a 5-gram. 90 s of CPU time of training each.
    ///
    /// Measured on the shipped corpus (README, "The model lineage"; tests/lineage_order.rs):
    /// from 90 s the GPT is best; the LSTM is best at 60 s and has overfit by 120 s (worse
    /// than the n-gram), and at 90 s it lands on either side of the n-gram by seed. Without
    /// dropout the GPT overfits the 46,000 training characters too (3.27 bits/char after
    /// 120 s, against 2.87 with dropout 0.1 and 2.92 with 0.2).
    fn default() -> Self {
        let t = crate::TrainConfig::default();
        LineageConfig {
            budget: Budget::Time(Duration::from_secs(90)),
            clock: Clock::ProcessCpu,
            ngram_order: 5,
            gpt: GptConfig { dropout: 0.1, ..t.model },
            lstm: LstmConfig { vocab: 0, embd: 64, hidden: 128 },
            batch: t.batch,
            max_lr: t.max_lr,
            min_lr: t.min_lr,
            warmup_fraction: t.warmup as f32 / t.steps as f32,
            grad_clip: t.grad_clip,
            val_fraction: t.val_fraction,
            device: Device::Cpu,
            seed: t.seed,
            progress: Progress::Auto,
            sampling: None,
        }
    }
}

impl LineageConfig {
    fn fit_config(&self) -> FitConfig {
        let total = match self.budget {
            Budget::Steps(n) => n,
            Budget::Time(_) => 1000, // the schedule in thousandths of the budget
        };
        let warmup = (total as f32 * self.warmup_fraction).round() as usize;
        FitConfig {
            budget: self.budget,
            schedule: CosineSchedule { max_lr: self.max_lr, min_lr: self.min_lr, warmup, total },
            adamw: AdamWConfig::default(),
            grad_clip: self.grad_clip,
            clock: self.clock,
            progress: self.progress,
        }
    }
}

/// One model's line of the table.
#[derive(Debug)]
pub struct Entry {
    pub arch: Arch,
    /// Parameters; for the n-gram, the n-grams it stores.
    pub size: usize,
    /// Where it trained.
    pub device: Device,
    /// On `LineageConfig::clock`; counting time for the n-gram.
    pub train_time: Duration,
    /// The neural models' loss curves.
    pub fit: Option<FitReport>,
    /// On the validation split (the encoder's is a pseudo-log-likelihood).
    pub val: Score,
    /// On `LineageConfig::clock`.
    pub eval_time: Duration,
    pub sample: Option<String>,
}

enum Member {
    Ngram(KneserNey, Duration),
    Lstm(LstmLearner),
    Encoder(EncoderLearner),
    Gpt(GptLearner),
}

/// Train each of `arches` on `text` as `cfg` says, then score and sample them.
pub fn run(arches: &[Arch], text: &str, cfg: &LineageConfig) -> Result<Vec<Entry>, TrainError> {
    cfg.clock.check().map_err(TrainError::Config)?;
    let split = CharSplit::new(text, cfg.val_fraction)?;
    let mut members = arches.iter().map(|&a| Member::build(a, &split, cfg)).collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&str> = arches.iter().filter(|a| a.is_neural()).map(|a| a.name()).collect();
    let mut learners: Vec<&mut dyn Learner> = members.iter_mut().filter_map(Member::learner).collect();
    let mut fits = fit_interleaved(&mut learners, &names, &cfg.fit_config())?.into_iter();
    members
        .into_iter()
        .map(|m| {
            let fit = m.arch().is_neural().then(|| fits.next()).flatten();
            m.finish(fit, &split, cfg)
        })
        .collect()
}

fn windows(tokens: &[u32], what: &str, cfg: &LineageConfig) -> Result<BatchSampler, TrainError> {
    BatchSampler::new(tokens, cfg.batch, cfg.gpt.ctx, cfg.seed)
        .map_err(|e| TrainError::Config(format!("{what}: training split ({} chars): {e}", tokens.len())))
}

impl Member {
    fn build(arch: Arch, split: &CharSplit, cfg: &LineageConfig) -> Result<Member, TrainError> {
        let vocab = split.tokenizer.vocab_size();
        let gpt_cfg = GptConfig { vocab, ..cfg.gpt };
        Ok(match arch {
            Arch::Ngram => {
                let now = || cfg.clock.now().unwrap_or_default(); // `run` checked the clock
                let start = now();
                let model = KneserNey::fit(&split.train, vocab, cfg.ngram_order, Discounts::Estimated)?;
                Member::Ngram(model, now() - start)
            }
            Arch::Lstm => {
                let mut model = Lstm::new(LstmConfig { vocab, ..cfg.lstm }, cfg.seed)?;
                model.to_device(cfg.device)?;
                let batches = StreamBatches::new(&split.train, cfg.batch, cfg.gpt.ctx)
                    .map_err(|e| TrainError::Config(format!("lstm: training split: {e}")))?;
                Member::Lstm(LstmLearner::new(model, batches))
            }
            Arch::Encoder => {
                let mut model = MaskedLm::new(GptConfig { dropout: 0.0, ..gpt_cfg }, cfg.seed)?;
                model.to_device(cfg.device)?;
                let batches = MaskedBatches::new(&split.train, vocab, cfg.batch, cfg.gpt.ctx, cfg.seed)
                    .map_err(|e| TrainError::Config(format!("encoder: training split: {e}")))?;
                Member::Encoder(EncoderLearner { model, batches })
            }
            Arch::Gpt => {
                let mut model = Gpt::new(gpt_cfg, cfg.seed)?;
                model.to_device(cfg.device)?;
                model.set_training(true);
                Member::Gpt(GptLearner { model, batches: windows(&split.train, "gpt", cfg)? })
            }
        })
    }

    fn arch(&self) -> Arch {
        match self {
            Member::Ngram(..) => Arch::Ngram,
            Member::Lstm(_) => Arch::Lstm,
            Member::Encoder(_) => Arch::Encoder,
            Member::Gpt(_) => Arch::Gpt,
        }
    }

    fn learner(&mut self) -> Option<&mut dyn Learner> {
        match self {
            Member::Ngram(..) => None,
            Member::Lstm(l) => Some(l),
            Member::Encoder(l) => Some(l),
            Member::Gpt(l) => Some(l),
        }
    }

    fn finish(mut self, fit: Option<FitReport>, split: &CharSplit, cfg: &LineageConfig) -> Result<Entry, TrainError> {
        let arch = self.arch();
        if cfg.progress == Progress::Auto {
            eprintln!("scoring {arch} on the validation split ({} characters)", split.val.len());
        }
        let now = || cfg.clock.now().unwrap_or_default(); // `run` checked the clock
        let start = now();
        let val = self.score(&split.val)?;
        let eval_time = now() - start;
        let sample = match &cfg.sampling {
            Some(s) if arch.is_causal() => Some(self.sample(split, s, cfg.seed)?),
            _ => None,
        };
        let (size, device, train_time) = match &self {
            Member::Ngram(m, t) => (m.num_counts(), Device::Cpu, *t),
            Member::Lstm(l) => (l.model.num_parameters(), cfg.device, Duration::ZERO),
            Member::Encoder(l) => (l.model.num_parameters(), cfg.device, Duration::ZERO),
            Member::Gpt(l) => (l.model.num_parameters(), cfg.device, Duration::ZERO),
        };
        let train_time = fit.as_ref().map_or(train_time, FitReport::train_time);
        Ok(Entry { arch, size, device, train_time, fit, val, eval_time, sample })
    }

    fn score(&mut self, val: &[u32]) -> Result<Score, TrainError> {
        Ok(match self {
            Member::Ngram(m, _) => {
                let (nats, count) = m.score(val);
                Score { nats, count }
            }
            // 16 stretches, each after 64 characters of context.
            Member::Lstm(l) => l.model.score(val, 16, 64, 64)?,
            Member::Encoder(l) => l.model.score(val, 64)?,
            // Windows of ctx advanced by ctx/2: at least ctx/2 characters of context.
            Member::Gpt(l) => {
                l.model.set_training(false);
                let ctx = l.model.cfg.ctx;
                score_rows(&overlapping_rows(val, ctx, ctx / 2), 64, |ids| l.model.forward(ids))?
            }
        })
    }

    fn sample(&self, split: &CharSplit, s: &Sampling, seed: u64) -> Result<String, TrainError> {
        let prompt = split.tokenizer.encode(&s.prompt)?;
        let ids = match self {
            Member::Ngram(m, _) => m.generate(&prompt, s.len, s.temperature, s.top_k, seed)?,
            Member::Lstm(l) => l.model.generate(&prompt, s.len, s.temperature, s.top_k, seed)?,
            Member::Gpt(l) => l.model.generate(&prompt, s.len, s.temperature, s.top_k, seed)?,
            Member::Encoder(_) => return Err(TrainError::Config("the encoder does not generate text".into())),
        };
        Ok(split.tokenizer.decode(&ids)?)
    }
}
