//! Drawing charts as SVG elements: each chart is a panel (title, grid, ticks, axis labels,
//! clipped series, reference lines, legend) placed below the previous one.

use super::{ticks, Axis, Chart, Mark, Scale, Series};
use std::fmt::Write;

pub(super) const PALETTE: [&str; 8] =
    ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
const LEFT: f64 = 72.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 52.0;

/// Text safe inside an element or a quoted attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub fn figure(charts: &[Chart]) -> String {
    let width = charts.iter().map(|c| c.width).fold(0.0, f64::max).max(1.0);
    let height = charts.iter().map(|c| c.height).sum::<f64>().max(1.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let mut top = 0.0;
    for (i, c) in charts.iter().enumerate() {
        panel(&mut s, c, i, top);
        top += c.height;
    }
    s.push_str("</svg>\n");
    s
}

fn drawable(v: f64, scale: Scale) -> bool {
    v.is_finite() && (scale == Scale::Linear || v > 0.0)
}

/// Value to pixel along one axis.
struct Map {
    lo: f64,
    hi: f64,
    scale: Scale,
    px0: f64,
    px1: f64,
}

impl Map {
    fn at(&self, v: f64) -> f64 {
        let t = match self.scale {
            Scale::Linear => (v - self.lo) / (self.hi - self.lo),
            Scale::Log => (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln()),
        };
        self.px0 + t * (self.px1 - self.px0)
    }
}

/// The axis range, its ticks and their label precision, from the values to show.
fn layout(axis: &Axis, values: impl Iterator<Item = f64>, target: usize) -> (f64, f64, Vec<f64>, Option<usize>) {
    let fixed = |v: Option<f64>| v.filter(|&v| drawable(v, axis.scale));
    let (fmin, fmax) = (fixed(axis.min), fixed(axis.max));
    let (mut lo, mut hi) = values
        .filter(|&v| drawable(v, axis.scale))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        (lo, hi) = if axis.scale == Scale::Log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    lo = fmin.unwrap_or(lo);
    hi = fmax.unwrap_or(hi);
    if hi <= lo {
        match axis.scale {
            Scale::Linear if fmin.is_some() => hi = lo + if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 },
            Scale::Linear => {
                let d = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
                (lo, hi) = (hi - d, hi + d);
            }
            Scale::Log => (lo, hi) = (hi / 2.0, hi * 2.0),
        }
    }
    match axis.scale {
        Scale::Linear => {
            let (nlo, nhi, t, decimals) = ticks::linear(lo, hi, target);
            let (lo, hi) = (fmin.unwrap_or(nlo), fmax.unwrap_or(nhi));
            let t = t.into_iter().filter(|&v| v >= lo - 1e-12 * (hi - lo) && v <= hi + 1e-12 * (hi - lo)).collect();
            (lo, hi, t, Some(decimals))
        }
        Scale::Log => {
            let pad = (hi / lo).powf(0.05);
            let (lo, hi) = (fmin.unwrap_or(lo / pad), fmax.unwrap_or(hi * pad));
            (lo, hi, ticks::log(lo, hi), None)
        }
    }
}

fn panel(s: &mut String, c: &Chart, index: usize, top: f64) {
    let (x0, x1) = (LEFT, c.width - RIGHT);
    let (y0, y1) = (top + TOP, top + c.height - BOTTOM);
    let xs = c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = c
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter(|p| drawable(p.0, c.x.scale)).map(|p| p.1))
        .chain(c.hlines.iter().map(|h| h.y));
    let (xlo, xhi, xticks, xdec) = layout(&c.x, xs, 6);
    let (ylo, yhi, yticks, ydec) = layout(&c.y, ys, 5);
    let (xfmt, yfmt) = (ticks::format_for(&xticks, xdec), ticks::format_for(&yticks, ydec));
    let mx = Map { lo: xlo, hi: xhi, scale: c.x.scale, px0: x0, px1: x1 };
    let my = Map { lo: ylo, hi: yhi, scale: c.y.scale, px0: y1, px1: y0 };

    let _ = writeln!(s, "<g>");
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        (x0 + x1) / 2.0,
        top + 24.0,
        escape(&c.title)
    );
    for &t in &xticks {
        let x = mx.at(t);
        let _ = writeln!(s, r##"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{y1:.1}" stroke="#e6e6e6"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            y1 + 16.0,
            escape(&ticks::label(t, xfmt))
        );
    }
    for &t in &yticks {
        let y = my.at(t);
        let _ = writeln!(s, r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#e6e6e6"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            y + 4.0,
            escape(&ticks::label(t, yfmt))
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        top + c.height - 14.0,
        escape(&c.x.label)
    );
    let ym = (y0 + y1) / 2.0;
    let _ = writeln!(
        s,
        r#"<text x="18" y="{ym:.1}" transform="rotate(-90 18 {ym:.1})" text-anchor="middle">{}</text>"#,
        escape(&c.y.label)
    );

    // Series and reference lines, clipped to the plot area.
    let _ = writeln!(
        s,
        r#"<clipPath id="plot{index}"><rect x="{x0:.1}" y="{y0:.1}" width="{:.1}" height="{:.1}"/></clipPath>"#,
        x1 - x0,
        y1 - y0
    );
    let _ = writeln!(s, r#"<g clip-path="url(#plot{index})">"#);
    let mut drawn = 0;
    for (i, series) in c.series.iter().enumerate() {
        drawn += draw_series(s, series, color(series, i), &mx, &my);
    }
    for h in c.hlines.iter().filter(|h| drawable(h.y, c.y.scale)) {
        let y = my.at(h.y);
        let _ = writeln!(
            s,
            r#"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="{}" stroke-dasharray="6 4"/>"#,
            escape(&h.color)
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="{}">{}</text>"#,
            x1 - 4.0,
            y - 5.0,
            escape(&h.color),
            escape(&h.label)
        );
        drawn += 1;
    }
    let _ = writeln!(s, "</g>");
    if drawn == 0 {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{ym:.1}" text-anchor="middle" fill="#888">no data</text>"##,
            (x0 + x1) / 2.0
        );
    }
    let pixels: Vec<(f64, f64)> = c
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| drawable(p.0, c.x.scale) && drawable(p.1, c.y.scale))
        .map(|p| (mx.at(p.0), my.at(p.1)))
        .collect();
    legend(s, c, (x0, y0, x1, y1), &pixels);
    let _ = writeln!(s, "</g>");
}

fn color(series: &Series, i: usize) -> String {
    series.color.clone().unwrap_or_else(|| PALETTE[i % PALETTE.len()].to_string())
}

/// Draw one series; returns the number of points drawn.
fn draw_series(s: &mut String, series: &Series, color: String, mx: &Map, my: &Map) -> usize {
    let color = escape(&color);
    let ok = |p: &(f64, f64)| drawable(p.0, mx.scale) && drawable(p.1, my.scale);
    let mut drawn = 0;
    if series.mark != Mark::Points {
        // Consecutive drawable points form a segment; a skipped point breaks the line.
        for segment in series.points.split(|p| !ok(p)).filter(|seg| !seg.is_empty()) {
            drawn += segment.len();
            if segment.len() == 1 && series.mark == Mark::Line {
                let (x, y) = (mx.at(segment[0].0), my.at(segment[0].1));
                let _ = writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="{:.1}" fill="{color}"/>"#, series.width);
                continue;
            }
            let mut pts = String::new();
            for p in segment {
                let _ = write!(pts, "{:.1},{:.1} ", mx.at(p.0), my.at(p.1));
            }
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="{}" stroke-opacity="{}" stroke-linejoin="round"/>"#,
                pts.trim_end(),
                series.width,
                series.opacity
            );
        }
    }
    for (p, label) in series.points.iter().zip(&series.labels).filter(|(p, l)| ok(p) && !l.is_empty()) {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" fill="{color}">{}</text>"#,
            mx.at(p.0) + 6.0,
            my.at(p.1) - 6.0,
            escape(label)
        );
    }
    if series.mark != Mark::Line {
        let points: Vec<&(f64, f64)> = series.points.iter().filter(|p| ok(p)).collect();
        drawn = drawn.max(points.len());
        for p in points {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}" fill-opacity="{}"/>"#,
                mx.at(p.0),
                my.at(p.1),
                series.opacity
            );
        }
    }
    drawn
}

/// Named series, in the corner of the plot area (x0, y0, x1, y1) that hides the fewest
/// of the points (`pixels`), top right when that is as good as any.
fn legend(s: &mut String, c: &Chart, (x0, y0, x1, y1): (f64, f64, f64, f64), pixels: &[(f64, f64)]) {
    let named: Vec<(usize, &Series)> = c.series.iter().enumerate().filter(|(_, s)| !s.name.is_empty()).collect();
    if named.is_empty() {
        return;
    }
    let longest = named.iter().map(|(_, s)| s.name.chars().count()).max().unwrap_or(0) as f64;
    let (w, h) = (longest * 7.0 + 44.0, named.len() as f64 * 18.0 + 8.0);
    let corners =
        [(x1 - w - 8.0, y0 + 8.0), (x0 + 8.0, y0 + 8.0), (x1 - w - 8.0, y1 - h - 8.0), (x0 + 8.0, y1 - h - 8.0)];
    let hidden = |&(x, y): &(f64, f64)| {
        pixels.iter().filter(|p| p.0 >= x - 6.0 && p.0 <= x + w + 6.0 && p.1 >= y - 6.0 && p.1 <= y + h + 6.0).count()
    };
    let (x, y) = corners.iter().copied().min_by_key(|c| hidden(c)).expect("four corners");
    let _ = writeln!(
        s,
        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="white" fill-opacity="0.85" stroke="#bbb"/>"##
    );
    for (row, (i, series)) in named.iter().enumerate() {
        let cy = y + 13.0 + row as f64 * 18.0;
        let col = escape(&color(series, *i));
        if series.mark == Mark::Points {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{cy:.1}" r="3.5" fill="{col}"/>"#, x + 18.0);
        } else {
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{cy:.1}" x2="{:.1}" y2="{cy:.1}" stroke="{col}" stroke-width="{}"/>"#,
                x + 8.0,
                x + 28.0,
                series.width.max(1.5)
            );
        }
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, x + 36.0, cy + 4.0, escape(&series.name));
    }
}
