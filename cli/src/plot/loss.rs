//! train-demo's loss curve: the raw per-step loss, its moving average, the final
//! validation loss and the unigram-entropy baseline.

use super::{Chart, Scale, Series};

/// Exponential moving average (factor 0.95) that carries over non-finite steps.
pub(super) fn ema(losses: &[f32]) -> Vec<f64> {
    let mut out = Vec::with_capacity(losses.len());
    let mut avg: Option<f64> = None;
    for &l in losses {
        let l = l as f64;
        avg = match avg {
            Some(a) if l.is_finite() => Some(0.95 * a + 0.05 * l),
            Some(a) => Some(a),
            None if l.is_finite() => Some(l),
            None => None,
        };
        out.push(avg.unwrap_or(f64::NAN));
    }
    out
}

pub fn loss_curve_svg(losses: &[f32], baseline: f32, val_loss: f32) -> String {
    let points = |v: &mut dyn Iterator<Item = f64>| v.enumerate().map(|(i, l)| (i as f64 + 1.0, l)).collect::<Vec<_>>();
    let raw = points(&mut losses.iter().map(|&l| l as f64));
    let smooth = points(&mut ema(losses).into_iter());
    Chart::new("train-demo: training loss")
        .x_axis("step", Scale::Linear)
        .y_axis("loss (nats/char)", Scale::Linear)
        .y_min(0.0)
        .series(Series::line("train loss", raw).color("#9ecae1").width(1.0))
        .series(Series::line("moving average", smooth).color("#08519c"))
        .hline(val_loss as f64, format!("validation {val_loss:.3}"), "#2ca02c")
        .hline(baseline as f64, format!("unigram entropy {baseline:.2}"), "#d62728")
        .to_svg()
}

#[cfg(test)]
mod tests {
    #[test]
    fn loss_curve_has_both_lines_and_skips_nan() {
        let svg = super::loss_curve_svg(&[4.0, 3.0, f32::NAN, 2.0], 3.0, 2.5);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("NaN"));
        // The raw line breaks at the NaN (a two-point piece and a lone dot); the average
        // carries over it.
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("unigram entropy 3.00") && svg.contains("validation 2.500"));
        let empty = super::loss_curve_svg(&[], 3.0, 2.5);
        assert_eq!(empty.matches("<polyline").count(), 0);
        assert!(empty.contains("unigram entropy"));
    }
}
