//! `lamina eval`: evaluate a model on task files (`--tasks`: language ability, task
//! performance, the safety slice, efficiency) into one report (a table, JSON and an HTML
//! page with charts: `eval_tasks`, `eval_report`); `lamina eval compare` puts reports side
//! by side (`eval_compare`); `--data FILE` is the exact-match accuracy on a fine-tuning test
//! set it has always been (`eval_exact`).

use crate::llm::{CliResult, ModelArgs};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: Option<EvalCommand>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Tasks to run, by name (a file `data/eval/NAME.jsonl`) or path, comma-separated; a
    /// group (such as `safety` or `all`) runs its members.
    #[arg(long, value_delimiter = ',', value_name = "LIST", conflicts_with = "data")]
    pub tasks: Vec<String>,
    /// Exact match on a fine-tuning test set instead: JSONL of `messages` (the last
    /// assistant turn is the answer) or `prompt`/`completion`.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Evaluate N items of each task (a subset fixed by --seed; with --data, the first N).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Few-shot examples before each item, drawn with --seed from the task's train split.
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub num_fewshot: usize,
    /// Seed of --limit's subset, the few-shot draws and sampled decoding.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report (or, with --data, the result) as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Where to write the report: DIR/LABEL.json and DIR/LABEL.html.
    #[arg(long, short = 'o', value_name = "DIR", default_value = "eval-report")]
    pub out: PathBuf,
    /// The run's name in reports and comparisons (default: the model file's name, with the adapter's).
    #[arg(long)]
    pub label: Option<String>,
    /// Keep every item's prompt, answer and scores in the JSON report.
    #[arg(long)]
    pub samples: bool,
    /// Also show the per-category rows (`acc/npi_licensing`, ...) in the table.
    #[arg(long)]
    pub breakdown: bool,
    /// The base model a `kl` task measures the divergence from.
    #[arg(long, value_name = "PATH")]
    pub kl_base: Option<PathBuf>,
    /// A model that judges toxicity beside the word list (asked whether each answer is toxic: Yes or No).
    #[arg(long, value_name = "PATH")]
    pub judge: Option<PathBuf>,
    /// With --data: tokens to generate at most per answer.
    #[arg(long, short = 'n', default_value_t = 32)]
    pub max_tokens: usize,
    /// With --data: how many mistakes to show in the table.
    #[arg(long, value_name = "K", default_value_t = 10)]
    pub show: usize,
    /// With --data: lay out prompt/completion examples as raw text instead of the chat template.
    #[arg(long)]
    pub raw: bool,
    /// With --data: stop at the first bad line of the data file instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Put reports side by side, with the differences from the first highlighted.
    Compare(crate::eval_compare::CompareArgs),
}

pub fn run(args: EvalArgs) -> CliResult {
    if let Some(EvalCommand::Compare(c)) = args.command {
        return crate::eval_compare::run(c);
    }
    if let Some(data) = args.data.clone() {
        return crate::eval_exact::run(args, &data);
    }
    crate::eval_tasks::run(args)
}
