//! Tasks scored on generated answers: reference answers (exact match, contains, F1,
//! recall, ROUGE-L, chrF), refusal of harmful requests and of harmless look-alikes,
//! toxicity by a word list, and privacy leaks. Prompts in the chat format go through the
//! fine-tuning encoder (`sft::Encoder::eval_prompt`), so an adapter is evaluated on exactly
//! the tokens it was trained to answer after.

use super::decode::{self, Answer, DecodeOptions};
use super::error::{EvalError, Result};
use super::item::{Generate, Item, Turns};
use super::loglik::Scorer;
use super::metric::Metric;
use super::prompt::{self, Shot};
use super::reader::Task;
use super::result::{MetricValue, TaskResult};
use super::run::{shots, Env};
use super::scorers::privacy::{self, Patterns};
use super::scorers::refusal::is_refusal;
use super::scorers::text::{self, best};
use super::scorers::toxicity::WordList;
use super::scorers::{chrf, rouge};
use super::stats::indicator;
use super::task::{Kind, PromptFormat};
use crate::sft::{EncodeOptions, Encoder, Example, PromptFormat as SftFormat};
use lamina_model::chat::Message;
use lamina_model::sampling::SamplerConfig;
use serde_json::json;
use std::collections::BTreeMap;

/// How a kind's answers are judged.
enum Scoring {
    References,
    Refusal,
    Toxicity { list: WordList, threshold: u8 },
    Privacy(Patterns),
}

impl Scoring {
    fn for_task(task: &Task) -> Result<Scoring> {
        let shown = task.path.display().to_string();
        Ok(match task.spec.kind {
            Kind::Toxicity => {
                let path = task.spec.wordlist.clone().ok_or_else(|| {
                    EvalError::task(
                        &shown,
                        None,
                        "a toxicity task needs `wordlist`: a file of `word<TAB>severity` lines",
                    )
                })?;
                let text = super::reader::read_text(&path)?;
                let list = WordList::parse(&text).map_err(|m| EvalError::task(&path.display().to_string(), None, m))?;
                Scoring::Toxicity { list, threshold: task.spec.threshold }
            }
            Kind::Privacy if task.spec.patterns.is_empty() => Scoring::Privacy(Patterns::default_set()),
            Kind::Privacy => {
                Scoring::Privacy(Patterns::new(&task.spec.patterns).map_err(|m| EvalError::task(&shown, None, m))?)
            }
            Kind::Refusal => Scoring::Refusal,
            _ => Scoring::References,
        })
    }

    /// The per-item values of the metrics this answer bears on, and details for the sample.
    fn score(&self, g: &Generate, answer: &str, wanted: &[Metric]) -> (Vec<(Metric, f64)>, serde_json::Value) {
        match self {
            Scoring::References => {
                let values = wanted.iter().map(|&m| (m, reference_score(m, answer, &g.references))).collect();
                (values, json!({}))
            }
            Scoring::Refusal => {
                let refused = indicator(is_refusal(answer));
                let m = if g.flag == Some(true) { Metric::RefusalRate } else { Metric::OverRefusalRate };
                (vec![(m, refused)], json!({"refused": refused == 1.0}))
            }
            Scoring::Toxicity { list, threshold } => {
                let matches = list.matches(answer);
                let severity = matches.iter().map(|m| m.1).max().unwrap_or(0);
                let toxic = indicator(severity >= *threshold);
                let by_kind =
                    if g.flag == Some(true) { Metric::ToxicRateProvocative } else { Metric::ToxicRateNeutral };
                let words: Vec<&str> = matches.iter().map(|m| m.0.as_str()).collect();
                (vec![(Metric::ToxicRate, toxic), (by_kind, toxic)], json!({"severity": severity, "matched": words}))
            }
            Scoring::Privacy(patterns) => {
                let found = patterns.found(answer);
                let mut values = vec![(Metric::PiiRate, indicator(!found.is_empty()))];
                if let Some(secret) = &g.secret {
                    values.push((Metric::LeakRate, indicator(privacy::leaks(answer, secret))));
                }
                (values, json!({"found": found}))
            }
        }
    }
}

/// An answer's score on one reference metric (its best over the references).
pub fn reference_score(metric: Metric, answer: &str, references: &[String]) -> f64 {
    match metric {
        Metric::ExactMatch => best(answer, references, text::exact_match),
        Metric::ExactMatchNorm => best(answer, references, text::exact_match_norm),
        Metric::Contains => best(answer, references, text::contains),
        Metric::F1 => best(answer, references, text::f1),
        Metric::Recall => best(answer, references, text::recall),
        Metric::RougeL => best(answer, references, rouge::rouge_l),
        Metric::Chrf => best(answer, references, chrf::chrf),
        other => unreachable!("{} is not a reference metric", other.name()),
    }
}

/// The prompt's text (the item's context first, where it has one).
fn item_text(g: &Generate) -> Option<String> {
    let Turns::Text(t) = &g.prompt else { return None };
    Some(match &g.context {
        Some(c) => format!("{c}\n\n{t}"),
        None => t.clone(),
    })
}

/// The prompt of `item` as token ids, after its few-shot examples.
fn prompt_ids(env: &Env<'_>, task: &Task, encoder: &Encoder<'_>, item: &Item, examples: &[&Item]) -> Result<Vec<u32>> {
    let g = item.generate();
    let shown = task.path.display().to_string();
    let example_texts: Vec<String> = examples.iter().map(|e| item_text(e.generate()).unwrap_or_default()).collect();
    let shot_list: Vec<Shot<'_>> = examples
        .iter()
        .zip(&example_texts)
        .map(|(e, t)| Shot { text: t, answer: e.generate().references.first().map_or("", String::as_str) })
        .collect();
    match task.spec.format {
        PromptFormat::Raw => {
            let text = item_text(g).ok_or_else(|| {
                EvalError::task(
                    &shown,
                    Some(item.line),
                    "a `messages` example needs the chat format (\"format\": \"chat\")",
                )
            })?;
            let p = prompt::build(&task.spec, &text, &shot_list, env.template)?;
            Ok(env.tokenizer.encode(&p.text, false, false)?)
        }
        PromptFormat::Chat => {
            let turns = match (&g.prompt, item_text(g)) {
                (Turns::Chat(turns), _) => turns.clone(),
                (_, Some(text)) => vec![Message::new("user", &text)],
                (_, None) => unreachable!("a prompt is text or turns"),
            };
            let mut messages = prompt::chat_turns(&task.spec, &shot_list, &turns);
            // eval_prompt lays out the turns before the last assistant turn, exactly as
            // fine-tuning does; the answer itself is not part of the prompt.
            messages.push(Message::new("assistant", g.references.first().map_or("(answer)", String::as_str)));
            let prompt = encoder
                .eval_prompt(&Example::Chat(messages))
                .map_err(|(_, m)| EvalError::task(&shown, Some(item.line), m))?;
            Ok(prompt.ids)
        }
    }
}

/// Decoding settings for one item: greedy, or sampled with a seed of its own.
pub fn decode_options(task: &Task, seed: u64, line: usize, ignore_eos: bool) -> DecodeOptions {
    let d = &task.spec.decoding;
    let sampler = if d.temperature == 0.0 {
        SamplerConfig::greedy()
    } else {
        SamplerConfig {
            temperature: d.temperature,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: seed ^ (line as u64).rotate_left(20),
            ..SamplerConfig::greedy()
        }
    };
    DecodeOptions { max_tokens: d.max_tokens, stop: d.stop.clone(), sampler, ignore_eos }
}

/// The encoder that lays out chat prompts as fine-tuning does.
pub fn encoder<'a>(env: &'a Env<'_>) -> Result<Encoder<'a>> {
    let options = EncodeOptions { max_len: env.options.ctx, prompt_format: SftFormat::Template };
    Ok(Encoder::new(env.tokenizer, Some(env.template), options)?)
}

/// The prompt ids of `item` with its few-shot examples (generation tasks only take them).
pub fn item_prompt(env: &Env<'_>, task: &Task, encoder: &Encoder<'_>, item: &Item) -> Result<Vec<u32>> {
    let k = if task.spec.kind == Kind::Generation { env.options.num_fewshot } else { 0 };
    let examples = shots(task, k, env.options.seed, item.line)?;
    prompt_ids(env, task, encoder, item, &examples)
}

/// Run a generation, refusal, toxicity or privacy task over `items`.
pub fn run(env: &Env<'_>, task: &Task, items: &[&Item], report: &mut dyn FnMut(usize, String)) -> Result<TaskResult> {
    let scoring = Scoring::for_task(task)?;
    let encoder = encoder(env)?;
    let wants_judge = task.spec.kind == Kind::Toxicity && task.spec.metrics.contains(&Metric::ToxicRateJudge);
    let mut judge_model = match env.judge.filter(|_| wants_judge) {
        Some(j) => Some((j, Scorer::new(j.model, env.options.ctx)?)),
        None => None,
    };
    let mut cache = env.model.new_cache(env.options.ctx)?;
    let mut values: BTreeMap<Metric, Vec<f64>> = BTreeMap::new();
    let mut by_category: BTreeMap<(Metric, String), Vec<f64>> = BTreeMap::new();
    let mut result = TaskResult::default();
    for (i, item) in items.iter().enumerate() {
        let ids = item_prompt(env, task, &encoder, item)?;
        let options = decode_options(task, env.options.seed, item.line, false);
        let answer = decode::answer(env.model, env.tokenizer, &mut cache, &ids, &options)?;
        let (mut scores, mut details) = scoring.score(item.generate(), &answer.text, &task.spec.metrics);
        if let Some((j, scorer)) = judge_model.as_mut() {
            let v = j.verdict(scorer, &answer.text)?;
            scores.push((Metric::ToxicRateJudge, indicator(v.toxic)));
            details["judge"] = json!({"toxic": v.toxic, "loglik_yes": v.yes, "loglik_no": v.no});
        }
        for &(m, v) in &scores {
            values.entry(m).or_default().push(v);
            if let Some(cat) = &item.generate().category {
                by_category.entry((m, cat.clone())).or_default().push(v);
            }
        }
        if env.options.samples {
            result.samples.push(sample(item, &answer, &scores, details));
        }
        report(i + 1, running(&values, &task.spec.metrics));
    }
    for &m in &task.spec.metrics {
        match values.get(&m) {
            Some(v) => result.metrics.push(MetricValue::mean(m, v)),
            None if m == Metric::ToxicRateJudge => {
                result.notes.push("toxic_rate_judge: not measured (no judge model: --judge PATH)".into())
            }
            None => result.notes.push(format!("{}: no item bears on it", m.name())),
        }
        for ((_, cat), v) in by_category.range((m, String::new())..).take_while(|((k, _), _)| *k == m) {
            result.metrics.push(MetricValue::mean(m, v).for_category(cat));
        }
    }
    if let Some((j, _)) = &judge_model {
        result.notes.push(format!("toxicity judge: {} (Yes vs No after: {:?})", j.name, super::judge::QUESTION));
    }
    if task.spec.kind != Kind::Generation && env.options.num_fewshot > 0 {
        result.notes.push(format!("--num-fewshot ignored: {} prompts are asked alone", task.spec.kind.name()));
    }
    Ok(result)
}

fn running(values: &BTreeMap<Metric, Vec<f64>>, wanted: &[Metric]) -> String {
    let Some((m, v)) = wanted.iter().find_map(|m| values.get(m).map(|v| (m, v))) else { return String::new() };
    format!("{} {:.3}", m.name(), v.iter().sum::<f64>() / v.len() as f64)
}

fn sample(item: &Item, a: &Answer, scores: &[(Metric, f64)], details: serde_json::Value) -> serde_json::Value {
    let g = item.generate();
    let mut v = json!({
        "line": item.line,
        "prompt": match &g.prompt { Turns::Text(t) => t.clone(), Turns::Chat(turns) => turns.last().map(|m| m.content.clone()).unwrap_or_default() },
        "output": a.text, "references": g.references, "ending": a.ending.name(),
        "prompt_tokens": a.prompt_tokens, "generated_tokens": a.tokens,
        "scores": scores.iter().map(|(m, x)| (m.name().to_string(), json!(x))).collect::<serde_json::Map<_, _>>(),
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (v.as_object_mut(), details) {
        obj.extend(extra);
    }
    v
}
