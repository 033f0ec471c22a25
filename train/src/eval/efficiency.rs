//! Efficiency: for each prompt, a fixed number of tokens generated greedily (past any
//! end-of-generation token, so every run decodes the same length), timed token by token.
//! Reported: time to first token (the prefill pass and the first sampling; mean over
//! prompts), decode latency per token at the median and the 95th percentile (over every
//! gap between consecutive tokens), prefill and decode throughput (tokens over the time
//! of those passes), and the process's peak resident memory and engine heap, from the
//! caller's probe. `warmup` untimed runs of the first prompt go first.

use super::decode;
use super::error::Result;
use super::generation::{decode_options, encoder, item_prompt};
use super::item::Item;
use super::metric::Metric;
use super::reader::Task;
use super::result::{MetricValue, TaskResult};
use super::run::Env;
use lamina_model::kl::percentile;

/// Peak memory of the process so far, where the platform and allocator can say.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    pub rss_mib: Option<f64>,
    pub heap_mib: Option<f64>,
}

/// Timings gathered over the prompts.
#[derive(Default)]
struct Timings {
    ttft_ms: Vec<f64>,
    gaps_ms: Vec<f64>,
    prompt_tokens: usize,
    prefill_s: f64,
}

pub fn run(env: &Env<'_>, task: &Task, items: &[&Item], report: &mut dyn FnMut(usize, String)) -> Result<TaskResult> {
    let encoder = encoder(env)?;
    let mut cache = env.model.new_cache(env.options.ctx)?;
    let prompts: Vec<Vec<u32>> = items.iter().map(|i| item_prompt(env, task, &encoder, i)).collect::<Result<_>>()?;
    let options = decode_options(task, env.options.seed, 0, true);
    for _ in 0..task.spec.warmup {
        decode::answer(env.model, env.tokenizer, &mut cache, &prompts[0], &options)?;
    }
    let mut t = Timings::default();
    for (i, ids) in prompts.iter().enumerate() {
        let a = decode::answer(env.model, env.tokenizer, &mut cache, ids, &options)?;
        t.ttft_ms.push(1e3 * a.ttft_s);
        t.gaps_ms.extend(a.token_gaps_s.iter().map(|s| 1e3 * s));
        t.prompt_tokens += a.prompt_tokens;
        t.prefill_s += a.prefill_s;
        report(i + 1, format!("ttft {:.0} ms", t.ttft_ms.iter().sum::<f64>() / t.ttft_ms.len() as f64));
    }
    let memory = env.memory.map(|probe| probe()).unwrap_or_default();
    let mut result = TaskResult::default();
    let mut sorted = t.gaps_ms.clone();
    sorted.sort_by(f64::total_cmp);
    for &m in &task.spec.metrics {
        let value = match m {
            Metric::TtftMs => Some(MetricValue::mean(m, &t.ttft_ms)),
            Metric::TokenMsP50 | Metric::TokenMsP95 if sorted.is_empty() => None,
            Metric::TokenMsP50 => Some(MetricValue::plain(m, percentile(&sorted, 0.5), sorted.len())),
            Metric::TokenMsP95 => Some(MetricValue::plain(m, percentile(&sorted, 0.95), sorted.len())),
            Metric::PrefillTokS => {
                Some(MetricValue::plain(m, t.prompt_tokens as f64 / t.prefill_s.max(1e-12), t.prompt_tokens))
            }
            Metric::DecodeTokS if sorted.is_empty() => None,
            Metric::DecodeTokS => Some(MetricValue::plain(
                m,
                1e3 * sorted.len() as f64 / sorted.iter().sum::<f64>().max(1e-12),
                sorted.len(),
            )),
            Metric::PeakRssMib => memory.rss_mib.map(|v| MetricValue::plain(m, v, 1)),
            Metric::PeakHeapMib => memory.heap_mib.map(|v| MetricValue::plain(m, v, 1)),
            other => unreachable!("{} is not an efficiency metric", other.name()),
        };
        match value {
            Some(v) => result.metrics.push(v),
            None => result.notes.push(format!("{}: not measured (one token per prompt, or no memory probe)", m.name())),
        }
    }
    result.notes.push(format!(
        "{} on {:?} with {} thread(s); {} tokens per prompt after {} warm-up run(s); peaks are of the whole process",
        task.spec.name,
        env.model.device(),
        lamina_tensor::threads(),
        task.spec.decoding.max_tokens,
        task.spec.warmup
    ));
    Ok(result)
}
