//! Evaluating a language model on tasks: task files users can write (`task`, `item`,
//! `reader`), prompts as lm-evaluation-harness lays them out (`prompt`, `sample` for the
//! seeded few-shot draws and `--limit` subsets), log-likelihood scoring with the harness's
//! token boundary (`loglik`), generation with stop strings and per-token timing (`decode`),
//! the scorers of generated text (`scorers`), the runners for each kind of task (`choice`,
//! `generation`, `efficiency`, `language`), and the results with their standard errors
//! (`stats`, `result`). `run` ties them together.

pub mod choice;
pub mod decode;
pub mod efficiency;
pub mod error;
pub mod generation;
pub mod item;
pub mod judge;
pub mod language;
pub mod loglik;
pub mod metric;
pub mod prompt;
pub mod reader;
pub mod result;
pub mod run;
pub mod sample;
pub mod scorers;
pub mod stats;
pub mod task;

pub use efficiency::Memory;
pub use error::{EvalError, Result};
pub use judge::Judge as JudgeModel;
pub use metric::{Goal, Metric};
pub use reader::{expand, read_task, resolve, Task};
pub use result::{MetricValue, Report, TaskResult};
pub use run::{run_task, Env, Progress, RunOptions};
pub use task::{Kind, PromptFormat, TaskSpec};
