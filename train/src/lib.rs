//! Lamina's training: the AdamW optimizer, a warmup + cosine learning-rate schedule,
//! gradient clipping by global norm, a seeded batch sampler, and the loop that trains a
//! character-level GPT (`train_char_gpt`), and the supervised fine-tuning data pipeline
//! and exact-match evaluation (`sft`), and evaluation on task files (`eval`).

pub mod alloc;
mod clip;
pub mod data;
pub mod eval;
pub mod finetune;
mod optim;
mod schedule;
pub mod sft;
mod trainer;

pub use alloc::retain_freed_memory;
pub use clip::{clip_factor, grad_norm};
pub use data::{unigram_entropy, BatchSampler, Rng};
pub use optim::{decays, AdamW, AdamWConfig, Optimizer, Sgd};
pub use schedule::{CosineSchedule, Decay, LrSchedule};
pub use trainer::{mean_loss, train_char_gpt, PhaseTimes, Progress, TrainConfig, TrainError, TrainReport};
