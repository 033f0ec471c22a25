//! `lamina eval compare A.json B.json ...`: reports side by side, each value after the first
//! column with its difference from the first (better, worse, beyond the standard errors),
//! as a table and an HTML page with the charts.

use crate::eval_report;
use crate::llm::CliResult;
use clap::Args;
use lamina_train::eval::Report;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Reports written by `lamina eval` (the first is the baseline).
    #[arg(required = true, num_args = 2.., value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Write the comparison as an HTML page with charts.
    #[arg(long, short = 'o', value_name = "FILE.html")]
    pub out: Option<PathBuf>,
    /// Print the rows as JSON (task, metric, each report's value and the differences).
    #[arg(long)]
    pub json: bool,
    /// Also show the per-category rows (`acc/npi_licensing`, ...) in the table.
    #[arg(long)]
    pub breakdown: bool,
}

pub fn read_report(path: &PathBuf) -> CliResult<Report> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    Ok(Report::from_json(&v).map_err(|e| format!("{}: {e}", path.display()))?)
}

pub fn run(args: CompareArgs) -> CliResult {
    let reports: Vec<Report> = args.reports.iter().map(read_report).collect::<CliResult<_>>()?;
    if let Some(out) = &args.out {
        crate::plot::save(out, &eval_report::html(&reports))?;
    }
    if args.json {
        let rows: Vec<serde_json::Value> = eval_report::rows(&reports)
            .iter()
            .map(|row| {
                let first = row.values[0];
                serde_json::json!({
                    "task": row.task, "metric": row.metric,
                    "values": row.values.iter().map(|v| v.map(|v| v.value)).collect::<Vec<_>>(),
                    "stderr": row.values.iter().map(|v| v.and_then(|v| v.stderr)).collect::<Vec<_>>(),
                    "better_than_first": row.values.iter().map(|v| match (first, v) {
                        (Some(a), Some(b)) => eval_report::delta(a, b).better,
                        _ => None,
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        let labels: Vec<String> = reports.iter().map(Report::label).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"labels": labels, "rows": rows}))?);
    } else {
        print!("{}", eval_report::table(&reports, args.breakdown));
        if let Some(out) = &args.out {
            println!("comparison: {}", out.display());
        }
    }
    Ok(())
}
