//! `train-demo --compare`'s chart: each neural model's training loss (moving average, in
//! bits per character) against its training time, its validation score as a point at the
//! end, and the n-gram's validation score as a horizontal line.

use super::loss::ema;
use super::svg::PALETTE;
use super::{Chart, Mark, Scale, Series};
use std::f64::consts::LN_2;

/// One neural model's run.
pub struct Curve<'a> {
    pub name: &'a str,
    /// Training loss (nats per scored character) of each step, and the training time (s)
    /// when it ended.
    pub losses: &'a [f32],
    pub times: &'a [f64],
    /// Validation bits per character after training.
    pub val_bits: f64,
}

pub fn lineage_svg(curves: &[Curve], ngram: Option<(&str, f64)>) -> String {
    let mut chart = Chart::new("train-demo --compare: training loss against training time")
        .x_axis("training time (s)", Scale::Linear)
        .y_axis("bits per character", Scale::Linear)
        .y_min(0.0);
    for (c, color) in curves.iter().zip(PALETTE.iter().cycle()) {
        let points = c.times.iter().zip(ema(c.losses)).map(|(&t, l)| (t, l / LN_2)).collect();
        let end = c.times.last().copied().unwrap_or(0.0);
        chart = chart.series(Series::line(format!("{} (training, moving average)", c.name), points).color(color));
        chart = chart.series(
            Series::scatter("", vec![(end, c.val_bits)])
                .mark(Mark::Points)
                .color(color)
                .labels(vec![format!("{} validation {:.3}", c.name, c.val_bits)]),
        );
    }
    if let Some((name, bits)) = ngram {
        chart = chart.hline(bits, format!("{name} validation {bits:.3}"), "#d62728");
    }
    chart.to_svg()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_line_and_one_point_per_model_and_the_ngram_line() {
        let losses = [4.0f32, 3.0, 2.0];
        let times = [0.5, 1.0, 1.5];
        let curves = [
            super::Curve { name: "lstm", losses: &losses, times: &times, val_bits: 2.5 },
            super::Curve { name: "gpt", losses: &losses, times: &times, val_bits: 2.25 },
        ];
        let svg = super::lineage_svg(&curves, Some(("5-gram", 2.75)));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("5-gram validation 2.750") && svg.contains("gpt validation 2.250"));
    }
}
