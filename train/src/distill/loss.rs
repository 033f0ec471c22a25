//! The distillation loss on a student's logits, composed of tensor ops so the engine's
//! autograd differentiates it on any backend:
//!
//! `loss = kd_weight * τ² * mean_rows KL + ce_weight * CE(student logits, labels)`
//!
//! where KL is between the teacher's and the student's distributions at temperature τ
//! (Hinton et al., 2015: the τ² keeps the soft gradients' scale independent of τ),
//! forward KL(teacher‖student) or reverse KL(student‖teacher).
//!
//! **The top-k approximation.** The teacher is known only through its k most likely
//! tokens and the mass r of the rest (what the cache stores). Both distributions are
//! coarsened to the same k + 1 outcomes: the k ids, and "any other token", whose student
//! mass is the sum of the student's probabilities outside the teacher's top k. The KL of
//! the coarsened pair is a true KL (finite, zero iff they agree on the k + 1 outcomes) and,
//! by the data-processing inequality, never more than the full-vocabulary KL; with k = 16
//! on SmolLM2 the rest holds a few percent of the teacher's mass on average (`lamina
//! distill` prints it), so the tail is matched only in total.

use lamina_tensor::{DType, Tensor};

/// log r is floored here (r ≈ 1.8e-35): a rest mass that small is zero for the forward
/// KL (its term is r·(log r − log q)), and the reverse KL stays finite where the teacher
/// put (numerically) nothing outside its top k.
pub const MIN_LOG_REST: f32 = -80.0;

/// The teacher's top-k distribution at `rows` scored positions, at temperature τ.
#[derive(Clone, Debug, PartialEq)]
pub struct TeacherTopK {
    pub k: usize,
    /// (rows, k) token ids, most likely first.
    pub ids: Vec<u32>,
    /// (rows, k) log-probabilities of those ids.
    pub log_probs: Vec<f32>,
    /// (rows) log of the probability mass outside the top k.
    pub log_rest: Vec<f32>,
}

impl TeacherTopK {
    pub fn rows(&self) -> usize {
        self.log_rest.len()
    }

    /// The top-k rows of full log-probability rows (rows, vocab): what the cache stores.
    /// Ties keep the lower id first. The rest mass is summed in f64. `k` is clamped to
    /// 1..vocab (at least one token stays in the rest).
    pub fn from_log_probs(log_probs: &[f32], vocab: usize, k: usize) -> TeacherTopK {
        let k = k.clamp(1, vocab.max(2) - 1);
        let rows = log_probs.len().checked_div(vocab).unwrap_or(0);
        let mut out = TeacherTopK { k, ids: Vec::with_capacity(rows * k), log_probs: Vec::new(), log_rest: Vec::new() };
        let mut order: Vec<u32> = Vec::with_capacity(vocab);
        for row in log_probs.chunks_exact(vocab.max(1)).take(rows) {
            order.clear();
            order.extend(0..vocab as u32);
            let by_prob = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
            order.select_nth_unstable_by(k - 1, by_prob);
            order[..k].sort_unstable_by(by_prob);
            out.ids.extend_from_slice(&order[..k]);
            out.log_probs.extend(order[..k].iter().map(|&i| row[i as usize]));
            let rest: f64 = order[k..].iter().map(|&i| (row[i as usize] as f64).exp()).sum();
            out.log_rest.push((rest.ln() as f32).max(MIN_LOG_REST));
        }
        out
    }
}

/// Which way the KL divergence goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Divergence {
    /// KL(teacher‖student): mass-covering (Hinton et al.).
    Forward,
    /// KL(student‖teacher): mode-seeking (as in MiniLLM).
    Reverse,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistillLoss {
    pub temperature: f32,
    pub divergence: Divergence,
    /// Weight of τ²·KL.
    pub kd_weight: f32,
    /// Weight of the cross-entropy with the ground-truth labels (at temperature 1).
    pub ce_weight: f32,
}

impl DistillLoss {
    /// The 0-d loss for student `logits` (rows, vocab) at the scored positions, the
    /// teacher's top k there, and the ground-truth next tokens `labels` (rows).
    pub fn loss(&self, logits: &Tensor, teacher: &TeacherTopK, labels: &[u32]) -> lamina_tensor::Result<Tensor> {
        let bad = |msg: String| lamina_tensor::Error::InvalidArgument { op: "distill_loss", msg };
        let (rows, vocab) = match logits.shape() {
            &[rows, vocab] => (rows, vocab),
            _ => (usize::MAX, 0),
        };
        let k = teacher.k;
        if teacher.rows() != rows
            || labels.len() != rows
            || k == 0
            || teacher.ids.len() != rows * k
            || teacher.log_probs.len() != rows * k
        {
            return Err(bad(format!(
                "logits {:?}, {} teacher rows of k {}, {} labels",
                logits.shape(),
                teacher.rows(),
                teacher.k,
                labels.len()
            )));
        }
        if teacher.k >= vocab || teacher.ids.iter().any(|&i| i as usize >= vocab) {
            return Err(bad(format!("teacher ids must be fewer than and inside the vocabulary of {vocab}")));
        }
        let mut total = self.kl(logits, teacher)?.mean_all()?.scale(self.kd_weight * self.temperature.powi(2))?;
        if self.ce_weight != 0.0 {
            let targets = Tensor::from_slice(labels, &[rows])?;
            total = total.add(&logits.cross_entropy(&targets, -100)?.scale(self.ce_weight)?)?;
        }
        Ok(total)
    }

    /// Per-row KL over the k + 1 outcomes (rows).
    fn kl(&self, logits: &Tensor, t: &TeacherTopK) -> lamina_tensor::Result<Tensor> {
        let (rows, vocab, k) = (logits.shape()[0], logits.shape()[1], t.k);
        let dev = logits.device();
        let host = |v: Vec<f32>, shape: &[usize]| Tensor::from_f32s(v, shape, DType::F32)?.to_device(dev);
        // Student log-probabilities at τ (rows, vocab), at the teacher's ids (rows, k),
        // and of the rest (rows, 1): the sum of positive terms, so no cancellation.
        let lq = logits.scale(1.0 / self.temperature)?.log_softmax(-1)?;
        let lq_top = lq.gather(1, &Tensor::from_slice(&t.ids, &[rows, k])?)?;
        let mut outside = vec![1f32; rows * vocab];
        for (r, ids) in t.ids.chunks_exact(k).enumerate() {
            ids.iter().for_each(|&i| outside[r * vocab + i as usize] = 0.0);
        }
        let q_rest = lq.exp()?.mul(&host(outside, &[rows, vocab])?)?.sum(&[1], true)?;
        let lq_rest = q_rest.clamp(f32::MIN_POSITIVE, 1.0)?.log()?;
        let lp_top = host(t.log_probs.clone(), &[rows, k])?;
        let lp_rest = host(t.log_rest.clone(), &[rows, 1])?;
        match self.divergence {
            Divergence::Forward => {
                let p_top = lp_top.exp()?;
                let p_rest = lp_rest.exp()?;
                let top = p_top.mul(&lp_top.sub(&lq_top)?)?.sum(&[1], false)?;
                top.add(&p_rest.mul(&lp_rest.sub(&lq_rest)?)?.reshape(&[rows])?)
            }
            Divergence::Reverse => {
                let top = lq_top.exp()?.mul(&lq_top.sub(&lp_top)?)?.sum(&[1], false)?;
                top.add(&q_rest.mul(&lq_rest.sub(&lp_rest)?)?.reshape(&[rows])?)
            }
        }
    }
}
