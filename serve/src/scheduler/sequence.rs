//! One request in a slot: its prompt (fed to the cache in chunks), its sampler and
//! penalties, and the text it has released so far (stop strings held back, partial UTF-8
//! characters completed first).

use super::job::{Event, Finish, Job, TokenLogprob, Usage};
use crate::engine::Engine;
use crate::metrics::Metrics;
use lamina_model::sampling::Sampler;
use lamina_model::stop::StopText;
use lamina_model::TokenStream;
use std::collections::HashMap;
use std::time::Instant;

pub struct Sequence<'e> {
    pub job: Job,
    pub prompt: Vec<u32>,
    /// Prompt tokens already in the cache (reused from a previous request or prefilled).
    pub fed: usize,
    /// The token sampled last and not yet run (decode input).
    input: Vec<u32>,
    /// How many tokens this request may generate (max_tokens, or what the context holds).
    limit: usize,
    sampler: Sampler,
    generated: Vec<u32>,
    counts: HashMap<u32, u32>,
    /// Taken at the end, to release a partial character.
    text: Option<TokenStream<'e>>,
    stop: StopText,
    last_token_at: Option<Instant>,
    /// Admission order: earlier sequences get the prefill budget first.
    pub order: u64,
}

/// What happened to a sequence after a step.
pub enum Progress {
    Running,
    Finished,
}

impl<'e> Sequence<'e> {
    /// `fed`: prompt tokens the slot's cache already holds.
    pub fn new(
        engine: &'e Engine,
        job: Job,
        prompt: Vec<u32>,
        fed: usize,
        limit: usize,
        sampler: Sampler,
        order: u64,
    ) -> Self {
        let stop = StopText::new(job.request.params.stop.clone());
        Sequence {
            prompt,
            fed,
            input: Vec::new(),
            limit,
            sampler,
            generated: Vec::new(),
            counts: HashMap::new(),
            text: Some(engine.tokenizer.stream(true)),
            stop,
            last_token_at: None,
            order,
            job,
        }
    }

    pub fn prefilling(&self) -> bool {
        self.fed < self.prompt.len()
    }

    /// The tokens to run this step: up to `budget` prompt tokens while prefilling (0 means
    /// none this step), else the last sampled token.
    pub fn next_tokens(&self, budget: usize) -> &[u32] {
        if self.prefilling() {
            &self.prompt[self.fed..self.prompt.len().min(self.fed + budget)]
        } else {
            &self.input
        }
    }

    /// The prompt and the tokens generated so far (the cache holds all but the last).
    pub fn history(&self) -> impl Iterator<Item = u32> + '_ {
        self.prompt.iter().chain(&self.generated).copied()
    }

    /// The client has gone (its receiver is dropped).
    pub fn abandoned(&self) -> bool {
        self.job.events.is_closed()
    }

    pub fn usage(&self) -> Usage {
        Usage { prompt_tokens: self.prompt.len(), completion_tokens: self.generated.len() }
    }

    /// The step ran `ran` tokens; `logits` is this sequence's row when that completed the
    /// prompt or was a decode step. `room`: positions left in the cache.
    pub fn advance(&mut self, engine: &Engine, ran: usize, logits: &[f32], room: usize, metrics: &Metrics) -> Progress {
        if self.prefilling() {
            self.fed += ran;
            if self.prefilling() {
                return Progress::Running;
            }
        }
        let logprobs = self.job.request.params.logprobs;
        let row = self.penalised(logits);
        let token = match self.sampler.sample(&row, &[]) {
            Ok(t) => t,
            Err(e) => return self.fail(format!("sampling failed: {e}")),
        };
        let now = Instant::now();
        match self.last_token_at {
            None => metrics.observe_ttft(now - self.job.received),
            Some(t) => metrics.observe_itl(now - t),
        }
        self.last_token_at = Some(now);
        metrics.add_generated(1);
        self.generated.push(token);
        *self.counts.entry(token).or_default() += 1;
        let lp: Vec<TokenLogprob> = logprobs.map(|n| engine.logprobs(logits, token, n)).into_iter().collect();
        if !self.job.request.params.ignore_eos && engine.tokenizer.is_end_of_generation(token) {
            self.send_text(String::new(), lp);
            return self.finish(Finish::Stop, true);
        }
        let piece = self.text.as_mut().and_then(|s| s.push(token).ok().flatten()).unwrap_or_default();
        let (shown, stopped) = self.stop.push(&piece);
        self.send_text(shown, lp);
        if stopped {
            return self.finish(Finish::Stop, false);
        }
        if self.generated.len() >= self.limit || room == 0 {
            return self.finish(Finish::Length, true);
        }
        self.input = vec![token];
        Progress::Running
    }

    /// The logits with OpenAI's frequency and presence penalties applied.
    fn penalised<'l>(&self, logits: &'l [f32]) -> std::borrow::Cow<'l, [f32]> {
        let p = &self.job.request.params;
        if (p.frequency_penalty == 0.0 && p.presence_penalty == 0.0) || self.counts.is_empty() {
            return logits.into();
        }
        let mut row = logits.to_vec();
        for (&t, &n) in &self.counts {
            row[t as usize] -= p.frequency_penalty * n as f32 + p.presence_penalty;
        }
        row.into()
    }

    fn send_text(&self, text: String, logprobs: Vec<TokenLogprob>) {
        if !text.is_empty() || !logprobs.is_empty() {
            let _ = self.job.events.send(Event::Delta { text, logprobs });
        }
    }

    /// Report the end, after releasing the text held back if `flush` (not when a stop
    /// string ended it: what follows the stop string is dropped).
    fn finish(&mut self, finish: Finish, flush: bool) -> Progress {
        if flush {
            let tail = self.text.take().and_then(|s| s.finish()).unwrap_or_default();
            let (mut shown, _) = self.stop.push(&tail);
            shown.push_str(&self.stop.finish());
            self.send_text(shown, Vec::new());
        }
        let _ = self.job.events.send(Event::Done { finish, usage: self.usage() });
        Progress::Finished
    }

    /// The request's own work failed: a 500 for it alone.
    pub fn fail(&mut self, message: String) -> Progress {
        let _ = self.job.events.send(Event::Failed(crate::error::ApiError::internal(message)));
        Progress::Finished
    }
}
