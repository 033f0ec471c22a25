//! Batches of encoded examples, bucketed by length, padded on the right.
//!
//! Each epoch the examples are shuffled (seeded by the seed and the epoch number), taken
//! in windows of `batch_size * bucket_batches`, sorted by length within each window and cut
//! into batches, and the batches are shuffled: rows of a batch have similar lengths (little
//! padding) while the order stays random. The order of an epoch is a pure function of
//! (data, configuration, epoch), so a position (epoch, index in the epoch's order) is all
//! a resumed run needs to see exactly the batches an uninterrupted run would.
//!
//! Padding goes on the right. With causal attention position i attends to positions <= i
//! only, so real tokens never see the pads after them: a padded row computes exactly what
//! the unpadded sequence would, and its pads carry the label `IGNORE`, so they add nothing
//! to the loss.

use super::encode::{Encoded, IGNORE};
use super::report::SftError;
use super::split::{shuffle, stream};
use lamina_tensor::Tensor;
use serde::{Deserialize, Serialize};

/// One batch, row-major (batch x seq).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub batch: usize,
    pub seq: usize,
    /// (batch, seq) token ids, pads on the right.
    pub tokens: Vec<u32>,
    /// (batch, seq) labels: the next token where scored, `IGNORE` elsewhere and on pads.
    pub labels: Vec<i32>,
    /// Which examples (indices into the batcher's list) the rows are.
    pub rows: Vec<usize>,
}

impl Batch {
    /// Gather `rows` of `examples`, padded with `pad_id` to the longest.
    pub fn from_rows(examples: &[Encoded], rows: &[usize], pad_id: u32) -> Batch {
        let seq = rows.iter().map(|&r| examples[r].len()).max().unwrap_or(0);
        let mut tokens = vec![pad_id; rows.len() * seq];
        let mut labels = vec![IGNORE; rows.len() * seq];
        for (b, &r) in rows.iter().enumerate() {
            let e = &examples[r];
            tokens[b * seq..b * seq + e.len()].copy_from_slice(&e.tokens);
            labels[b * seq..b * seq + e.len()].copy_from_slice(&e.labels);
        }
        Batch { batch: rows.len(), seq, tokens, labels, rows: rows.to_vec() }
    }

    /// Positions whose prediction counts in the loss.
    pub fn tokens_scored(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE).count()
    }

    /// The labels as the I32 tensor (batch * seq) `Tensor::cross_entropy(targets, -100)` takes.
    pub fn labels_tensor(&self) -> lamina_tensor::Result<Tensor> {
        Tensor::from_vec(self.labels.clone(), &[self.labels.len()])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Rows per batch (the last batch of an epoch may have fewer).
    pub batch_size: usize,
    pub seed: u64,
    /// How many batches' worth of examples are sorted by length together: 1 is no
    /// bucketing, larger means less padding and less randomness in a batch's company.
    pub bucket_batches: usize,
    pub pad_id: u32,
}

/// Where a batcher stands: the next batch is `index` in the order of `epoch`. Serialize it
/// with a checkpoint; `fingerprint` (of the data and the configuration) makes resuming
/// with other data or settings an error instead of a quietly different run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPosition {
    pub epoch: u64,
    pub index: usize,
    pub fingerprint: u64,
}

/// An endless stream of training batches, epoch after epoch.
#[derive(Debug)]
pub struct Batcher {
    examples: Vec<Encoded>,
    config: BatcherConfig,
    fingerprint: u64,
    epoch: u64,
    index: usize,
    order: Vec<Vec<usize>>,
}

impl Batcher {
    pub fn new(examples: Vec<Encoded>, config: BatcherConfig) -> Result<Batcher, SftError> {
        if config.batch_size == 0 || config.bucket_batches == 0 {
            return Err(SftError::Config("batch size and bucket_batches must be at least 1".into()));
        }
        if examples.is_empty() {
            return Err(SftError::Config("no training examples to batch".into()));
        }
        if let Some(i) = examples.iter().position(|e| e.is_empty() || e.tokens.len() != e.labels.len()) {
            return Err(SftError::Config(format!("example {i} is empty or has as many labels as tokens")));
        }
        let fingerprint = fingerprint(&examples, &config);
        let mut b = Batcher { examples, config, fingerprint, epoch: 0, index: 0, order: Vec::new() };
        b.order = b.epoch_order(0);
        Ok(b)
    }

    /// A batcher that continues from `position` (taken from a batcher over the same data
    /// with the same configuration).
    pub fn resume(examples: Vec<Encoded>, config: BatcherConfig, position: BatchPosition) -> Result<Batcher, SftError> {
        let mut b = Batcher::new(examples, config)?;
        if position.fingerprint != b.fingerprint {
            return Err(SftError::Config(
                "the saved batch position belongs to other data or another batch configuration".into(),
            ));
        }
        if position.index > b.batches_per_epoch() {
            return Err(SftError::Config(format!(
                "the saved batch position {} is past the {} batches of an epoch",
                position.index,
                b.batches_per_epoch()
            )));
        }
        b.epoch = position.epoch;
        b.index = position.index;
        b.order = b.epoch_order(position.epoch);
        Ok(b)
    }

    pub fn position(&self) -> BatchPosition {
        BatchPosition { epoch: self.epoch, index: self.index, fingerprint: self.fingerprint }
    }

    pub fn batches_per_epoch(&self) -> usize {
        self.examples.len().div_ceil(self.config.batch_size)
    }

    pub fn examples(&self) -> &[Encoded] {
        &self.examples
    }

    /// The next batch; after the last batch of an epoch comes the first of the next.
    pub fn next_batch(&mut self) -> Batch {
        if self.index == self.order.len() {
            self.epoch += 1;
            self.index = 0;
            self.order = self.epoch_order(self.epoch);
        }
        let batch = Batch::from_rows(&self.examples, &self.order[self.index], self.config.pad_id);
        self.index += 1;
        batch
    }

    /// The batches (as example indices) of one epoch, in the order they are served.
    pub fn epoch_order(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = stream(self.config.seed, epoch.wrapping_add(2));
        let mut idx: Vec<usize> = (0..self.examples.len()).collect();
        shuffle(&mut idx, &mut rng);
        let window = self.config.batch_size.saturating_mul(self.config.bucket_batches);
        let mut batches = Vec::with_capacity(self.batches_per_epoch());
        for chunk in idx.chunks_mut(window) {
            // Stable: equal lengths keep their shuffled order.
            chunk.sort_by_key(|&i| self.examples[i].len());
            batches.extend(chunk.chunks(self.config.batch_size).map(<[usize]>::to_vec));
        }
        shuffle(&mut batches, &mut rng);
        batches
    }
}

/// Validation batches: every example once, sorted by length (least padding), in order.
pub fn eval_batches(examples: &[Encoded], batch_size: usize, pad_id: u32) -> Result<Vec<Batch>, SftError> {
    if batch_size == 0 {
        return Err(SftError::Config("batch size must be at least 1".into()));
    }
    let mut idx: Vec<usize> = (0..examples.len()).collect();
    idx.sort_by_key(|&i| examples[i].len());
    Ok(idx.chunks(batch_size).map(|rows| Batch::from_rows(examples, rows, pad_id)).collect())
}

/// FNV-1a over the configuration and every token and label.
fn fingerprint(examples: &[Encoded], c: &BatcherConfig) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |x: u64| {
        for byte in x.to_le_bytes() {
            h = (h ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for x in [c.batch_size as u64, c.seed, c.bucket_batches as u64, c.pad_id as u64, examples.len() as u64] {
        eat(x);
    }
    for e in examples {
        eat(e.len() as u64);
        e.tokens.iter().for_each(|&t| eat(t as u64));
        e.labels.iter().for_each(|&l| eat(l as u64));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Example i: length 1 + (i * 7) % 23, tokens 1000 * i + position, the last half scored.
    fn examples(n: usize) -> Vec<Encoded> {
        (0..n)
            .map(|i| {
                let len = 1 + (i * 7) % 23;
                let tokens: Vec<u32> = (0..len).map(|p| (1000 * i + p) as u32).collect();
                let labels = (0..len).map(|p| if p >= len / 2 && p + 1 < len { tokens[p + 1] as i32 } else { IGNORE });
                Encoded { labels: labels.collect(), tokens }
            })
            .collect()
    }

    fn config(seed: u64) -> BatcherConfig {
        BatcherConfig { batch_size: 4, seed, bucket_batches: 3, pad_id: 99 }
    }

    #[test]
    fn every_epoch_serves_every_example_once_and_reshuffles() {
        let mut b = Batcher::new(examples(50), config(1)).unwrap();
        assert_eq!(b.batches_per_epoch(), 13);
        let mut epochs: Vec<Vec<usize>> = Vec::new();
        for _ in 0..3 {
            let mut seen = Vec::new();
            for _ in 0..13 {
                seen.extend(b.next_batch().rows);
            }
            epochs.push(seen.clone());
            seen.sort();
            assert_eq!(seen, (0..50).collect::<Vec<_>>());
        }
        assert_ne!(epochs[0], epochs[1]);
        assert_ne!(epochs[1], epochs[2]);
        assert_eq!(b.position().epoch, 2);
        let other = Batcher::new(examples(50), config(2)).unwrap();
        assert_ne!(other.epoch_order(0), Batcher::new(examples(50), config(1)).unwrap().epoch_order(0));
    }

    #[test]
    fn rows_are_padded_on_the_right_with_ignored_labels() {
        let ex = examples(10);
        let b = Batch::from_rows(&ex, &[3, 0, 7], 99);
        let longest = [3, 0, 7].iter().map(|&i| ex[i].len()).max().unwrap();
        assert_eq!((b.batch, b.seq), (3, longest));
        for (row, &i) in [3, 0, 7].iter().enumerate() {
            let (t, l) = (&b.tokens[row * b.seq..][..b.seq], &b.labels[row * b.seq..][..b.seq]);
            let n = ex[i].len();
            assert_eq!(&t[..n], ex[i].tokens.as_slice());
            assert_eq!(&l[..n], ex[i].labels.as_slice());
            assert!(t[n..].iter().all(|&x| x == 99) && l[n..].iter().all(|&x| x == IGNORE));
        }
        assert_eq!(b.tokens_scored(), [3, 0, 7].iter().map(|&i| ex[i].scored()).sum::<usize>());
        let t = b.labels_tensor().unwrap();
        assert_eq!(t.shape(), &[3 * b.seq]);
        assert_eq!(t.to_vec::<i32>().unwrap(), b.labels);
    }

    #[test]
    fn bucketing_reduces_padding() {
        let ex = examples(200);
        let padding = |bucket_batches| {
            let c = BatcherConfig { batch_size: 8, seed: 5, bucket_batches, pad_id: 0 };
            let mut b = Batcher::new(ex.clone(), c).unwrap();
            (0..b.batches_per_epoch()).map(|_| b.next_batch()).map(|x| x.batch * x.seq).sum::<usize>()
        };
        let real: usize = ex.iter().map(Encoded::len).sum();
        let (none, some) = (padding(1), padding(25));
        assert!(some < none, "bucketed {some} vs unbucketed {none} slots");
        assert!(((some - real) as f64) < 0.2 * (none - real) as f64, "{some} {none} {real}");
    }

    #[test]
    fn a_resumed_run_sees_the_batches_of_an_uninterrupted_one() {
        let ex = examples(37);
        let mut straight = Batcher::new(ex.clone(), config(9)).unwrap();
        let all: Vec<Batch> = (0..40).map(|_| straight.next_batch()).collect();
        // Stop after 0, 5, an epoch boundary (10 = batches per epoch), 23, 39 batches.
        for stop in [0, 5, 10, 23, 39] {
            let mut first = Batcher::new(ex.clone(), config(9)).unwrap();
            for b in &all[..stop] {
                assert_eq!(&first.next_batch(), b);
            }
            let saved = serde_json::to_string(&first.position()).unwrap();
            let pos: BatchPosition = serde_json::from_str(&saved).unwrap();
            let mut second = Batcher::resume(ex.clone(), config(9), pos).unwrap();
            for (k, b) in all[stop..].iter().enumerate() {
                assert_eq!(&second.next_batch(), b, "resumed at {stop}, batch {k} after");
            }
        }
    }

    #[test]
    fn resuming_with_other_data_or_settings_is_refused() {
        let mut b = Batcher::new(examples(20), config(1)).unwrap();
        b.next_batch();
        let pos = b.position();
        assert!(Batcher::resume(examples(21), config(1), pos).is_err());
        assert!(Batcher::resume(examples(20), config(2), pos).is_err());
        let past = BatchPosition { index: 99, ..pos };
        assert!(Batcher::resume(examples(20), config(1), past).unwrap_err().to_string().contains("past"));
        assert!(Batcher::new(Vec::new(), config(1)).is_err());
        assert!(Batcher::new(examples(3), BatcherConfig { batch_size: 0, ..config(1) }).is_err());
        let bad = Encoded { tokens: vec![1, 2], labels: vec![IGNORE] };
        assert!(Batcher::new(vec![bad], config(1)).is_err());
    }

    #[test]
    fn eval_batches_cover_everything_once_sorted() {
        let ex = examples(11);
        let batches = eval_batches(&ex, 4, 0).unwrap();
        assert_eq!(batches.iter().map(|b| b.batch).collect::<Vec<_>>(), [4, 4, 3]);
        let rows: BTreeMap<usize, usize> = batches.iter().flat_map(|b| b.rows.iter().map(|&r| (r, 1))).collect();
        assert_eq!(rows.len(), 11);
        assert!(batches.windows(2).all(|w| w[0].seq <= w[1].seq));
        assert!(eval_batches(&ex, 0, 0).is_err());
    }
}
