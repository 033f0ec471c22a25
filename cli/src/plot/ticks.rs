//! Axis ranges and "nice" tick values: steps of 1, 2 or 5 times a power of ten on a
//! linear axis; powers of ten (with 2s and 5s, or every integer multiple, when the range
//! is short) on a log axis.

/// The nice step (1, 2 or 5 x 10^e) closest above `raw`, with its exponent `e`.
fn nice_step(raw: f64) -> (f64, i32) {
    let e = raw.log10().floor() as i32;
    let base = 10f64.powi(e);
    let m = raw / base;
    let mantissa = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        return (10.0 * base, e + 1);
    };
    (mantissa * base, e)
}

/// A linear axis covering `[lo, hi]` (lo < hi, finite), widened to whole steps, with
/// about `target` ticks. Returns (lo, hi, ticks, decimals for the labels).
pub fn linear(lo: f64, hi: f64, target: usize) -> (f64, f64, Vec<f64>, usize) {
    let (step, e) = nice_step((hi - lo) / target.max(2) as f64);
    let (first, last) = ((lo / step).floor(), (hi / step).ceil());
    // Multiply rather than accumulate, so 0.1 * 3 prints as 0.3 and not 0.30000000000000004.
    let ticks: Vec<f64> = (0..=(last - first) as i64).map(|i| clean((first + i as f64) * step)).collect();
    (first * step, last * step, ticks, (-e).max(0) as usize)
}

/// Round away the binary noise of a product of a step and an integer.
fn clean(v: f64) -> f64 {
    let s = format!("{v:.12e}");
    s.parse().unwrap_or(v)
}

/// Ticks of a log axis over `[lo, hi]` (0 < lo < hi): powers of ten, or 1-2-5 or every
/// integer multiple of them when fewer than two powers of ten fall inside the range; a
/// range shorter than that gets linear ticks.
pub fn log(lo: f64, hi: f64) -> Vec<f64> {
    let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    for mantissas in [&[1.0][..], &[1.0, 2.0, 5.0], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]] {
        let ticks: Vec<f64> = (e0..=e1)
            .flat_map(|e| mantissas.iter().map(move |m| clean(m * 10f64.powi(e))))
            .filter(|&v| v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12))
            .collect();
        if ticks.len() >= 3 || (ticks.len() >= 2 && mantissas.len() == 9) {
            return ticks;
        }
    }
    let (_, _, ticks, _) = linear(lo, hi, 4);
    ticks.into_iter().filter(|&v| v >= lo && v <= hi).collect()
}

/// How an axis writes its tick values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A fixed number of decimals (linear axes, from the step).
    Fixed(usize),
    /// The shortest plain form (log axes).
    Short,
    /// Scientific, for axes whose ticks are all tiny or huge.
    Sci,
}

/// The format for an axis with these ticks: scientific when every tick is below 1e-3 or
/// the largest is 1e6 or more, so the labels of one axis look alike.
pub fn format_for(ticks: &[f64], decimals: Option<usize>) -> Format {
    let max = ticks.iter().fold(0f64, |m, t| m.max(t.abs()));
    if max > 0.0 && !(1e-3..1e6).contains(&max) {
        Format::Sci
    } else {
        decimals.map_or(Format::Short, Format::Fixed)
    }
}

/// A tick label.
pub fn label(v: f64, format: Format) -> String {
    if v == 0.0 {
        return "0".into();
    }
    match format {
        Format::Sci => format!("{v:e}"),
        Format::Fixed(d) => format!("{v:.d$}"),
        Format::Short => {
            let s = format!("{v:.6}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_whole_nice_steps_covering_the_range() {
        let (lo, hi, t, d) = linear(0.0, 1.0, 5);
        assert_eq!((lo, hi, d), (0.0, 1.0, 1));
        assert_eq!(t, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        let (lo, hi, t, _) = linear(0.13, 0.87, 5);
        assert_eq!((lo, hi), (0.0, 1.0));
        assert_eq!(t.len(), 6);
        let (lo, hi, t, d) = linear(-37.0, 112.0, 5);
        assert_eq!((lo, hi, d), (-50.0, 150.0, 0));
        assert_eq!(t, [-50.0, 0.0, 50.0, 100.0, 150.0]);
        let (_, _, t, d) = linear(2.31, 2.37, 4);
        assert_eq!(d, 2);
        assert!(t.windows(2).all(|w| ((w[1] - w[0]) - 0.02).abs() < 1e-12), "{t:?}");
        for (a, b) in [(1e-7, 3e-7), (1e6, 5e6), (-1.0, -0.5), (0.0, 7.0)] {
            let (lo, hi, t, _) = linear(a, b, 5);
            assert!(lo <= a && hi >= b && t.len() >= 3 && t.len() <= 12, "{a} {b}: {t:?}");
            assert_eq!((t[0], *t.last().unwrap()), (lo, hi));
        }
    }

    #[test]
    fn log_ticks_are_powers_of_ten_or_their_multiples() {
        assert_eq!(log(1.0, 1000.0), [1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(log(3.0, 400.0), [5.0, 10.0, 20.0, 50.0, 100.0, 200.0]);
        let t = log(38.0, 62.0);
        assert_eq!(t, [40.0, 50.0, 60.0]);
        let t = log(40.5, 41.5);
        assert!(t.len() >= 2 && t.iter().all(|&v| (40.5..=41.5).contains(&v)), "{t:?}");
    }

    #[test]
    fn labels_of_one_axis_look_alike() {
        assert_eq!(label(0.2, Format::Fixed(1)), "0.2");
        assert_eq!(label(150.0, Format::Fixed(0)), "150");
        assert_eq!(label(50.0, Format::Short), "50");
        assert_eq!(label(0.0025, Format::Short), "0.0025");
        assert_eq!(label(0.0, Format::Fixed(3)), "0");
        let (_, _, t, d) = linear(0.0, 2e-4, 4);
        let f = format_for(&t, Some(d));
        assert_eq!(f, Format::Sci);
        let labels: Vec<String> = t.iter().map(|&v| label(v, f)).collect();
        assert_eq!(labels, ["0", "5e-5", "1e-4", "1.5e-4", "2e-4"]);
        assert_eq!(format_for(&[0.0, 1e6, 2e6], Some(0)), Format::Sci);
        assert_eq!(label(2e6, Format::Sci), "2e6");
        assert_eq!(format_for(&[0.0, 0.5, 1.0], Some(1)), Format::Fixed(1));
        assert_eq!(format_for(&[1.0, 10.0], None), Format::Short);
    }
}
