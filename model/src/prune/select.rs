//! Which weights magnitude pruning zeroes, on plain f32 slices.
//!
//! Weights are ordered by magnitude, ties broken by position (the earlier one goes
//! first), so the number zeroed is always exactly the number asked for. Magnitudes are
//! compared as the bits of |x|: for non-negative floats the bit order is the value order,
//! and NaN sorts above infinity (a NaN weight is never pruned before a real one).

/// The magnitude of `x` as an ordered integer.
pub fn key(x: f32) -> u32 {
    x.to_bits() & 0x7fff_ffff
}

/// Zero the `k` entries of `row` with the smallest magnitudes.
pub fn prune_smallest(row: &mut [f32], k: usize) {
    let k = k.min(row.len());
    if k == 0 {
        return;
    }
    let mut order: Vec<(u32, u32)> = row.iter().enumerate().map(|(i, &x)| (key(x), i as u32)).collect();
    if k < order.len() {
        order.select_nth_unstable(k - 1);
    }
    for &(_, i) in &order[..k] {
        row[i as usize] = 0.0;
    }
}

/// In every group of `group` consecutive entries keep the `keep` largest magnitudes and
/// zero the rest (2:4 sparsity is keep = 2, group = 4). `row.len()` must be a multiple
/// of `group`.
pub fn prune_n_of_m(row: &mut [f32], keep: usize, group: usize) {
    debug_assert!(row.len().is_multiple_of(group));
    for g in row.chunks_exact_mut(group) {
        prune_smallest(g, group - keep);
    }
}

/// The global cut: every weight whose key is below `key` is zeroed, and so are the first
/// `ties` weights whose key equals it (in file order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Threshold {
    pub key: u32,
    pub ties: u64,
}

impl Threshold {
    /// Zero what the cut covers in `values`, which come after everything passed before;
    /// `ties_left` starts at `self.ties` and is shared across the calls.
    pub fn apply(&self, values: &mut [f32], ties_left: &mut u64) {
        for v in values {
            let k = key(*v);
            if k < self.key || (k == self.key && *ties_left > 0) {
                if k == self.key {
                    *ties_left -= 1;
                }
                *v = 0.0;
            }
        }
    }
}

/// The `k`-th smallest key over values seen in several passes, without holding them: a
/// radix select on the 31 key bits, the high 16 bits in the first pass and the low 15
/// in the second (which looks only at the bin the first pass picked). Memory: one
/// 65,536-bin histogram, whatever the number of weights.
pub struct RadixSelect {
    k: u64,
    hist: Vec<u64>,
    /// After the first pass: the chosen high bin and the count of keys below it.
    high: Option<(u32, u64)>,
}

impl RadixSelect {
    /// Select the cut that zeroes `k` weights.
    pub fn new(k: u64) -> RadixSelect {
        RadixSelect { k, hist: vec![0; 1 << 16], high: None }
    }

    /// Whether the cut is known without looking at the values (k = 0).
    pub fn trivial(&self) -> Option<Threshold> {
        (self.k == 0).then_some(Threshold { key: 0, ties: 0 })
    }

    /// Count `values` in the current pass.
    pub fn observe(&mut self, values: &[f32]) {
        match self.high {
            None => values.iter().for_each(|&v| self.hist[(key(v) >> 16) as usize] += 1),
            Some((bin, _)) => values
                .iter()
                .map(|&v| key(v))
                .filter(|k| k >> 16 == bin)
                .for_each(|k| self.hist[(k & 0xffff) as usize] += 1),
        }
    }

    /// End a pass. After the first it returns None (one more pass is needed); after the
    /// second, the cut. `k` must not exceed the number of values observed per pass.
    pub fn end_pass(&mut self) -> Option<Threshold> {
        if let Some(t) = self.trivial() {
            return Some(t);
        }
        let (bin, below) = crossing(&self.hist, self.k - self.high.map_or(0, |h| h.1));
        self.hist.iter_mut().for_each(|h| *h = 0);
        match self.high {
            None => {
                self.high = Some((bin, below));
                None
            }
            Some((high, high_below)) => {
                let below = high_below + below;
                Some(Threshold { key: high << 16 | bin, ties: self.k - below })
            }
        }
    }
}

/// The first bin at which the running count reaches `k` (>= 1), and the count before it.
fn crossing(hist: &[u64], k: u64) -> (u32, u64) {
    let mut below = 0;
    for (i, &h) in hist.iter().enumerate() {
        if below + h >= k {
            return (i as u32, below);
        }
        below += h;
    }
    panic!("radix select: asked for the {k}-th of {below} values")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: sort (|x| in f64, position) and zero the first k.
    fn reference(values: &[f32], k: usize) -> Vec<f32> {
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| (values[a] as f64).abs().total_cmp(&(values[b] as f64).abs()).then(a.cmp(&b)));
        let mut out = values.to_vec();
        order[..k].iter().for_each(|&i| out[i] = 0.0);
        out
    }

    /// Values with many repeated magnitudes (ties) and both signs.
    fn values() -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec((-20i32..20).prop_map(|v| v as f32 * 0.125), 1..200)
    }

    fn same_bits(a: &[f32], b: &[f32]) -> bool {
        a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits() || (*x == 0.0 && *y == 0.0))
    }

    proptest! {
        #[test]
        fn smallest_k_equals_the_sorted_reference(v in values(), frac in 0.0f64..=1.0) {
            let k = (frac * v.len() as f64).round() as usize;
            let mut got = v.clone();
            prune_smallest(&mut got, k);
            prop_assert!(same_bits(&got, &reference(&v, k)));
        }

        #[test]
        fn radix_cut_equals_the_sorted_reference(parts in prop::collection::vec(values(), 1..4), frac in 0.0f64..=1.0) {
            let all: Vec<f32> = parts.concat();
            let k = (frac * all.len() as f64).round() as u64;
            let mut sel = RadixSelect::new(k);
            let t = loop {
                parts.iter().for_each(|p| sel.observe(p));
                if let Some(t) = sel.end_pass() { break t; }
            };
            let mut ties = t.ties;
            let mut got: Vec<f32> = Vec::new();
            for p in &parts {
                let mut p = p.clone();
                t.apply(&mut p, &mut ties);
                got.extend(p);
            }
            prop_assert_eq!(ties, 0);
            prop_assert!(same_bits(&got, &reference(&all, k as usize)));
        }

        #[test]
        fn n_of_m_keeps_the_largest_of_each_group(groups in prop::collection::vec(prop::array::uniform4(-8i32..8), 1..30)) {
            let v: Vec<f32> = groups.iter().flatten().map(|&x| x as f32).collect();
            let mut got = v.clone();
            prune_n_of_m(&mut got, 2, 4);
            for (g, orig) in got.chunks(4).zip(v.chunks(4)) {
                prop_assert!(same_bits(g, &reference(orig, 2)));
            }
        }
    }

    #[test]
    fn nan_is_never_pruned_before_a_number_and_whole_rows_can_go() {
        let mut row = [f32::NAN, 1.0, -0.5, f32::INFINITY];
        prune_smallest(&mut row, 3);
        assert!(row[0].is_nan() && row[1..] == [0.0, 0.0, 0.0]);
        let mut row = [3.0f32, -2.0];
        prune_smallest(&mut row, 5);
        assert_eq!(row, [0.0, 0.0]);
    }
}
