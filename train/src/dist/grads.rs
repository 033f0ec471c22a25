//! One data-parallel step's communication: every rank's gradients (and a few per-step
//! scalars, such as the summed loss) summed across the ranks in one bucketed all-reduce,
//! and the sums written back as the leaves' gradients, so the optimizer that follows sees
//! what one process training on the whole batch would have seen. A leaf that backward
//! reached on no rank keeps no gradient, as in one process (the optimizer then leaves it
//! and its moments alone); one that some rank reached gets the sum, zeros counted for the
//! others.
//!
//! Gradients are staged through host memory (`to_vec_f32`, then `assign`), on the CPU and
//! on a GPU alike: two copies of the trainable parameters' size per step, plus the
//! all-reduce (measured in docs/SCALING.md).

use super::{Collective, DistError, GradBuckets, DEFAULT_BUCKET_ELEMS};
use lamina_tensor::Tensor;
use std::ops::Range;

/// The rows of a global batch of `batch` rows that `rank` of `size` trains on: contiguous,
/// balanced (sizes differ by at most one), in rank order, covering every row once.
pub fn shard_rows(batch: usize, rank: usize, size: usize) -> Range<usize> {
    batch * rank / size..batch * (rank + 1) / size
}

/// Sums gradients across the ranks of a group; built once per run from the leaves.
pub struct GradSync<'a> {
    group: &'a dyn Collective,
    buckets: GradBuckets,
    leaves: Vec<Tensor>,
}

impl<'a> GradSync<'a> {
    /// `leaves`: the trainable tensors, in the same order on every rank; `scalars`: how
    /// many per-step numbers travel with them.
    pub fn new(group: &'a dyn Collective, leaves: Vec<Tensor>, scalars: usize) -> Result<Self, DistError> {
        let mut lens: Vec<usize> = leaves.iter().map(Tensor::numel).collect();
        // The scalars, then one count per leaf of the ranks whose backward reached it.
        lens.push(scalars + leaves.len());
        let buckets = GradBuckets::new(lens, DEFAULT_BUCKET_ELEMS)?;
        Ok(GradSync { group, buckets, leaves })
    }

    /// All-reduce calls per step.
    pub fn calls(&self) -> usize {
        self.buckets.count()
    }

    /// Replaces every leaf's gradient with its sum over the ranks, and `scalars` with
    /// theirs. A leaf that backward did not reach on this rank counts as zeros; one that
    /// it reached on no rank is left without a gradient.
    pub fn sum(&self, scalars: &mut [f32]) -> Result<(), DistError> {
        if self.group.size() == 1 {
            return Ok(());
        }
        let mut tail: Vec<f32> = scalars.to_vec();
        tail.extend(self.leaves.iter().map(|p| if p.grad().is_some() { 1.0 } else { 0.0 }));
        let mut grads: Vec<Vec<f32>> = self
            .leaves
            .iter()
            .map(|p| match p.grad() {
                Some(g) => g.to_vec_f32(),
                None => Ok(vec![0.0; p.numel()]),
            })
            .collect::<Result<_, _>>()?;
        let mut parts: Vec<&mut [f32]> = grads.iter_mut().map(Vec::as_mut_slice).collect();
        parts.push(&mut tail);
        self.buckets.sum(self.group, &mut parts)?;
        let (sums, reached) = tail.split_at(scalars.len());
        scalars.copy_from_slice(sums);
        for ((p, sum), &reached) in self.leaves.iter().zip(grads).zip(reached) {
            if reached == 0.0 {
                continue;
            }
            let sum = Tensor::from_vec(sum, p.shape())?;
            match p.grad() {
                Some(g) => g.assign(&sum)?,
                None => {
                    // No gradient slot yet (backward did not reach this leaf here): make
                    // one of zeros through autograd, then fill it.
                    p.scale(0.0)?.sum_all()?.backward()?;
                    p.grad().expect("backward just set it").assign(&sum)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_row_once_in_order() {
        for batch in 0..12 {
            for size in 1..5 {
                let shards: Vec<_> = (0..size).map(|r| shard_rows(batch, r, size)).collect();
                assert_eq!(shards[0].start, 0);
                assert_eq!(shards[size - 1].end, batch);
                for w in shards.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let lens: Vec<usize> = shards.iter().map(|s| s.len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1, "{lens:?}");
            }
        }
    }
}
