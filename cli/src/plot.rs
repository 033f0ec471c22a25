//! A loss curve as a standalone SVG (no plotting dependency): the raw per-step loss, its
//! moving average, and the unigram-entropy baseline.

use std::fmt::Write;

const W: f32 = 720.0;
const H: f32 = 360.0;
const PAD: f32 = 48.0;

pub fn loss_curve_svg(losses: &[f32], baseline: f32, val_loss: f32) -> String {
    let finite: Vec<f32> = losses.iter().copied().filter(|l| l.is_finite()).collect();
    let top = finite.iter().copied().fold(baseline, f32::max).max(val_loss) * 1.05;
    let top = if top.is_finite() && top > 0.0 { top } else { 1.0 };
    let n = losses.len().max(2) as f32 - 1.0;
    let x = |i: usize| PAD + (W - 2.0 * PAD) * i as f32 / n;
    let y = |l: f32| H - PAD - (H - 2.0 * PAD) * (l.clamp(0.0, top) / top);
    let poly = |vals: &[f32]| -> String {
        let mut s = String::new();
        for (i, &l) in vals.iter().enumerate().filter(|(_, l)| l.is_finite()) {
            let _ = write!(s, "{:.1},{:.1} ", x(i), y(l));
        }
        s
    };
    let mut avg = Vec::with_capacity(losses.len());
    let mut ema = None;
    for &l in losses {
        let e = match ema {
            Some(e) if l.is_finite() => 0.95 * e + 0.05 * l,
            Some(e) => e,
            None => l,
        };
        ema = Some(e);
        avg.push(e);
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, r#"<line x1="{PAD}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#, H - PAD, W - PAD, H - PAD);
    let _ = writeln!(s, r#"<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{}" stroke="black"/>"#, H - PAD);
    for k in 0..=4 {
        let l = top * k as f32 / 4.0;
        let _ = writeln!(s, r#"<text x="{}" y="{:.1}" text-anchor="end">{l:.2}</text>"#, PAD - 6.0, y(l) + 4.0);
    }
    let _ =
        writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">step (of {})</text>"#, W / 2.0, H - 12.0, losses.len());
    let _ = writeln!(
        s,
        r#"<text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">loss (nats/char)</text>"#,
        H / 2.0,
        H / 2.0
    );
    let _ = writeln!(s, r##"<polyline points="{}" fill="none" stroke="#9ecae1" stroke-width="1"/>"##, poly(losses));
    let _ = writeln!(s, r##"<polyline points="{}" fill="none" stroke="#08519c" stroke-width="2"/>"##, poly(&avg));
    let by = y(baseline);
    let _ = writeln!(
        s,
        r##"<line x1="{PAD}" y1="{by:.1}" x2="{}" y2="{by:.1}" stroke="#d62728" stroke-dasharray="6 4"/>"##,
        W - PAD
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#d62728">unigram entropy {baseline:.2}</text>"##,
        W - PAD,
        by - 6.0
    );
    let _ = writeln!(
        s,
        r##"<text x="{}" y="{PAD}" text-anchor="end" fill="#08519c">train loss (moving average); validation {val_loss:.3}</text>"##,
        W - PAD
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn svg_is_well_formed_enough() {
        let svg = super::loss_curve_svg(&[4.0, 3.0, f32::NAN, 2.0], 3.0, 2.5);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("NaN"));
        assert_eq!(super::loss_curve_svg(&[], 3.0, 2.5).matches("<polyline").count(), 2);
    }
}
