//! Train/validation split: from a separate validation file, or carved out of the training
//! data with a seed and a fraction.

use super::report::SftError;
use crate::data::Rng;

/// Fisher-Yates with the project's seeded generator.
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

/// A generator for one purpose (`tag`) of one seed, independent of the others. (Seeding
/// SplitMix64 with `seed + tag` would not do: nearby seeds give overlapping streams.)
pub(crate) fn stream(seed: u64, tag: u64) -> Rng {
    let mixed = Rng::new(seed).next_u64() ^ Rng::new(tag ^ 0x5f37_59df_u64.rotate_left(32)).next_u64();
    Rng::new(mixed)
}

/// Where validation data comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Validation {
    /// A file of its own (read and encoded like the training file).
    File(std::path::PathBuf),
    /// This fraction of the training examples, chosen with `seed`.
    Fraction { fraction: f64, seed: u64 },
    /// None.
    Off,
}

/// `(train, validation)`: `round(fraction * n)` items (at least one, and at least one left
/// to train on) picked by a seeded shuffle; both keep the input's order.
pub fn split_validation<T>(items: Vec<T>, fraction: f64, seed: u64) -> Result<(Vec<T>, Vec<T>), SftError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(SftError::Config(format!("the validation fraction must be in (0, 1), got {fraction}")));
    }
    let n = items.len();
    if n < 2 {
        return Err(SftError::Config(format!("{n} example(s) cannot be split into training and validation")));
    }
    let n_val = ((fraction * n as f64).round() as usize).clamp(1, n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, &mut stream(seed, 1));
    let mut is_val = vec![false; n];
    for &i in &order[..n_val] {
        is_val[i] = true;
    }
    let (mut train, mut val) = (Vec::with_capacity(n - n_val), Vec::with_capacity(n_val));
    for (item, v) in items.into_iter().zip(is_val) {
        if v {
            val.push(item)
        } else {
            train.push(item)
        }
    }
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let items: Vec<u32> = (0..100).collect();
        let (t, v) = split_validation(items.clone(), 0.1, 7).unwrap();
        assert_eq!((t.len(), v.len()), (90, 10));
        let mut all: Vec<u32> = t.iter().chain(&v).copied().collect();
        all.sort();
        assert_eq!(all, items);
        assert!(t.windows(2).all(|w| w[0] < w[1]) && v.windows(2).all(|w| w[0] < w[1]), "order kept");
        assert_eq!(split_validation(items.clone(), 0.1, 7).unwrap().1, v, "same seed, same split");
        assert_ne!(split_validation(items.clone(), 0.1, 8).unwrap().1, v, "another seed, another split");
        // Tiny sets keep one on each side.
        assert_eq!(split_validation(vec![1, 2], 0.01, 0).unwrap().1.len(), 1);
        assert_eq!(split_validation(vec![1, 2], 0.99, 0).unwrap().0.len(), 1);
    }

    #[test]
    fn bad_splits_are_errors() {
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(split_validation(vec![1, 2, 3], f, 0).is_err(), "{f}");
        }
        assert!(split_validation(vec![1], 0.5, 0).unwrap_err().to_string().contains("cannot be split"));
    }

    #[test]
    fn shuffle_is_a_permutation_and_streams_differ() {
        let mut v: Vec<usize> = (0..50).collect();
        shuffle(&mut v, &mut stream(3, 0));
        assert_ne!(v, (0..50).collect::<Vec<_>>());
        v.sort();
        assert_eq!(v, (0..50).collect::<Vec<_>>());
        let first = |s, t| stream(s, t).next_u64();
        assert_ne!(first(1, 0), first(1, 1));
        assert_ne!(first(1, 0), first(2, 0));
    }
}
