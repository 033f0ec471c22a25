//! Evaluating a language model on tasks: task files users can write (`task`, `item`,
//! `reader`), prompts as lm-evaluation-harness lays them out (`prompt`, `sample` for the
//! seeded few-shot draws and `--limit` subsets), log-likelihood scoring with the harness's
//! token boundary (`loglik`), the runners for each kind of task (`choice`), and the results
//! with their standard errors (`stats`, `result`). `run` ties them together.

pub mod choice;
pub mod error;
pub mod item;
pub mod loglik;
pub mod metric;
pub mod prompt;
pub mod reader;
pub mod result;
pub mod run;
pub mod sample;
pub mod stats;
pub mod task;

pub use error::{EvalError, Result};
pub use metric::{Goal, Metric};
pub use reader::{expand, read_task, resolve, Task};
pub use result::{MetricValue, Report, TaskResult};
pub use run::{run_task, Env, Progress, RunOptions};
pub use task::{Kind, PromptFormat, TaskSpec};
