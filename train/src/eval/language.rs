//! Tasks over a text rather than items: perplexity as llama-perplexity measures it
//! (`lamina_model::perplexity`), and the KL divergence from a base model as
//! llama-perplexity --kl-divergence measures it (`lamina_model::kl`), with the model's
//! perplexity and its ratio to the base's. The first token of each chunk is BOS where the
//! tokenizer adds one, as in `lamina perplexity`.

use super::error::{EvalError, Result};
use super::metric::Metric;
use super::reader::Task;
use super::result::{MetricValue, TaskResult};
use super::run::Env;
use lamina_model::kl::{kl_divergence, tokenize_for_both, Base, Estimate, KlOptions};
use lamina_model::perplexity::perplexity;

fn text(task: &Task) -> Result<String> {
    let path = task.spec.text.as_ref().expect("the header parser requires `text`");
    super::reader::read_text(path)
}

fn chunk_count(tokens: usize, task: &Task) -> usize {
    let available = tokens / task.spec.n_ctx;
    task.spec.chunks.map_or(available, |c| c.min(available))
}

pub fn run_perplexity(env: &Env<'_>, task: &Task, report: &mut dyn FnMut(usize, usize, String)) -> Result<TaskResult> {
    let tokens = env.tokenizer.encode(&text(task)?, false, false)?;
    let bos = if env.tokenizer.adds_bos() { env.tokenizer.bos_id() } else { None };
    let total = chunk_count(tokens.len(), task);
    report(0, total, String::new());
    let r = perplexity(env.model, &tokens, task.spec.n_ctx, task.spec.chunks, bos, |done, total, ppl| {
        report(done, total, format!("ppl {ppl:.3}"))
    })?;
    let mut result = TaskResult::default();
    for &m in &task.spec.metrics {
        if m == Metric::Perplexity {
            result.metrics.push(MetricValue::plain(m, r.perplexity, r.tokens_scored));
        }
    }
    result.notes.push(format!("{} chunks of {} tokens, {} tokens scored", r.chunk_nll.len(), r.n_ctx, r.tokens_scored));
    Ok(result)
}

pub fn run_kl(env: &Env<'_>, task: &Task, report: &mut dyn FnMut(usize, usize, String)) -> Result<TaskResult> {
    let (Some(base), Some(base_tokenizer)) = (env.base, env.base_tokenizer) else {
        return Err(EvalError::Config(format!("{}: a KL task needs a base model (--kl-base)", task.spec.name)));
    };
    let tokens = tokenize_for_both(base_tokenizer, env.tokenizer, &text(task)?)?;
    let bos = if env.tokenizer.adds_bos() { env.tokenizer.bos_id() } else { None };
    let options = KlOptions { n_ctx: task.spec.n_ctx, max_chunks: task.spec.chunks, bos };
    report(0, chunk_count(tokens.len(), task), String::new());
    let r = kl_divergence(Base::Model(base), env.model, &tokens, options, |p| {
        report(p.done, p.total, format!("mean KLD {:.4}", p.mean_kld))
    })?;
    let estimate =
        |m: Metric, e: Estimate| MetricValue { stderr: Some(e.err), ..MetricValue::plain(m, e.value, r.tokens_scored) };
    let mut result = TaskResult::default();
    for &m in &task.spec.metrics {
        result.metrics.push(match m {
            Metric::Perplexity => estimate(m, r.ppl),
            Metric::MeanKld => estimate(m, r.kld.mean),
            Metric::PplRatio => estimate(m, r.ppl_ratio),
            Metric::SameTop => estimate(m, r.same_top),
            other => unreachable!("{} is not a KL metric", other.name()),
        });
    }
    result.notes.push(format!("{} chunks of {} tokens, {} tokens scored", r.chunks, r.n_ctx, r.tokens_scored));
    Ok(result)
}
