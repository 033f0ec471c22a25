//! Running a task: which items (`--limit`), then the runner for its kind, timed.

use super::efficiency::Memory;
use super::error::{EvalError, Result};
use super::item::Item;
use super::judge::Judge as JudgeModel;
use super::reader::Task;
use super::result::TaskResult;
use super::sample;
use super::task::Kind;
use super::{choice, efficiency, generation, language};
use lamina_model::chat::ChatTemplate;
use lamina_model::{BpeTokenizer, CausalLm};
use std::time::Instant;

/// Settings shared by every task of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Few-shot examples per item (tasks whose kind has none ignore it, with a note).
    pub num_fewshot: usize,
    /// Seeds `--limit`'s subset, the few-shot draws and sampled decoding.
    pub seed: u64,
    /// Evaluate this many items of each task (a seeded subset, in file order).
    pub limit: Option<usize>,
    /// The context window in tokens.
    pub ctx: usize,
    /// Keep per-item details in the result.
    pub samples: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { num_fewshot: 0, seed: 0, limit: None, ctx: 2048, samples: false }
    }
}

/// The model under evaluation and what it needs to read prompts.
pub struct Env<'a> {
    pub model: &'a dyn CausalLm,
    pub tokenizer: &'a BpeTokenizer,
    pub template: &'a ChatTemplate,
    pub options: RunOptions,
    /// The base model a KL task compares with, and its tokenizer.
    pub base: Option<&'a dyn CausalLm>,
    pub base_tokenizer: Option<&'a BpeTokenizer>,
    /// Peak memory of the process (the efficiency task reports it where given).
    pub memory: Option<&'a dyn Fn() -> Memory>,
    /// A model that judges toxicity beside the word list (toxicity tasks).
    pub judge: Option<&'a JudgeModel<'a>>,
}

impl<'a> Env<'a> {
    pub fn new(
        model: &'a dyn CausalLm,
        tokenizer: &'a BpeTokenizer,
        template: &'a ChatTemplate,
        options: RunOptions,
    ) -> Env<'a> {
        Env { model, tokenizer, template, options, base: None, base_tokenizer: None, memory: None, judge: None }
    }
}

/// Progress of a task: items done of the total, and a running figure to show.
#[derive(Clone, Debug)]
pub struct Progress<'a> {
    pub task: &'a str,
    pub done: usize,
    pub total: usize,
    pub message: String,
}

/// Run `task` on `env`'s model. `progress` is called once before the first item and after each.
pub fn run_task(env: &Env<'_>, task: &Task, progress: &mut dyn FnMut(&Progress<'_>)) -> Result<TaskResult> {
    if env.options.limit == Some(0) {
        return Err(EvalError::Config("--limit must be at least 1".into()));
    }
    let picked = sample::subset(task.items.len(), env.options.limit, env.options.seed, &task.spec.name);
    let items: Vec<&Item> = picked.iter().map(|&i| &task.items[i]).collect();
    let start = Instant::now();
    let name = &task.spec.name;
    let mut by_count = |done: usize, total: usize, message: String| {
        progress(&Progress { task: name, done, total, message });
    };
    let mut by_item = |done: usize, message: String| by_count(done, items.len(), message);
    if !task.spec.kind.reads_text() {
        by_item(0, String::new());
    }
    let mut result = match task.spec.kind {
        Kind::MultipleChoice | Kind::MinimalPairs | Kind::BiasPairs => choice::run(env, task, &items, &mut by_item)?,
        Kind::Generation | Kind::Refusal | Kind::Toxicity | Kind::Privacy => {
            generation::run(env, task, &items, &mut by_item)?
        }
        Kind::Efficiency => efficiency::run(env, task, &items, &mut by_item)?,
        Kind::Perplexity => language::run_perplexity(env, task, &mut by_count)?,
        Kind::Kl => language::run_kl(env, task, &mut by_count)?,
        Kind::Group => return Err(EvalError::Config(format!("{name}: a group is expanded, not run"))),
    };
    result.task = task.spec.name.clone();
    result.kind = task.spec.kind.name().into();
    result.file = task.path.display().to_string();
    if !task.spec.kind.reads_text() {
        result.n = items.len();
    } else {
        result.n = result.metrics.first().map_or(0, |m| m.n);
    }
    result.seconds = start.elapsed().as_secs_f64();
    if env.options.limit.is_some_and(|k| k < task.items.len()) {
        result.notes.push(format!(
            "--limit: {} of {} items (seed {})",
            items.len(),
            task.items.len(),
            env.options.seed
        ));
    }
    Ok(result)
}

/// The few-shot examples for item `index`: `k` drawn from the task's pool, or an error
/// when the pool is too small.
pub fn shots(task: &Task, k: usize, seed: u64, index: usize) -> Result<Vec<&Item>> {
    if k > task.fewshot.len() {
        return Err(EvalError::Config(format!(
            "{}: --num-fewshot {k}, but the task has {} few-shot examples (items with \"split\": \"train\" or a `fewshot_data` file)",
            task.spec.name,
            task.fewshot.len()
        )));
    }
    Ok(sample::fewshot(task.fewshot.len(), k, seed, &task.spec.name, index)
        .into_iter()
        .map(|i| &task.fewshot[i])
        .collect())
}
