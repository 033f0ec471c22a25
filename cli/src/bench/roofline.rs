//! `lamina bench --roofline FILE.svg`: every kernel `bench` measured, as a point on its
//! device's roofline (arithmetic intensity, in flop per byte of compulsory traffic, against
//! the achieved GFLOP/s), under the compute and bandwidth ceilings, one panel per device.
//!
//! Where the ceilings come from, said in each panel's legend and in the JSON:
//! - CPU: compute is *stated*, derived from the clock (clock x FMA pipes x f32 lanes x 2
//!   flop x threads, `peak.rs`); bandwidth is *measured*, by a STREAM-like copy and triad
//!   (the better of the two).
//! - GPU adapter: bandwidth is *measured*, by timing Lamina's own `add` kernel on three
//!   16 MiB arrays (so a lower bound on what the memory can do); compute is *not known*:
//!   wgpu reports neither an adapter's clock nor its ALU count, so no compute roof is drawn.
//!
//! The same points and ceilings go in `bench --json` (`roofline` per device), so the chart
//! can be checked against them.

use crate::plot::{Chart, Scale, Series};

/// One measured kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub label: String,
    /// Flops per byte of compulsory traffic (inputs read once, output written once).
    pub intensity: f64,
    pub gflops: f64,
}

/// A device's ceilings where known, and where each comes from (or why it is missing).
#[derive(Clone, Debug, PartialEq)]
pub struct Ceilings {
    pub gflops: Option<f64>,
    pub compute_source: String,
    pub gbs: Option<f64>,
    pub bandwidth_source: String,
}

impl Ceilings {
    /// The attainable rate at `intensity`: min(compute, bandwidth x intensity).
    pub fn attainable(&self, intensity: f64) -> Option<f64> {
        match (self.gflops, self.gbs) {
            (Some(c), Some(b)) => Some(c.min(b * intensity)),
            (Some(c), None) => Some(c),
            (None, Some(b)) => Some(b * intensity),
            (None, None) => None,
        }
    }

    /// The intensity where the bandwidth roof meets the compute roof, when both are known.
    pub fn ridge(&self) -> Option<f64> {
        Some(self.gflops? / self.gbs?)
    }

    /// The legend's line for each known roof; what is unknown goes in the panel's title.
    fn legends(&self) -> (String, String) {
        let compute = match self.gflops {
            Some(g) => format!("compute {g:.1} GFLOP/s, {}", self.compute_source),
            None => format!("no compute roof: {}", self.compute_source),
        };
        let bandwidth = match self.gbs {
            Some(b) => format!("bandwidth {b:.1} GB/s, {}", self.bandwidth_source),
            None => format!("no bandwidth roof: {}", self.bandwidth_source),
        };
        (compute, bandwidth)
    }
}

/// One device's measurements.
#[derive(Clone, Debug)]
pub struct Roofline {
    pub device: String,
    pub points: Vec<Point>,
    pub ceilings: Ceilings,
}

/// The intensity axis always spans at least this range (flop / byte), so both sides of the
/// roof show even when every kernel measured sits on one side of the ridge.
const SPAN: (f64, f64) = (0.05, 100.0);

/// How far past the largest intensity the axis runs, so the label of the rightmost point
/// (placed right of it) stays inside the chart.
const LABEL_ROOM: f64 = 8.0;

impl Roofline {
    /// This device's panel, log-log: the bandwidth roof (a line of slope 1) up to the
    /// ridge, the compute roof (flat) from there, where known, and the points.
    pub fn chart(&self) -> Chart {
        let ceil = &self.ceilings;
        // The intensities to show: the points, the span, and the ridge with room either side.
        let ridge = ceil.ridge().filter(|r| *r > 0.0 && r.is_finite());
        let around: Vec<f64> = ridge.map_or(Vec::new(), |r| vec![r / 4.0, r * 4.0]);
        let xs = || {
            self.points.iter().map(|p| p.intensity).chain(around.iter().copied()).filter(|x| *x > 0.0 && x.is_finite())
        };
        let lo = xs().fold(SPAN.0, f64::min);
        // Room right of the last point for its label.
        let hi = xs().fold(SPAN.1, f64::max).max(xs().fold(0.0, f64::max) * LABEL_ROOM);
        let (compute_name, bandwidth_name) = ceil.legends();
        let mut missing = Vec::new();
        let mut roofs = Vec::new();
        match ceil.gbs {
            Some(b) => {
                let end = ridge.unwrap_or(hi);
                roofs.push(Series::line(bandwidth_name, vec![(lo, b * lo), (end, b * end)]).color("#555"));
            }
            None => missing.push(bandwidth_name),
        }
        match ceil.gflops {
            Some(c) => roofs.push(Series::line(compute_name, vec![(ridge.unwrap_or(lo), c), (hi, c)]).color("#aaa")),
            None => missing.push(compute_name),
        }
        let title = match missing.is_empty() {
            true => format!("roofline: {}", self.device),
            false => format!("roofline: {} ({})", self.device, missing.join("; ")),
        };
        let chart = Chart::new(title)
            .x_axis("arithmetic intensity (flop / byte of compulsory traffic)", Scale::Log)
            .y_axis("GFLOP/s", Scale::Log)
            .size(960.0, 480.0);
        let xy: Vec<(f64, f64)> = self.points.iter().map(|p| (p.intensity, p.gflops)).collect();
        let labels: Vec<String> = self.points.iter().map(|p| p.label.clone()).collect();
        roofs.into_iter().fold(chart, Chart::series).series(Series::scatter("measured kernels", xy).labels(labels))
    }

    /// The same data as JSON.
    pub fn json(&self) -> serde_json::Value {
        let pts: Vec<_> = self
            .points
            .iter()
            .map(|p| {
                let roof = self.ceilings.attainable(p.intensity);
                serde_json::json!({
                    "label": p.label, "intensity": p.intensity, "gflops": p.gflops,
                    "roof_gflops": roof, "fraction_of_roof": roof.map(|r| p.gflops / r),
                })
            })
            .collect();
        let c = &self.ceilings;
        serde_json::json!({
            "device": self.device,
            "ceilings": {
                "gflops": c.gflops, "compute_source": c.compute_source,
                "gbs": c.gbs, "bandwidth_source": c.bandwidth_source, "ridge": c.ridge(),
            },
            "points": pts,
        })
    }
}

/// Every device's panel, stacked, as one SVG document.
pub fn svg(rooflines: &[Roofline]) -> String {
    crate::plot::figure(&rooflines.iter().map(Roofline::chart).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number in attribute `name` of an SVG element's line.
    fn attr(line: &str, name: &str) -> f64 {
        let start = line.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("no {name} in {line}")) + name.len() + 3;
        line[start..].split('"').next().unwrap().parse().unwrap()
    }

    /// (cx, cy) of each data marker: the scatter's circles carry fill-opacity, the legend's not.
    fn markers(svg: &str) -> Vec<(f64, f64)> {
        let lines = svg.lines().filter(|l| l.starts_with("<circle") && l.contains("fill-opacity"));
        lines.map(|l| (attr(l, "cx"), attr(l, "cy"))).collect()
    }

    /// The vertices of each polyline (the roofs), in document order.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        let vertex = |v: &str| {
            let (x, y) = v.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        };
        let points = |l: &str| l.split("points=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
        svg.lines()
            .filter(|l| l.starts_with("<polyline"))
            .map(|l| points(l).split_whitespace().map(vertex).collect())
            .collect()
    }

    /// A log axis read back from two drawn values: (value -> pixel, pixel -> value).
    fn log_axis((p0, v0): (f64, f64), (p1, v1): (f64, f64)) -> (impl Fn(f64) -> f64, impl Fn(f64) -> f64) {
        let slope = (p1 - p0) / (v1.ln() - v0.ln());
        let at = move |v: f64| p0 + slope * (v.ln() - v0.ln());
        let value = move |p: f64| (v0.ln() + (p - p0) / slope).exp();
        (at, value)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-2 * b.abs()
    }

    fn cpu_like() -> Roofline {
        let ceilings = Ceilings {
            gflops: Some(100.0),
            compute_source: "stated: a test clock".into(),
            gbs: Some(10.0),
            bandwidth_source: "measured: a test stream".into(),
        };
        let points = vec![
            Point { label: "matmul (256x256)@(256x256)".into(), intensity: 42.7, gflops: 61.0 },
            Point { label: "softmax 4096x4096".into(), intensity: 0.625, gflops: 3.1 },
            Point { label: "add 4096x4096".into(), intensity: 1.0 / 12.0, gflops: 0.6 },
        ];
        Roofline { device: "cpu (Test CPU 9000)".into(), points, ceilings }
    }

    #[test]
    fn the_roof_bends_at_the_ridge_point() {
        let c = cpu_like().ceilings;
        assert_eq!((c.attainable(1.0), c.attainable(50.0), c.ridge()), (Some(10.0), Some(100.0), Some(10.0)));
        let bw_only = Ceilings { gflops: None, gbs: Some(4.0), ..c.clone() };
        assert_eq!((bw_only.attainable(2.0), bw_only.ridge()), (Some(8.0), None));
        assert_eq!(Ceilings { gflops: None, gbs: None, ..c }.attainable(1.0), None);
    }

    /// The markers sit at the JSON's (intensity, GFLOP/s) on one log-log map, and the roofs
    /// drawn with that map are y = 10 x up to the ridge at 10 flop/byte and y = 100 past it.
    #[test]
    fn the_svg_draws_the_json_points_under_the_ceilings() {
        let r = cpu_like();
        let svg = svg(std::slice::from_ref(&r));
        let m = markers(&svg);
        assert_eq!(m.len(), 3, "{svg}");
        let p = &r.points;
        let (x_at, x_value) = log_axis((m[0].0, p[0].intensity), (m[1].0, p[1].intensity));
        let (y_at, y_value) = log_axis((m[0].1, p[0].gflops), (m[1].1, p[1].gflops));
        assert!((x_at(p[2].intensity) - m[2].0).abs() < 0.3 && (y_at(p[2].gflops) - m[2].1).abs() < 0.3, "{m:?}");

        let roofs = polylines(&svg);
        assert_eq!(roofs.len(), 2, "a bandwidth and a compute roof: {svg}");
        let read = |v: &(f64, f64)| (x_value(v.0), y_value(v.1));
        let bandwidth: Vec<(f64, f64)> = roofs[0].iter().map(read).collect();
        let compute: Vec<(f64, f64)> = roofs[1].iter().map(read).collect();
        assert!(bandwidth.iter().all(|&(x, y)| close(y, 10.0 * x)), "{bandwidth:?}");
        assert!(compute.iter().all(|&(_, y)| close(y, 100.0)), "{compute:?}");
        let ridge = (bandwidth.last().unwrap().0, compute[0].0);
        assert!(close(ridge.0, 10.0) && close(ridge.1, 10.0), "the roofs meet at the ridge: {ridge:?}");
        assert!(
            bandwidth[0].0 <= p[2].intensity && compute.last().unwrap().0 >= p[0].intensity,
            "every point under the roof"
        );

        for text in [
            "cpu (Test CPU 9000)",
            "compute 100.0 GFLOP/s, stated: a test clock",
            "bandwidth 10.0 GB/s, measured: a test stream",
        ]
        .into_iter()
        .chain(p.iter().map(|p| p.label.as_str()))
        {
            assert!(svg.contains(text), "{text} missing from {svg}");
        }
        let json = r.json();
        assert_eq!(json["ceilings"]["ridge"], 10.0);
        for (j, p) in json["points"].as_array().unwrap().iter().zip(p) {
            assert_eq!((j["intensity"].as_f64(), j["gflops"].as_f64()), (Some(p.intensity), Some(p.gflops)));
        }
        // matmul under the compute roof (100), add under the bandwidth roof (10 / 12).
        assert_eq!(json["points"][0]["roof_gflops"], 100.0);
        assert!(close(json["points"][2]["fraction_of_roof"].as_f64().unwrap(), 0.6 * 12.0 / 10.0));
    }

    /// A GPU: no compute roof (and the title says why), the bandwidth roof across the chart.
    #[test]
    fn an_unknown_compute_ceiling_draws_no_compute_roof() {
        let mut r = cpu_like();
        r.ceilings.gflops = None;
        r.ceilings.compute_source = "not known to wgpu".into();
        let svg = svg(std::slice::from_ref(&r));
        let roofs = polylines(&svg);
        assert_eq!(roofs.len(), 1, "{svg}");
        let m = markers(&svg);
        let p = &r.points;
        let (_, x_value) = log_axis((m[0].0, p[0].intensity), (m[1].0, p[1].intensity));
        let (_, y_value) = log_axis((m[0].1, p[0].gflops), (m[1].1, p[1].gflops));
        assert!(roofs[0].iter().all(|v| close(y_value(v.1), 10.0 * x_value(v.0))), "{roofs:?}");
        assert!(svg.contains("no compute roof: not known to wgpu") && r.json()["ceilings"]["ridge"].is_null());
    }
}
