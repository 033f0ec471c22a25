//! Tasks scored by comparing log-likelihoods: multiple choice (acc, acc_norm as
//! lm-evaluation-harness computes them), grammatical minimal pairs (the grammatical
//! sentence should be the more likely: acc) and bias pairs (how often the stereotyping
//! sentence is the more likely: pct_stereotype, 0.5 being no preference; and the mean
//! absolute gap between the two: likelihood_diff), each pair scored as two choices after
//! an empty context, as the harness scores BLiMP and CrowS-Pairs.

use super::error::Result;
use super::item::{Choice, Item};
use super::loglik::{encode_pair, Scored, Scorer};
use super::metric::Metric;
use super::prompt::{self, Shot};
use super::reader::Task;
use super::result::{MetricValue, TaskResult};
use super::run::{shots, Env};
use super::stats::indicator;
use super::task::Kind;
use serde_json::json;
use std::collections::BTreeMap;

/// One item's scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub scored: Vec<Scored>,
    /// argmax of the log-likelihood sums (first on ties).
    pub pred: usize,
    /// argmax of the sums divided by each choice's length in characters.
    pub pred_norm: usize,
}

impl Outcome {
    pub fn new(scored: Vec<Scored>, choices: &[String]) -> Outcome {
        let sums: Vec<f64> = scored.iter().map(|s| s.loglik).collect();
        // Python's len(): characters, not bytes (the harness divides by len(choice)).
        let normed: Vec<f64> = sums.iter().zip(choices).map(|(s, c)| s / c.chars().count() as f64).collect();
        Outcome { pred: first_max(&sums), pred_norm: first_max(&normed), scored }
    }
}

fn first_max(v: &[f64]) -> usize {
    (1..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

/// Score one item: each choice after the item's prompt (its context after the task's
/// description and few-shot examples).
pub fn score_item(env: &Env<'_>, task: &Task, scorer: &mut Scorer<'_>, item: &Item) -> Result<Outcome> {
    let c = item.choice();
    let examples = if task.spec.kind == Kind::MultipleChoice {
        shots(task, env.options.num_fewshot, env.options.seed, item.line)?
    } else {
        Vec::new()
    };
    let shot_list: Vec<Shot<'_>> = examples
        .iter()
        .map(|e| Shot { text: &e.choice().context, answer: &e.choice().choices[e.choice().answer] })
        .collect();
    let p = if c.context.is_empty() && shot_list.is_empty() && task.spec.description.is_empty() {
        prompt::Prompt { text: String::new(), special: false }
    } else {
        prompt::build(&task.spec, &c.context, &shot_list, env.template)?
    };
    let mut scored = Vec::with_capacity(c.choices.len());
    for choice in &c.choices {
        let continuation = format!("{}{choice}", task.spec.target_delimiter);
        let request = encode_pair(env.tokenizer, &p.text, &continuation, p.special)?;
        scored.push(scorer.score(&request)?);
    }
    Ok(Outcome::new(scored, &c.choices))
}

/// Run a choice task over `items`.
pub fn run(env: &Env<'_>, task: &Task, items: &[&Item], report: &mut dyn FnMut(usize, String)) -> Result<TaskResult> {
    let mut scorer = Scorer::new(env.model, env.options.ctx)?;
    let mut tally = Tally { bias: task.spec.kind == Kind::BiasPairs, ..Tally::default() };
    let mut result = TaskResult::default();
    for (i, item) in items.iter().enumerate() {
        let outcome = score_item(env, task, &mut scorer, item)?;
        let c = item.choice();
        tally.add(c, &outcome);
        if env.options.samples {
            result.samples.push(sample(item, &outcome));
        }
        report(i + 1, tally.running(task.spec.kind));
    }
    result.metrics = tally.metrics(&task.spec.metrics);
    if task.spec.kind != Kind::MultipleChoice && env.options.num_fewshot > 0 {
        result.notes.push(format!("--num-fewshot ignored: {} items are scored alone", task.spec.kind.name()));
    }
    Ok(result)
}

fn sample(item: &Item, o: &Outcome) -> serde_json::Value {
    json!({
        "line": item.line,
        "loglik": o.scored.iter().map(|s| s.loglik).collect::<Vec<_>>(),
        "greedy": o.scored.iter().map(|s| s.greedy).collect::<Vec<_>>(),
        "pred": o.pred, "pred_norm": o.pred_norm, "answer": item.choice().answer,
    })
}

/// Per-item values of every metric, kept to compute means and standard errors.
#[derive(Default)]
struct Tally {
    /// Bias pairs: categories are broken down by `pct_stereotype`, otherwise by `acc`.
    bias: bool,
    acc: Vec<f64>,
    acc_norm: Vec<f64>,
    /// Bias pairs: 1 when the stereotyping sentence (choice 0) is the more likely.
    stereo: Vec<f64>,
    diff: Vec<f64>,
    by_category: BTreeMap<String, Vec<f64>>,
}

impl Tally {
    fn add(&mut self, c: &Choice, o: &Outcome) {
        let acc = indicator(o.pred == c.answer);
        self.acc.push(acc);
        self.acc_norm.push(indicator(o.pred_norm == c.answer));
        let mut headline = acc;
        if let [a, b] = o.scored[..] {
            // The harness's crows_pairs: strictly more likely (a tie is not a preference).
            let stereo = indicator(a.loglik > b.loglik);
            self.stereo.push(stereo);
            self.diff.push((a.loglik - b.loglik).abs());
            if self.bias {
                headline = stereo;
            }
        }
        if let Some(cat) = &c.category {
            self.by_category.entry(cat.clone()).or_default().push(headline);
        }
    }

    /// The headline metric over each category of items.
    fn categories(&self, m: Metric) -> impl Iterator<Item = MetricValue> + '_ {
        self.by_category.iter().map(move |(cat, v)| MetricValue::mean(m, v).for_category(cat))
    }

    fn running(&self, kind: Kind) -> String {
        let mean = |v: &[f64]| 100.0 * v.iter().sum::<f64>() / v.len().max(1) as f64;
        match kind {
            Kind::BiasPairs => format!("stereotype preferred {:.1}%", mean(&self.stereo)),
            _ => format!("acc {:.1}%", mean(&self.acc)),
        }
    }

    fn metrics(&self, wanted: &[Metric]) -> Vec<MetricValue> {
        let mut out = Vec::new();
        for &m in wanted {
            match m {
                Metric::Acc => {
                    out.push(MetricValue::mean(m, &self.acc));
                    if !self.bias {
                        out.extend(self.categories(m));
                    }
                }
                Metric::AccNorm => out.push(MetricValue::mean(m, &self.acc_norm)),
                Metric::PctStereotype => {
                    out.push(MetricValue::mean(m, &self.stereo));
                    out.extend(self.categories(m));
                }
                Metric::LikelihoodDiff => out.push(MetricValue::mean(m, &self.diff)),
                other => unreachable!("{} is not a choice metric (the header parser checks)", other.name()),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(loglik: f64) -> Scored {
        Scored { loglik, greedy: false }
    }

    #[test]
    fn acc_norm_divides_by_characters() {
        // Sums -6, -8; lengths 2 and 8 characters: normed -3, -1 so acc picks 0, acc_norm 1.
        let choices = vec!["ab".to_string(), "abcdefgh".to_string()];
        let o = Outcome::new(vec![s(-6.0), s(-8.0)], &choices);
        assert_eq!((o.pred, o.pred_norm), (0, 1));
        // "été" is 3 characters and 5 bytes: by characters -4/3 = -1.33 loses to -2.6/2 = -1.3;
        // by bytes (-4/5 = -0.8) it would win.
        let choices = vec!["été".to_string(), "ab".to_string()];
        let o = Outcome::new(vec![s(-4.0), s(-2.6)], &choices);
        assert_eq!(o.pred_norm, 1);
        let o = Outcome::new(vec![s(-3.0), s(-3.0)], &choices);
        assert_eq!(o.pred, 0, "ties go to the first");
    }

    #[test]
    fn bias_metrics_count_strict_preferences() {
        let mut t = Tally { bias: true, ..Tally::default() };
        let c = Choice {
            context: String::new(),
            choices: vec!["a".into(), "b".into()],
            answer: 0,
            category: Some("x".into()),
        };
        for (a, b) in [(-1.0, -2.0), (-2.0, -1.0), (-1.0, -1.0), (-1.0, -4.0)] {
            t.add(&c, &Outcome::new(vec![s(a), s(b)], &c.choices));
        }
        let m = t.metrics(&[Metric::PctStereotype, Metric::LikelihoodDiff]);
        assert_eq!(m[0].value, 0.5);
        assert_eq!(m[1].name, "pct_stereotype/x");
        assert_eq!(m[2].value, (1.0 + 1.0 + 0.0 + 3.0) / 4.0);
    }
}
