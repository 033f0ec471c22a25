//! Knowledge distillation: a student trained on a teacher's token distributions.
//!
//! - `loss.rs`: KL(teacher‖student) or KL(student‖teacher) at temperature τ (scaled by τ²),
//!   mixed with the ground-truth cross-entropy, over the teacher's top k (see its header
//!   for the approximation), composed of tensor ops so autograd differentiates it.
//! - `cache/`: the teacher's top k at every scored position of the training data, on disk
//!   (sharded, atomic, resumable), computed once.
//! - `student.rs`: a student made from the teacher's own weights (a subset of its blocks).
//! - [`Distill`]: a [`Trainee`] whose loss is the distillation loss, over any trainee of
//!   a LLaMA student (every weight, LoRA, ...), so the fine-tuning loop (accumulation,
//!   clipping, schedules, validation, checkpoints, exact resume) runs it unchanged.

pub mod cache;
pub mod loss;
pub mod student;

pub use cache::{CacheSpec, TeacherCache};
pub use loss::{DistillLoss, Divergence, TeacherTopK};

use crate::finetune::{TrainBatch, Trainee};
use crate::TrainError;
use lamina_model::Llama;
use lamina_tensor::Tensor;
use std::path::Path;

/// A student being distilled: `inner` says what is trained and how it is exported; its
/// model's logits go through the distillation loss against the cached teacher.
///
/// Training steps (`step_seed` is `Some`) use the distillation loss; evaluation (`None`:
/// the loop's validation) scores the student's own cross-entropy with the labels, so the
/// validation loss and perplexity it reports are the student's, comparable with a student
/// trained without a teacher, and need no teacher outputs for the validation data.
pub struct Distill<'a> {
    pub student: &'a Llama,
    pub inner: &'a dyn Trainee,
    pub cache: &'a TeacherCache,
    pub loss: DistillLoss,
}

impl Distill<'_> {
    /// The distillation loss of batch `b` and the number of scored positions.
    pub fn distill_loss(&self, b: &TrainBatch, step_seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        let (rows, teacher, labels) = self.cache.targets(b)?;
        if rows.is_empty() {
            return Err(TrainError::Config("the batch has no scored tokens".into()));
        }
        let logits = self.student.forward_train(&b.tokens, b.batch, step_seed)?;
        let scored = logits.index_select(0, &Tensor::from_slice(&rows, &[rows.len()])?)?;
        let kd = self.loss;
        let loss = lamina_tensor::cpu::parallel::install(|| kd.loss(&scored, &teacher, &labels))?;
        Ok((loss, rows.len()))
    }
}

impl Trainee for Distill<'_> {
    fn loss(&self, b: &TrainBatch, step_seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        match step_seed {
            Some(_) => self.distill_loss(b, step_seed),
            None => Ok(self.student.loss(&b.tokens, &b.labels, b.batch, None)?),
        }
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.inner.parameters()
    }

    fn export(&self, dir: &Path) -> Result<(), TrainError> {
        self.inner.export(dir)
    }
}
