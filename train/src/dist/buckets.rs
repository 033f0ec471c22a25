//! Gradient buckets: the trainable tensors' gradients laid end to end and cut into buffers
//! of at most `cap` elements, so that summing them across ranks is a few large all-reduce
//! calls (PyTorch DDP's buckets, without the overlap with backward) instead of one small
//! call per tensor, whose fixed latency would dominate for LoRA's many small matrices.
//! A tensor may straddle two buckets; no bucket is padded.

use super::{Collective, DistError};

/// 4 Mi elements (16 MiB of f32): large enough that per-call latency is negligible, small
/// enough that a bucket's count fits MPI's `int` with a wide margin.
pub const DEFAULT_BUCKET_ELEMS: usize = 1 << 22;

/// The packing of parts of fixed lengths (gradients, plus any per-step scalars) into
/// buckets. Built once per run from the parameter shapes; every rank builds the same.
#[derive(Clone, Debug, PartialEq)]
pub struct GradBuckets {
    lens: Vec<usize>,
    total: usize,
    cap: usize,
}

impl GradBuckets {
    /// `lens`: the element count of each part, in the order `sum` will receive them.
    pub fn new(lens: Vec<usize>, cap: usize) -> Result<Self, DistError> {
        if cap == 0 || cap > i32::MAX as usize {
            return Err(DistError::Usage(format!("bucket size {cap}: expected 1..={}", i32::MAX)));
        }
        let total = lens.iter().sum();
        Ok(GradBuckets { lens, total, cap })
    }

    /// The number of all-reduce calls a step makes.
    pub fn count(&self) -> usize {
        self.total.div_ceil(self.cap)
    }

    /// Elements in all the parts together.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The parts laid end to end and cut into buckets.
    pub fn pack(&self, parts: &[&[f32]]) -> Result<Vec<Vec<f32>>, DistError> {
        self.check(parts.iter().map(|p| p.len()))?;
        let mut buckets: Vec<Vec<f32>> =
            (0..self.count()).map(|b| Vec::with_capacity(self.cap.min(self.total - b * self.cap))).collect();
        let mut b = 0;
        for part in parts {
            let mut rest = *part;
            while !rest.is_empty() {
                let room = self.cap - buckets[b].len();
                let (now, later) = rest.split_at(room.min(rest.len()));
                buckets[b].extend_from_slice(now);
                if buckets[b].len() == self.cap {
                    b += 1;
                }
                rest = later;
            }
        }
        Ok(buckets)
    }

    /// The inverse of `pack`: each part's elements copied back out of the buckets.
    pub fn unpack(&self, buckets: &[Vec<f32>], parts: &mut [&mut [f32]]) -> Result<(), DistError> {
        self.check(parts.iter().map(|p| p.len()))?;
        let mut flat = buckets.iter().flat_map(|b| b.iter().copied());
        for part in parts.iter_mut() {
            for (dst, src) in part.iter_mut().zip(flat.by_ref()) {
                *dst = src;
            }
        }
        Ok(())
    }

    /// Sums every part element-wise across the ranks of `group`, in place: pack, one
    /// all-reduce per bucket (all in flight together), unpack. With one rank, nothing moves.
    pub fn sum(&self, group: &dyn Collective, parts: &mut [&mut [f32]]) -> Result<(), DistError> {
        if group.size() == 1 {
            return self.check(parts.iter().map(|p| p.len()));
        }
        let mut buckets = self.pack(&parts.iter().map(|p| &**p).collect::<Vec<_>>())?;
        group.all_reduce_sum(&mut buckets)?;
        self.unpack(&buckets, parts)
    }

    fn check(&self, lens: impl ExactSizeIterator<Item = usize>) -> Result<(), DistError> {
        let got: Vec<usize> = lens.collect();
        if got == self.lens {
            Ok(())
        } else {
            Err(DistError::Usage(format!(
                "gradient buckets were planned for {} parts of {} elements in all, got {} parts of {}",
                self.lens.len(),
                self.total,
                got.len(),
                got.iter().sum::<usize>()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_straddle_buckets_and_come_back_unchanged() {
        let parts: Vec<Vec<f32>> = [3usize, 0, 5, 1, 4]
            .iter()
            .scan(0f32, |n, &len| {
                let p = (0..len).map(|i| *n + i as f32).collect::<Vec<_>>();
                *n += 100.0;
                Some(p)
            })
            .collect();
        let plan = GradBuckets::new(parts.iter().map(Vec::len).collect(), 4).unwrap();
        assert_eq!((plan.total(), plan.count()), (13, 4));
        let refs: Vec<&[f32]> = parts.iter().map(Vec::as_slice).collect();
        let buckets = plan.pack(&refs).unwrap();
        assert_eq!(buckets.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4, 1]);
        assert_eq!(buckets[0], [0.0, 1.0, 2.0, 200.0]);
        assert_eq!(buckets[3], [403.0]);
        let mut back: Vec<Vec<f32>> = parts.iter().map(|p| vec![f32::NAN; p.len()]).collect();
        let mut outs: Vec<&mut [f32]> = back.iter_mut().map(Vec::as_mut_slice).collect();
        plan.unpack(&buckets, &mut outs).unwrap();
        assert_eq!(back, parts);
    }

    #[test]
    fn a_part_list_other_than_the_plan_is_an_error() {
        let plan = GradBuckets::new(vec![2, 3], 8).unwrap();
        assert!(plan.pack(&[&[1.0, 2.0]]).is_err());
        assert!(plan.pack(&[&[1.0, 2.0], &[3.0, 4.0]]).is_err());
        assert!(GradBuckets::new(vec![1], 0).is_err());
        let mut a = [0f32; 2];
        let mut b = [0f32; 2];
        let err = plan.sum(&super::super::SingleProcess, &mut [&mut a, &mut b]).unwrap_err();
        assert!(err.to_string().contains("planned for 2 parts of 5 elements"), "{err}");
    }
}
