//! `lamina plot LOG.jsonl -o loss.svg`: a fine-tuning log drawn as an SVG. The log has
//! one JSON object per line; training lines carry `step` and `loss` (and maybe `lr`,
//! `epoch`, `tokens_per_s`, `grad_norm`), validation lines `step` and `val_loss`. Unknown
//! keys are ignored, lines without a step are skipped (and counted), lines that are not
//! JSON objects are reported with their line numbers (a log still being written may end
//! in half a line).

use crate::llm::CliResult;
use crate::plot::{self, Chart, Mark, Scale, Series};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// The log: one JSON object per line.
    pub log: PathBuf,
    /// The SVG to write.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// Moving-average window, in logged training lines (0: about a twentieth of the run).
    #[arg(long, default_value_t = 0)]
    pub smooth: usize,
    /// Log scale for the loss axis.
    #[arg(long)]
    pub log_y: bool,
    /// Leave out the learning-rate panel.
    #[arg(long)]
    pub no_lr: bool,
    /// Chart title (default: the log's file name).
    #[arg(long)]
    pub title: Option<String>,
}

/// What a log holds, as (step, value) series in file order.
#[derive(Debug, Default, PartialEq)]
pub struct TrainLog {
    pub train: Vec<(f64, f64)>,
    pub val: Vec<(f64, f64)>,
    pub lr: Vec<(f64, f64)>,
    /// Lines that parsed but have no `step`.
    pub without_step: usize,
    /// (line number from 1, what is wrong).
    pub bad: Vec<(usize, String)>,
}

pub fn parse(text: &str) -> TrainLog {
    let mut log = TrainLog::default();
    for (i, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
        if line.is_empty() {
            continue;
        }
        let obj = match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(o)) => o,
            Ok(_) => {
                log.bad.push((i, "not a JSON object".into()));
                continue;
            }
            Err(e) => {
                log.bad.push((i, format!("not JSON ({e})")));
                continue;
            }
        };
        let step = match obj.get("step") {
            None => {
                log.without_step += 1;
                continue;
            }
            Some(v) => match v.as_f64().filter(|s| s.is_finite() && *s >= 0.0) {
                Some(s) => s,
                None => {
                    log.bad.push((i, format!("`step` is {v}, not a non-negative number")));
                    continue;
                }
            },
        };
        for (key, series) in [("loss", &mut log.train), ("val_loss", &mut log.val), ("lr", &mut log.lr)] {
            match obj.get(key) {
                None => {}
                Some(v) => match v.as_f64() {
                    Some(x) => series.push((step, x)),
                    None => log.bad.push((i, format!("`{key}` is {v}, not a number"))),
                },
            }
        }
    }
    log
}

/// Trailing mean of the last `window` values (fewer at the start).
pub fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let window = window.max(1);
    let mut sum = 0.0;
    let mut out = Vec::with_capacity(points.len());
    let finite: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    for (i, &(step, v)) in finite.iter().enumerate() {
        sum += v;
        if i >= window {
            sum -= finite[i - window].1;
        }
        out.push((step, sum / (i + 1).min(window) as f64));
    }
    out
}

pub fn run(args: PlotArgs) -> CliResult {
    let text = std::fs::read_to_string(&args.log).map_err(|e| format!("{}: {e}", args.log.display()))?;
    let mut log = parse(&text);
    for (line, what) in log.bad.iter().take(10) {
        eprintln!("{}:{line}: {what}; skipped", args.log.display());
    }
    if log.bad.len() > 10 {
        eprintln!("... and {} more bad lines", log.bad.len() - 10);
    }
    if log.without_step > 0 {
        eprintln!("skipped {} lines without a `step`", log.without_step);
    }
    if log.train.is_empty() && log.val.is_empty() {
        return Err(format!("{}: no `loss` or `val_loss` values with a `step`", args.log.display()).into());
    }
    for s in [&mut log.train, &mut log.val, &mut log.lr] {
        s.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let window = if args.smooth > 0 { args.smooth } else { (log.train.len() / 20).clamp(1, 200) };
    let avg = moving_average(&log.train, window);
    let title = args
        .title
        .clone()
        .unwrap_or_else(|| args.log.file_name().map_or("training log".into(), |n| n.to_string_lossy().into_owned()));
    let scale = if args.log_y { Scale::Log } else { Scale::Linear };
    let mut loss = Chart::new(title)
        .x_axis("step", Scale::Linear)
        .y_axis("loss (nats/token)", scale)
        .series(Series::line("", log.train.clone()).color("#9ecae1").width(1.0).opacity(0.7))
        .series(Series::line(format!("train loss, moving average of {window}"), avg.clone()).color("#08519c"))
        .series(Series::line("validation loss", log.val.clone()).mark(Mark::LineAndPoints).color("#d62728"));
    if log.train.is_empty() {
        loss.series.retain(|s| !s.points.is_empty());
    }
    let mut charts = vec![loss];
    if !log.lr.is_empty() && !args.no_lr {
        charts.push(
            Chart::new("learning rate")
                .x_axis("step", Scale::Linear)
                .y_axis("learning rate", Scale::Linear)
                .y_min(0.0)
                .series(Series::line("", log.lr.clone()).color("#2ca02c"))
                .size(720.0, 240.0),
        );
    }
    plot::save(&args.output, &plot::figure(&charts))?;

    let mut summary = format!("{}:", args.log.display());
    if let (Some(first), Some(last), Some(a)) = (log.train.first(), log.train.last(), avg.last()) {
        summary += &format!(
            " {} training lines (loss {:.4} -> {:.4}, moving average {:.4})",
            log.train.len(),
            first.1,
            last.1,
            a.1
        );
    }
    if let Some(best) = log.val.iter().filter(|v| v.1.is_finite()).min_by(|a, b| a.1.total_cmp(&b.1)) {
        summary += &format!("; {} validation points (best {:.4} at step {})", log.val.len(), best.1, best.0);
    }
    println!("{summary}; written to {}", args.output.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"step": 0, "epoch": 0.0, "loss": 3.0, "lr": 0.0, "tokens_per_s": 800.0, "grad_norm": 2.0}
{"step": 1, "epoch": 0.1, "loss": 2.5, "lr": 0.0001}

{"step": 2, "loss": 2.0, "lr": 0.0002, "new_key": [1, 2]}
{"event": "checkpoint saved"}
{"step": 2, "val_loss": 2.1, "val_ppl": 8.17}
{"step": 3, "loss": "high"}
not json at all
[1, 2, 3]
{"step": -1, "loss": 1.0}
{"step": 4, "loss": 1.5, "lr": 0.0002
"#;

    #[test]
    fn a_log_parses_with_its_problems_counted() {
        let log = parse(LOG);
        assert_eq!(log.train, [(0.0, 3.0), (1.0, 2.5), (2.0, 2.0)]);
        assert_eq!(log.val, [(2.0, 2.1)]);
        assert_eq!(log.lr, [(0.0, 0.0), (1.0, 0.0001), (2.0, 0.0002)]);
        assert_eq!(log.without_step, 1);
        let lines: Vec<usize> = log.bad.iter().map(|b| b.0).collect();
        assert_eq!(lines, [7, 8, 9, 10, 11], "{:?}", log.bad);
        assert!(log.bad[0].1.contains("`loss`") && log.bad[3].1.contains("`step`"));
    }

    #[test]
    fn moving_average_is_a_trailing_mean() {
        let pts: Vec<(f64, f64)> = [1.0, 2.0, 3.0, 4.0, 5.0].iter().enumerate().map(|(i, &v)| (i as f64, v)).collect();
        let avg = moving_average(&pts, 2);
        assert_eq!(avg, [(0.0, 1.0), (1.0, 1.5), (2.0, 2.5), (3.0, 3.5), (4.0, 4.5)]);
        assert_eq!(moving_average(&pts, 0)[4], (4.0, 5.0));
        assert_eq!(moving_average(&[(0.0, f64::NAN), (1.0, 2.0)], 3), [(1.0, 2.0)]);
    }

    #[test]
    fn the_command_writes_an_svg_with_two_panels_and_refuses_empty_logs() {
        let dir = std::env::temp_dir().join(format!("lamina-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (log, out) = (dir.join("run.jsonl"), dir.join("loss.svg"));
        std::fs::write(&log, LOG).unwrap();
        let args = |log: &PathBuf| PlotArgs {
            log: log.clone(),
            output: out.clone(),
            smooth: 0,
            log_y: false,
            no_lr: false,
            title: None,
        };
        run(args(&log)).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.contains("run.jsonl") && svg.contains("validation loss") && svg.contains("learning rate"));
        assert_eq!(svg.matches("<clipPath").count(), 2);
        std::fs::write(&log, "{\"event\": 1}\n").unwrap();
        let e = run(args(&log)).unwrap_err().to_string();
        assert!(e.contains("no `loss`"), "{e}");
        let e = run(args(&dir.join("missing.jsonl"))).unwrap_err().to_string();
        assert!(e.contains("missing.jsonl"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
