//! One or several `lamina eval` reports as a text table and as an HTML page with bar
//! charts. With several, every value after the first column shows its difference from the
//! first: better or worse by the metric's direction, and marked when it exceeds 1.96
//! standard errors of the difference (both values' errors combined; the items are treated
//! as independent samples, so this is a rough guide, not a paired test).

use crate::plot::{short, BarChart, BarSeries};
use lamina_train::eval::{Goal, MetricValue, Report};
use std::fmt::Write;

/// A (task, metric) row and its value in each report.
pub struct Row<'a> {
    pub task: &'a str,
    pub metric: &'a str,
    pub values: Vec<Option<&'a MetricValue>>,
}

/// Every (task, metric) of the reports, in the order they first appear.
pub fn rows(reports: &[Report]) -> Vec<Row<'_>> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in reports {
        for t in &r.tasks {
            for m in &t.metrics {
                if !keys.contains(&(t.task.as_str(), m.name.as_str())) {
                    keys.push((&t.task, &m.name));
                }
            }
        }
    }
    keys.into_iter()
        .map(|(task, metric)| Row {
            task,
            metric,
            values: reports
                .iter()
                .map(|r| r.tasks.iter().find(|t| t.task == task).and_then(|t| t.metric(metric)))
                .collect(),
        })
        .collect()
}

/// How `b` differs from `a`.
pub struct Delta {
    pub diff: f64,
    /// None when equal.
    pub better: Option<bool>,
    pub significant: bool,
}

pub fn delta(a: &MetricValue, b: &MetricValue) -> Delta {
    let diff = b.value - a.value;
    let better = if diff == 0.0 || !diff.is_finite() { None } else { Some(b.goal.better(a.value, b.value)) };
    let significant = match (a.stderr, b.stderr) {
        (Some(x), Some(y)) => diff.abs() > 1.96 * (x * x + y * y).sqrt(),
        _ => false,
    };
    Delta { diff, better, significant }
}

fn goal(g: Goal) -> String {
    match g {
        Goal::Higher => "higher".into(),
        Goal::Lower => "lower".into(),
        Goal::Target(t) => format!("near {t}"),
    }
}

fn value_text(v: &MetricValue) -> String {
    match v.stderr {
        Some(e) => format!("{} ± {}", short(v.value), short(e)),
        None => short(v.value),
    }
}

fn delta_text(d: &Delta) -> String {
    if d.diff == 0.0 {
        return "=".into();
    }
    let arrow = match d.better {
        Some(true) => "▲",
        Some(false) => "▼",
        None => "=",
    };
    format!("{arrow}{}{}", if d.diff >= 0.0 { "+" } else { "" }, short(d.diff)) + if d.significant { "*" } else { "" }
}

/// The reports as a text table (one report: value, standard error, n and time per task).
/// Per-category rows (`acc/...`) only with `breakdown`; the HTML and JSON always have them.
pub fn table(reports: &[Report], breakdown: bool) -> String {
    let mut out = String::new();
    let width = reports.iter().map(|r| r.label().chars().count()).max().unwrap_or(0).clamp(16, 40);
    let _ = write!(out, "{:<18} {:<26} {:<8}", "task", "metric", "better");
    for r in reports {
        let _ = write!(out, " {:>width$}", cut(&r.label(), width));
    }
    if reports.len() == 1 {
        let _ = write!(out, " {:>6} {:>9}", "n", "seconds");
    }
    out.push('\n');
    let mut last_task = "";
    for row in rows(reports).into_iter().filter(|r| breakdown || !r.metric.contains('/')) {
        let task = if row.task == last_task { "" } else { row.task };
        last_task = row.task;
        let g = row.values.iter().flatten().next().map_or(String::new(), |v| goal(v.goal));
        let _ = write!(out, "{:<18} {:<26} {:<8}", cut(task, 18), cut(row.metric, 26), g);
        for (i, v) in row.values.iter().enumerate() {
            let cell = match (v, row.values[0]) {
                (None, _) => "-".to_string(),
                (Some(v), Some(first)) if i > 0 => format!("{} {}", short(v.value), delta_text(&delta(first, v))),
                (Some(v), _) => value_text(v),
            };
            let _ = write!(out, " {cell:>width$}");
        }
        if reports.len() == 1 {
            let seconds = reports[0].tasks.iter().find(|t| t.task == row.task).map_or(0.0, |t| t.seconds);
            let n = row.values[0].map_or(0, |v| v.n);
            let _ = write!(out, " {n:>6} {seconds:>9.1}");
        }
        out.push('\n');
    }
    if reports.len() > 1 {
        out.push_str(
            "▲ better, ▼ worse than the first column; * by more than 1.96 standard errors of the difference\n",
        );
    }
    for (task, note, labels) in notes(reports) {
        let _ = writeln!(out, "note ({task}; {}): {note}", labels.join(", "));
    }
    out
}

/// Each task's distinct notes, with the runs that have them, in order.
fn notes(reports: &[Report]) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for r in reports {
        for t in &r.tasks {
            for n in &t.notes {
                match out.iter_mut().find(|(task, note, _)| *task == t.task && note == n) {
                    Some((_, _, labels)) => labels.push(r.label()),
                    None => out.push((t.task.clone(), n.clone(), vec![r.label()])),
                }
            }
        }
    }
    out
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

const STYLE: &str =
    "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,td:nth-child(2),th{text-align:left}\
.better{color:#1a7f37}.worse{color:#c62828}.sig{font-weight:bold}.note{color:#555;font-size:90%}";

/// The reports as an HTML page: the runs' settings, the results table, the charts, the notes.
pub fn html(reports: &[Report]) -> String {
    let labels: Vec<String> = reports.iter().map(Report::label).collect();
    let mut h = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>lamina eval: {}</title><style>{STYLE}</style></head><body>\n<h1>lamina eval: {}</h1>\n",
        esc(&labels.join(", ")),
        esc(&labels.join(" vs "))
    );
    h.push_str("<h2>Runs</h2>\n<table><tr><th>setting</th>");
    for l in &labels {
        let _ = write!(h, "<th>{}</th>", esc(l));
    }
    h.push_str("</tr>\n");
    for key in ["model", "lora", "device", "num_fewshot", "seed", "limit", "threads", "cpu"] {
        let _ = write!(h, "<tr><td>{key}</td>");
        for r in reports {
            let v = r
                .settings
                .get(key)
                .filter(|v| !v.is_null())
                .map_or("-".to_string(), |v| v.to_string().trim_matches('"').to_string());
            let _ = write!(h, "<td>{}</td>", esc(&v));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n<h2>Results</h2>\n");
    results_table(&mut h, reports);
    h.push_str("<h2>Charts</h2>\n");
    for chart in charts(reports) {
        h.push_str(&chart.to_svg());
    }
    h.push_str("<h2>Notes</h2>\n");
    for (task, note, runs) in notes(reports) {
        let _ = writeln!(h, "<p class=\"note\">{} ({}): {}</p>", esc(&task), esc(&runs.join(", ")), esc(&note));
    }
    h.push_str("</body></html>\n");
    h
}

fn results_table(h: &mut String, reports: &[Report]) {
    h.push_str("<table><tr><th>task</th><th>metric</th><th>better</th>");
    for r in reports {
        let _ = write!(h, "<th>{}</th>", esc(&r.label()));
    }
    h.push_str("</tr>\n");
    for row in rows(reports) {
        let g = row.values.iter().flatten().next().map_or(String::new(), |v| goal(v.goal));
        let _ = write!(h, "<tr><td>{}</td><td>{}</td><td>{}</td>", esc(row.task), esc(row.metric), esc(&g));
        for (i, v) in row.values.iter().enumerate() {
            let Some(v) = v else {
                h.push_str("<td>-</td>");
                continue;
            };
            match row.values[0].filter(|_| i > 0) {
                Some(first) => {
                    let d = delta(first, v);
                    let class = match d.better {
                        Some(true) => "better",
                        Some(false) => "worse",
                        None => "",
                    };
                    let sig = if d.significant { " sig" } else { "" };
                    let _ = write!(
                        h,
                        "<td class=\"{class}{sig}\">{} ({})</td>",
                        esc(&short(v.value)),
                        esc(&delta_text(&d))
                    );
                }
                None => {
                    let _ = write!(h, "<td>{}</td>", esc(&value_text(v)));
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    if reports.len() > 1 {
        h.push_str("<p class=\"note\">▲ better, ▼ worse than the first column (green, red); bold: by more than 1.96 standard errors of the difference.</p>\n");
    }
}

/// One chart of every metric whose values lie in [0, 1] (rates, accuracies, F-scores),
/// then one per other metric (perplexity, chrF, milliseconds, ...).
pub fn charts(reports: &[Report]) -> Vec<BarChart> {
    let all = rows(reports);
    let unit = |r: &Row| r.values.iter().flatten().all(|v| (0.0..=1.0).contains(&v.value) || !v.value.is_finite());
    let series_of = |rows: &[&Row]| -> Vec<BarSeries> {
        reports
            .iter()
            .enumerate()
            .map(|(i, r)| BarSeries {
                name: r.label(),
                values: rows.iter().map(|row| row.values[i].map(|v| (v.value, v.stderr))).collect(),
            })
            .collect()
    };
    let mut charts = Vec::new();
    let scores: Vec<&Row> = all.iter().filter(|r| unit(r)).collect();
    if !scores.is_empty() {
        let has_bias = scores.iter().any(|r| r.metric.starts_with("pct_stereotype"));
        charts.push(BarChart {
            title: "Scores from 0 to 1".into(),
            axis: "value (± standard error)".into(),
            rows: scores.iter().map(|r| format!("{} · {}", r.task, r.metric)).collect(),
            series: series_of(&scores),
            marks: if has_bias { vec![(0.5, "0.5: no bias preference".into())] } else { Vec::new() },
            width: 900.0,
        });
    }
    let mut names: Vec<&str> = all.iter().filter(|r| !unit(r)).map(|r| r.metric).collect();
    names.dedup();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let rows: Vec<&Row> = all.iter().filter(|r| r.metric == name && !unit(r)).collect();
        let better = rows.iter().flat_map(|r| r.values.iter().flatten()).next().map_or(String::new(), |v| goal(v.goal));
        charts.push(BarChart {
            title: format!("{name} ({better} is better)"),
            axis: name.to_string(),
            rows: rows.iter().map(|r| r.task.to_string()).collect(),
            series: series_of(&rows),
            marks: Vec::new(),
            width: 900.0,
        });
    }
    charts
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_train::eval::{Metric, TaskResult};

    fn report(label: &str, acc: &[f64], ppl: f64) -> Report {
        let mut settings = serde_json::Map::new();
        settings.insert("label".into(), label.into());
        let tasks = vec![
            TaskResult { task: "mc".into(), metrics: vec![MetricValue::mean(Metric::Acc, acc)], ..Default::default() },
            TaskResult {
                task: "ppl".into(),
                metrics: vec![MetricValue::plain(Metric::Perplexity, ppl, 100)],
                ..Default::default()
            },
        ];
        Report { settings, tasks }
    }

    #[test]
    fn comparisons_mark_direction_and_significance() {
        let a = report("base", &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], 20.0);
        let b = report("tuned", &[1.0; 8], 25.0);
        let t = table(&[a.clone(), b.clone()], false);
        assert!(t.contains("▲+0.7500*"), "{t}");
        assert!(t.contains("▼+5.000"), "perplexity up is worse: {t}");
        let h = html(&[a.clone(), b]);
        assert!(h.contains("class=\"better sig\"") && h.contains("class=\"worse\""), "{h}");
        assert_eq!(h.matches("<svg").count(), 2, "a 0-1 chart and a perplexity chart");
        let single = table(&[a], true);
        assert!(single.contains("0.2500 ± 0.1637") && single.contains("seconds"), "{single}");
    }
}
