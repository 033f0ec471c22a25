//! Horizontal bar charts: one row per label (a task's metric), one bar per series (a
//! model) in each row, with a whisker for the standard error where there is one, and
//! dashed reference lines (0.5: no preference). This is the chart of `lamina eval` reports.

use super::svg::{escape, PALETTE};
use super::ticks;
use std::fmt::Write;

const LABELS: f64 = 230.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 44.0;
const BAR: f64 = 13.0;
const GAP: f64 = 10.0;

#[derive(Clone, Debug, Default)]
pub struct BarSeries {
    pub name: String,
    /// Per row: the value and its standard error, or nothing for a row this series lacks.
    pub values: Vec<Option<(f64, Option<f64>)>>,
}

#[derive(Clone, Debug, Default)]
pub struct BarChart {
    pub title: String,
    /// The value axis's label.
    pub axis: String,
    pub rows: Vec<String>,
    pub series: Vec<BarSeries>,
    /// Dashed vertical lines at these values, with labels.
    pub marks: Vec<(f64, String)>,
    pub width: f64,
}

impl BarChart {
    pub fn height(&self) -> f64 {
        TOP + BOTTOM + self.rows.len() as f64 * self.row_height() + if self.series.len() > 1 { 20.0 } else { 0.0 }
    }

    fn row_height(&self) -> f64 {
        self.series.len().max(1) as f64 * BAR + GAP
    }

    /// The value range: from 0 (or the smallest value, if negative) to the largest value
    /// plus its error, and the marks. Whiskers below do not widen it: a rate of 0.2 ± 0.2
    /// (or its rounding, 0.2 - 0.20000000000000004) must not put -0.2 on a 0-1 axis.
    fn range(&self) -> (f64, f64) {
        let ends = self.series.iter().flat_map(|s| s.values.iter().flatten()).flat_map(|&(v, e)| {
            let e = e.filter(|e| e.is_finite()).unwrap_or(0.0);
            [v, v + e]
        });
        let (lo, hi) = ends
            .chain(self.marks.iter().map(|m| m.0))
            .filter(|v| v.is_finite())
            .fold((0f64, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if hi > lo {
            (lo, hi)
        } else {
            (lo, lo + 1.0)
        }
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let (width, height) = (self.width.max(400.0), self.height());
        let (x0, x1) = (LABELS, width - RIGHT);
        let legend = if self.series.len() > 1 { 20.0 } else { 0.0 };
        let (y0, y1) = (TOP + legend, height - BOTTOM);
        let (lo, hi) = self.range();
        let (lo, hi, ticks, decimals) = ticks::linear(lo, hi, 5);
        let fmt = ticks::format_for(&ticks, Some(decimals));
        let x = |v: f64| x0 + (v - lo) / (hi - lo) * (x1 - x0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
            width / 2.0,
            escape(&self.title)
        );
        for (i, series) in self.series.iter().enumerate().filter(|_| self.series.len() > 1) {
            let lx = x0 + i as f64 * 150.0;
            let _ = writeln!(
                s,
                r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                TOP - 8.0,
                PALETTE[i % PALETTE.len()],
                lx + 16.0,
                TOP + 2.0,
                escape(&series.name)
            );
        }
        for &t in &ticks {
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" y1="{y0:.1}" x2="{0:.1}" y2="{y1:.1}" stroke="#e6e6e6"/><text x="{0:.1}" y="{1:.1}" text-anchor="middle">{2}</text>"##,
                x(t),
                y1 + 16.0,
                escape(&ticks::label(t, fmt))
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (x0 + x1) / 2.0,
            height - 12.0,
            escape(&self.axis)
        );
        for (r, label) in self.rows.iter().enumerate() {
            self.row(&mut s, r, label, y0 + r as f64 * self.row_height(), &x, lo);
        }
        let _ =
            writeln!(s, r#"<line x1="{0:.1}" y1="{y0:.1}" x2="{0:.1}" y2="{y1:.1}" stroke="black"/>"#, x(lo.max(0.0)));
        for (v, label) in self.marks.iter().filter(|m| m.0.is_finite()) {
            let _ = writeln!(
                s,
                r##"<line x1="{0:.1}" y1="{y0:.1}" x2="{0:.1}" y2="{y1:.1}" stroke="#555" stroke-dasharray="6 4"/><text x="{0:.1}" y="{1:.1}" text-anchor="middle" fill="#555">{2}</text>"##,
                x(*v),
                y0 - 4.0,
                escape(label)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// One row: its label and a bar (with whisker and value) per series.
    fn row(&self, s: &mut String, r: usize, label: &str, top: f64, x: &dyn Fn(f64) -> f64, lo: f64) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LABELS - 8.0,
            top + self.row_height() / 2.0,
            escape(label)
        );
        let base = x(lo.max(0.0));
        for (i, series) in self.series.iter().enumerate() {
            let Some((v, err)) = series.values.get(r).copied().flatten().filter(|(v, _)| v.is_finite()) else {
                continue;
            };
            let y = top + i as f64 * BAR;
            let (a, b) = if x(v) >= base { (base, x(v)) } else { (x(v), base) };
            let _ = writeln!(
                s,
                r#"<rect x="{a:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
                (b - a).max(0.5),
                BAR - 2.0,
                PALETTE[i % PALETTE.len()]
            );
            if let Some(e) = err.filter(|e| e.is_finite() && *e > 0.0) {
                let ym = y + (BAR - 2.0) / 2.0;
                let _ = writeln!(
                    s,
                    r#"<line x1="{:.1}" y1="{ym:.1}" x2="{:.1}" y2="{ym:.1}" stroke="black"/>"#,
                    x((v - e).max(lo)),
                    x(v + e)
                );
            }
            let _ =
                writeln!(s, r#"<text x="{:.1}" y="{:.1}" font-size="10">{}</text>"#, b + 3.0, y + BAR - 3.0, short(v));
        }
    }
}

/// A value in a few characters (4 significant digits, plain).
pub fn short(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_drawn_per_row_and_series() {
        let chart = BarChart {
            title: "scores <&>".into(),
            axis: "value".into(),
            rows: vec!["mc/acc".into(), "bias/pct_stereotype".into()],
            series: vec![
                BarSeries { name: "base".into(), values: vec![Some((0.4, Some(0.05))), Some((0.6, None))] },
                BarSeries { name: "lora".into(), values: vec![Some((0.5, None)), None] },
            ],
            marks: vec![(0.5, "no preference".into())],
            width: 700.0,
        };
        let svg = chart.to_svg();
        assert_eq!(svg.matches("<rect x=").count(), 3 + 2, "three bars and two legend swatches");
        assert!(svg.contains("scores &lt;&amp;&gt;") && svg.contains("no preference"));
        assert!(svg.contains("0.4000") && !svg.contains("NaN"));
        assert!(chart.height() > 100.0);
        assert_eq!(chart.range(), (0.0, 0.6));
        let whisker_below_zero = BarChart {
            series: vec![BarSeries { name: "a".into(), values: vec![Some((0.2, Some(0.20000000000000004))), None] }],
            ..chart
        };
        assert_eq!(whisker_below_zero.range(), (0.0, 0.5), "the mark at 0.5; the whisker stops at the axis");
        assert!(!whisker_below_zero.to_svg().contains(">-0."), "no negative ticks");
        assert_eq!(short(1234.5678), "1235");
        assert_eq!(short(0.01234), "0.01234");
    }
}
