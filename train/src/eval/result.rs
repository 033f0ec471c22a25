//! What a run produces: per task, its metrics (value, standard error where it applies, the
//! number of items behind it, which way is better), the time it took, notes and optional
//! per-item samples; and the report that gathers the tasks with the run's settings. The
//! JSON written here is read back by `lamina eval compare`.

use super::metric::{Goal, Metric};
use serde_json::{json, Map, Value};

/// The version of the report's JSON layout.
pub const REPORT_VERSION: u64 = 1;

#[derive(Clone, Debug, PartialEq)]
pub struct MetricValue {
    /// The metric's name; a breakdown appends "/" and the category (`pct_stereotype/age`).
    pub name: String,
    pub value: f64,
    pub stderr: Option<f64>,
    /// Items (or tokens, runs) the value is computed over.
    pub n: usize,
    pub goal: Goal,
}

impl MetricValue {
    /// The mean of `values` for `metric`, with its standard error.
    pub fn mean(metric: Metric, values: &[f64]) -> MetricValue {
        let (value, stderr) = super::stats::mean_stderr(values);
        MetricValue { name: metric.name().into(), value, stderr, n: values.len(), goal: metric.goal() }
    }

    /// A value with no standard error.
    pub fn plain(metric: Metric, value: f64, n: usize) -> MetricValue {
        MetricValue { name: metric.name().into(), value, stderr: None, n, goal: metric.goal() }
    }

    /// The same metric over one category of items.
    pub fn for_category(mut self, category: &str) -> MetricValue {
        self.name = format!("{}/{category}", self.name);
        self
    }

    fn to_json(&self) -> Value {
        json!({"metric": self.name, "value": finite(self.value), "stderr": self.stderr.map(finite),
               "n": self.n, "better": goal_name(self.goal)})
    }

    fn from_json(v: &Value) -> Result<MetricValue, String> {
        let name = v["metric"].as_str().ok_or("a metric without a `metric` name")?.to_string();
        Ok(MetricValue {
            value: v["value"].as_f64().unwrap_or(f64::NAN),
            stderr: v["stderr"].as_f64(),
            n: v["n"].as_u64().unwrap_or(0) as usize,
            goal: parse_goal(v["better"].as_str().unwrap_or(""))
                .or_else(|| Metric::by_name(name.split('/').next().unwrap_or("")).map(Metric::goal))
                .ok_or_else(|| format!("metric `{name}`: no `better` direction"))?,
            name,
        })
    }
}

/// NaN and infinities are not JSON numbers: they are written as null.
fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!(v)
    } else {
        Value::Null
    }
}

fn goal_name(g: Goal) -> String {
    match g {
        Goal::Higher => "higher".into(),
        Goal::Lower => "lower".into(),
        Goal::Target(t) => format!("near {t}"),
    }
}

fn parse_goal(s: &str) -> Option<Goal> {
    match s {
        "higher" => Some(Goal::Higher),
        "lower" => Some(Goal::Lower),
        _ => s.strip_prefix("near ").and_then(|t| t.parse().ok()).map(Goal::Target),
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskResult {
    pub task: String,
    pub kind: String,
    /// The task file.
    pub file: String,
    /// Items evaluated.
    pub n: usize,
    pub seconds: f64,
    pub metrics: Vec<MetricValue>,
    /// Things a reader should know (few-shot ignored, items skipped, ...).
    pub notes: Vec<String>,
    /// Per-item details, when asked for.
    pub samples: Vec<Value>,
}

impl TaskResult {
    pub fn metric(&self, name: &str) -> Option<&MetricValue> {
        self.metrics.iter().find(|m| m.name == name)
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "task": self.task, "kind": self.kind, "file": self.file, "n": self.n, "seconds": self.seconds,
            "metrics": self.metrics.iter().map(MetricValue::to_json).collect::<Vec<_>>(),
            "notes": self.notes,
        });
        if !self.samples.is_empty() {
            v["samples"] = Value::Array(self.samples.clone());
        }
        v
    }

    pub fn from_json(v: &Value) -> Result<TaskResult, String> {
        let metrics = v["metrics"].as_array().ok_or("a task without `metrics`")?;
        Ok(TaskResult {
            task: v["task"].as_str().ok_or("a task without a `task` name")?.to_string(),
            kind: v["kind"].as_str().unwrap_or("").to_string(),
            file: v["file"].as_str().unwrap_or("").to_string(),
            n: v["n"].as_u64().unwrap_or(0) as usize,
            seconds: v["seconds"].as_f64().unwrap_or(0.0),
            metrics: metrics.iter().map(MetricValue::from_json).collect::<Result<_, _>>()?,
            notes: v["notes"]
                .as_array()
                .map_or(Vec::new(), |a| a.iter().filter_map(|n| n.as_str().map(String::from)).collect()),
            samples: Vec::new(),
        })
    }
}

/// A run: its settings (model, adapter, device, seed, ...) and its tasks' results.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub settings: Map<String, Value>,
    pub tasks: Vec<TaskResult>,
}

impl Report {
    /// A short name for the run (the `label` setting, else the model file's name).
    pub fn label(&self) -> String {
        let s = |k: &str| self.settings.get(k).and_then(Value::as_str).map(String::from);
        s("label").or_else(|| s("model").map(|m| m.rsplit('/').next().unwrap_or(&m).to_string())).unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({"lamina_eval": REPORT_VERSION});
        for (k, x) in &self.settings {
            v[k] = x.clone();
        }
        v["tasks"] = Value::Array(self.tasks.iter().map(TaskResult::to_json).collect());
        v
    }

    pub fn from_json(v: &Value) -> Result<Report, String> {
        match v.get("lamina_eval").and_then(Value::as_u64) {
            Some(REPORT_VERSION) => {}
            Some(other) => return Err(format!("report version {other}: this build reads version {REPORT_VERSION}")),
            None => return Err("not a `lamina eval` report (no `lamina_eval` field)".into()),
        }
        let tasks = v["tasks"].as_array().ok_or("a report without `tasks`")?;
        let mut settings = v.as_object().cloned().unwrap_or_default();
        settings.remove("tasks");
        settings.remove("lamina_eval");
        Ok(Report { settings, tasks: tasks.iter().map(TaskResult::from_json).collect::<Result<_, _>>()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_through_json() {
        let mut settings = Map::new();
        settings.insert("model".into(), json!("models/base.gguf"));
        let task = TaskResult {
            task: "bias".into(),
            kind: "bias_pairs".into(),
            n: 4,
            seconds: 1.5,
            metrics: vec![
                MetricValue::mean(Metric::PctStereotype, &[1.0, 0.0, 1.0, 1.0]),
                MetricValue::plain(Metric::LikelihoodDiff, f64::NAN, 0).for_category("age"),
            ],
            notes: vec!["a note".into()],
            ..Default::default()
        };
        let r = Report { settings, tasks: vec![task] };
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.label(), "base.gguf");
        let t = &back.tasks[0];
        assert_eq!(t.metric("pct_stereotype").unwrap().goal, Goal::Target(0.5));
        assert_eq!(t.metric("pct_stereotype").unwrap().stderr, Some(0.25));
        assert!(t.metric("likelihood_diff/age").unwrap().value.is_nan());
        assert_eq!(t.notes, ["a note"]);
        assert!(Report::from_json(&json!({"tasks": []})).unwrap_err().contains("not a `lamina eval` report"));
    }
}
