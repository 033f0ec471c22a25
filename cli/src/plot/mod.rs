//! Small charts as standalone SVG, written by hand (no plotting dependency): line and
//! scatter series on linear or log axes with nice ticks, axis labels, a title, a legend
//! and dashed reference lines; several charts stack into one figure.
//!
//! ```ignore
//! let chart = Chart::new("perplexity vs sparsity")
//!     .x_axis("sparsity", Scale::Linear)
//!     .y_axis("perplexity", Scale::Log)
//!     .series(Series::line("unstructured", points));
//! std::fs::write("ppl.svg", chart.to_svg())?;
//! ```
//!
//! Points that cannot be drawn (NaN, infinite, or not positive on a log axis) are
//! skipped and break a line; a chart with nothing to draw says "no data".

mod bars;
mod lineage;
mod loss;
mod svg;
mod ticks;

pub use bars::{short, BarChart, BarSeries};
pub use lineage::{lineage_svg, Curve};
pub use loss::loss_curve_svg;

/// How values map to an axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
}

#[derive(Clone, Debug)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    /// Fixed ends; the data range (padded) when None.
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Line,
    Points,
    LineAndPoints,
}

#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text; an empty name keeps the series out of the legend.
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub mark: Mark,
    /// An SVG colour; None takes the next one of the palette.
    pub color: Option<String>,
    pub width: f64,
    pub opacity: f64,
    /// Text next to each point (drawn when not empty; one per point).
    pub labels: Vec<String>,
}

impl Series {
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
            mark: Mark::Line,
            color: None,
            width: 2.0,
            opacity: 1.0,
            labels: Vec::new(),
        }
    }

    pub fn scatter(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series { mark: Mark::Points, ..Series::line(name, points) }
    }

    pub fn mark(mut self, mark: Mark) -> Series {
        self.mark = mark;
        self
    }

    pub fn color(mut self, color: &str) -> Series {
        self.color = Some(color.to_string());
        self
    }

    pub fn width(mut self, width: f64) -> Series {
        self.width = width;
        self
    }

    pub fn opacity(mut self, opacity: f64) -> Series {
        self.opacity = opacity;
        self
    }

    pub fn labels(mut self, labels: Vec<String>) -> Series {
        self.labels = labels;
        self
    }
}

/// A horizontal reference line across the whole plot, labelled at its right end.
#[derive(Clone, Debug)]
pub struct HLine {
    pub y: f64,
    pub label: String,
    pub color: String,
}

#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    pub hlines: Vec<HLine>,
    /// Size in pixels of this chart (one panel of a figure).
    pub width: f64,
    pub height: f64,
}

impl Chart {
    pub fn new(title: impl Into<String>) -> Chart {
        let axis = |label: &str| Axis { label: label.into(), scale: Scale::Linear, min: None, max: None };
        Chart {
            title: title.into(),
            x: axis("x"),
            y: axis("y"),
            series: Vec::new(),
            hlines: Vec::new(),
            width: 720.0,
            height: 400.0,
        }
    }

    pub fn x_axis(mut self, label: impl Into<String>, scale: Scale) -> Chart {
        self.x = Axis { label: label.into(), scale, ..self.x };
        self
    }

    pub fn y_axis(mut self, label: impl Into<String>, scale: Scale) -> Chart {
        self.y = Axis { label: label.into(), scale, ..self.y };
        self
    }

    /// Fix the y axis to start at `min` (a loss curve from 0, say).
    pub fn y_min(mut self, min: f64) -> Chart {
        self.y.min = Some(min);
        self
    }

    pub fn series(mut self, s: Series) -> Chart {
        self.series.push(s);
        self
    }

    pub fn hline(mut self, y: f64, label: impl Into<String>, color: &str) -> Chart {
        self.hlines.push(HLine { y, label: label.into(), color: color.into() });
        self
    }

    pub fn size(mut self, width: f64, height: f64) -> Chart {
        self.width = width;
        self.height = height;
        self
    }

    /// This chart alone as an SVG document.
    pub fn to_svg(&self) -> String {
        figure(std::slice::from_ref(self))
    }
}

/// Charts stacked top to bottom in one SVG document.
pub fn figure(charts: &[Chart]) -> String {
    svg::figure(charts)
}

/// Write `svg` to `path` atomically (a temporary file in the same directory, renamed).
pub fn save(path: &std::path::Path, svg: &str) -> Result<(), String> {
    lamina_model::atomic::write_bytes(path, svg.as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
