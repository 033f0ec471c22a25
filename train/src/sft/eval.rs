//! Exact-match evaluation: for each test example, greedy-generate an answer to its prompt
//! (the turns before its last assistant turn) and compare it, trimmed, with that turn.
//! It takes any `&dyn CausalLm`, so a model with adapters is evaluated the same way.

use super::encode::Encoder;
use super::jsonl::Record;
use super::report::{SftError, SkipReason};
use lamina_model::generation::{generate, StopReason};
use lamina_model::sampling::{Sampler, SamplerConfig};
use lamina_model::CausalLm;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    /// Tokens generated at most per answer.
    pub max_new_tokens: usize,
    /// Evaluate only the first this many (usable) examples.
    pub limit: Option<usize>,
    /// KV cache size: prompt plus answer must fit.
    pub ctx: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions { max_new_tokens: 32, limit: None, ctx: 2048 }
    }
}

/// One answered example.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalRecord {
    /// Line in the data file.
    pub line: usize,
    pub question: String,
    pub reference: String,
    /// The generated text (special tokens left out), as generated: untrimmed.
    pub output: String,
    pub correct: bool,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Generation ended on an end-of-generation token (not on the token limit).
    pub finished: bool,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default)]
pub struct EvalReport {
    pub records: Vec<EvalRecord>,
    /// Examples that could not be evaluated, by reason (with their lines).
    pub skipped: BTreeMap<SkipReason, Vec<usize>>,
    pub seconds: f64,
}

impl EvalReport {
    pub fn correct(&self) -> usize {
        self.records.iter().filter(|r| r.correct).count()
    }

    /// Fraction correct (0 when nothing was evaluated).
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.records.len().max(1) as f64
    }

    pub fn generated_tokens(&self) -> usize {
        self.records.iter().map(|r| r.generated_tokens).sum()
    }

    pub fn prompt_tokens(&self) -> usize {
        self.records.iter().map(|r| r.prompt_tokens).sum()
    }

    /// Generated tokens per second of generation (prefill included).
    pub fn tokens_per_s(&self) -> f64 {
        let secs: f64 = self.records.iter().map(|r| r.seconds).sum();
        self.generated_tokens() as f64 / secs.max(1e-9)
    }

    pub fn mistakes(&self) -> impl Iterator<Item = &EvalRecord> {
        self.records.iter().filter(|r| !r.correct)
    }
}

/// Whether `output` answers `reference` exactly (surrounding whitespace ignored).
pub fn exact_match(output: &str, reference: &str) -> bool {
    output.trim() == reference.trim()
}

/// Evaluate `model` on `records` (prompts built by `encoder`, so exactly as training lays
/// them out). `on_record` sees each result as it is made (progress bars).
pub fn evaluate(
    model: &dyn CausalLm,
    encoder: &Encoder,
    records: &[Record],
    options: &EvalOptions,
    mut on_record: impl FnMut(&EvalRecord),
) -> Result<EvalReport, SftError> {
    if options.max_new_tokens == 0 {
        return Err(SftError::Config("max_new_tokens must be at least 1".into()));
    }
    let tokenizer = encoder.tokenizer();
    let mut cache = model.new_cache(options.ctx)?;
    let mut report = EvalReport::default();
    let start = Instant::now();
    for r in records {
        if options.limit.is_some_and(|n| report.records.len() >= n) {
            break;
        }
        let prompt = match encoder.eval_prompt(&r.example) {
            Ok(p) => p,
            Err((reason, _)) => {
                report.skipped.entry(reason).or_default().push(r.line);
                continue;
            }
        };
        if prompt.ids.len() >= cache.capacity() {
            report.skipped.entry(SkipReason::PromptTooLong).or_default().push(r.line);
            continue;
        }
        cache.clear();
        let mut sampler = Sampler::new(SamplerConfig::greedy())?;
        let t0 = Instant::now();
        let mut answer = Vec::new();
        let (generated, reason, _) =
            generate(model, &mut cache, &prompt.ids, options.max_new_tokens, &mut sampler, &mut Vec::new(), |id| {
                if tokenizer.is_end_of_generation(id) {
                    return Ok(false);
                }
                answer.push(id);
                Ok(true)
            })?;
        let output = tokenizer.decode(&answer, true)?;
        let record = EvalRecord {
            line: r.line,
            correct: exact_match(&output, &prompt.reference),
            question: prompt.question,
            reference: prompt.reference,
            output,
            prompt_tokens: prompt.ids.len(),
            generated_tokens: generated.len(),
            finished: reason == StopReason::Stopped,
            seconds: t0.elapsed().as_secs_f64(),
        };
        on_record(&record);
        report.records.push(record);
    }
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::exact_match;

    #[test]
    fn exact_match_ignores_surrounding_whitespace_only() {
        assert!(exact_match(" 2021-03-14\n", "2021-03-14"));
        assert!(!exact_match("2021-03-14.", "2021-03-14"));
        assert!(!exact_match("2021 -03-14", "2021-03-14"));
        assert!(!exact_match("", "x"));
    }
}
