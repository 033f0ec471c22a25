//! Lamina's training: the AdamW optimizer, a warmup + cosine learning-rate schedule,
//! gradient clipping by global norm, a seeded batch sampler, the loop that trains
//! train-demo's from-scratch models (`fit`) and its character-level GPT
//! (`train_char_gpt`), the model lineage of `train-demo --arch/--compare` (`lineage`:
//! n-gram, LSTM, masked-LM encoder, GPT on one corpus), the supervised fine-tuning data
//! pipeline and exact-match evaluation (`sft`), evaluation on task files (`eval`), and the
//! collectives of data-parallel training across processes (`dist`: one process, or MPI).

pub mod alloc;
mod clip;
pub mod clock;
pub mod data;
pub mod dist;
pub mod distill;
pub mod eval;
pub mod finetune;
pub mod fit;
pub mod lineage;
mod optim;
mod progress;
mod schedule;
pub mod sft;
mod trainer;

pub use alloc::retain_freed_memory;
pub use clip::{clip_factor, grad_norm};
pub use clock::Clock;
pub use data::{unigram_entropy, BatchSampler, CharSplit, Rng};
pub use fit::{fit, fit_interleaved, Budget, FitConfig, FitReport, Learner, PhaseTimes};
pub use optim::{decays, AdamW, AdamWConfig, Optimizer, Sgd};
pub use progress::Progress;
pub use schedule::{CosineSchedule, Decay, LrSchedule};
pub use trainer::{mean_loss, train_char_gpt, GptLearner, TrainConfig, TrainError, TrainReport};
