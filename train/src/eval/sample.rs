//! Seeded choices: which items `--limit` keeps and which few-shot examples each item gets.
//! Both depend only on the seed, the task's name and the item's index, so a run is
//! reproducible and adding a task does not change another task's draws.

use crate::data::Rng;
use crate::sft::split::{shuffle, stream};

/// A stable 64-bit tag for a task name (FNV-1a).
fn tag(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

fn rng(seed: u64, task: &str, index: u64) -> Rng {
    stream(seed, tag(task) ^ index.rotate_left(32))
}

/// The indices of `limit` of `n` items (all of them when `limit` is None or at least `n`),
/// chosen with `seed`, in increasing order.
pub fn subset(n: usize, limit: Option<usize>, seed: u64, task: &str) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    let Some(k) = limit.filter(|&k| k < n) else { return all };
    shuffle(&mut all, &mut rng(seed, task, u64::MAX));
    all.truncate(k);
    all.sort_unstable();
    all
}

/// `k` distinct indices of a pool of `pool` examples for item `index`, in drawn order.
pub fn fewshot(pool: usize, k: usize, seed: u64, task: &str, index: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..pool).collect();
    shuffle(&mut all, &mut rng(seed, task, index as u64));
    all.truncate(k);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_are_seeded_sorted_and_distinct() {
        let a = subset(100, Some(10), 1, "t");
        assert_eq!(a, subset(100, Some(10), 1, "t"));
        assert_ne!(a, subset(100, Some(10), 2, "t"));
        assert_ne!(a, subset(100, Some(10), 1, "u"));
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a.len() == 10);
        assert_eq!(subset(5, Some(10), 1, "t"), [0, 1, 2, 3, 4]);
        assert_eq!(subset(5, None, 1, "t").len(), 5);
    }

    #[test]
    fn fewshot_draws_differ_per_item_and_never_repeat() {
        let a = fewshot(20, 5, 7, "t", 0);
        let mut s = a.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 5);
        assert_eq!(a, fewshot(20, 5, 7, "t", 0));
        assert_ne!(a, fewshot(20, 5, 7, "t", 1));
        assert_eq!(fewshot(3, 5, 7, "t", 0).len(), 3);
    }
}
