//! Continuous batching on the thread that owns the model. Up to `parallel` requests hold a
//! slot (a KV cache from a pool allocated at start); every step runs one batched forward
//! pass over each running request's next token and a chunk of the newest prompts
//! (`chunk` tokens per step at most, so a long prompt does not stall everyone's tokens).
//! A request that finishes, fails or loses its client frees its slot before the next step.
//! Embedding requests run one input between steps, so a long list of inputs slows the
//! running generations' tokens instead of stopping them.
//!
//! Faults stay with their request: a step that fails (an error or a caught panic) is
//! rerun one sequence at a time, and only the sequence that fails alone gets a 500.

pub mod job;
mod sequence;

use crate::api::Prompt;
use crate::engine::Engine;
use crate::error::ApiError;
use crate::metrics::Metrics;
use job::{EmbedJob, Embeddings, Event, Job, Work};
use lamina_model::sampling::Sampler;
use lamina_model::{KvCache, LogitsFor, SeqStep};
use sequence::{Progress, Sequence};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct SchedulerOptions {
    /// Slots: requests generating at once.
    pub parallel: usize,
    /// Context per slot, in tokens.
    pub ctx: usize,
    /// Prompt tokens prefilled per step at most, over all new requests.
    pub chunk: usize,
}

struct Slot<'e> {
    cache: KvCache,
    /// The tokens whose keys and values `cache` holds (its first `cache.len()` are valid):
    /// a later request with the same prefix skips recomputing them.
    cached: Vec<u32>,
    seq: Option<Sequence<'e>>,
}

/// An embedding request partly done: its inputs run one per scheduler step.
struct EmbedProgress {
    job: EmbedJob,
    done: Embeddings,
}

/// A request tokenized and checked, waiting for a slot.
struct Ready {
    job: Job,
    prompt: Vec<u32>,
    limit: usize,
    sampler: Sampler,
}

pub struct Scheduler<'e> {
    engine: &'e Engine,
    opts: SchedulerOptions,
    slots: Vec<Slot<'e>>,
    queue: VecDeque<Ready>,
    embeds: VecDeque<EmbedProgress>,
    metrics: Arc<Metrics>,
    /// Set by a shutdown request: stop admitting, cancel what still runs at this time.
    deadline: Option<Instant>,
    admitted: u64,
}

impl<'e> Scheduler<'e> {
    /// Allocates every slot's cache now: the pool's memory is taken once, at start. An
    /// encoder has no slots (it only embeds).
    pub fn new(engine: &'e Engine, opts: SchedulerOptions, metrics: Arc<Metrics>) -> lamina_model::Result<Self> {
        let slots = match engine.decoder() {
            Ok(model) => (0..opts.parallel)
                .map(|_| Ok(Slot { cache: model.new_cache(opts.ctx)?, cached: Vec::new(), seq: None }))
                .collect::<lamina_model::Result<Vec<_>>>()?,
            Err(_) => Vec::new(),
        };
        Ok(Scheduler {
            engine,
            opts,
            slots,
            queue: VecDeque::new(),
            embeds: VecDeque::new(),
            metrics,
            deadline: None,
            admitted: 0,
        })
    }

    /// Bytes of KV cache the pool holds.
    pub fn pool_bytes(&self) -> usize {
        self.slots.iter().map(|s| s.cache.bytes()).sum()
    }

    /// Serve until a shutdown has drained (or passed its deadline) or every sender is gone.
    pub fn run(mut self, rx: Receiver<Work>) {
        let _no_grad = lamina_tensor::NoGradGuard::new();
        loop {
            if !self.receive(&rx) {
                break;
            }
            self.drop_abandoned();
            self.admit();
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                self.cancel_all();
            }
            let busy = self.active() > 0 || !self.embeds.is_empty();
            if self.active() > 0 {
                self.step();
            }
            self.embed_next();
            if !busy && self.deadline.is_some() {
                break;
            }
        }
        self.cancel_all();
    }

    fn active(&self) -> usize {
        self.slots.iter().filter(|s| s.seq.is_some()).count()
    }

    /// Take in new work: wait for it when idle, else only what has arrived. Returns false
    /// when nothing can ever arrive again and nothing is left to do.
    fn receive(&mut self, rx: &Receiver<Work>) -> bool {
        let idle = self.active() == 0 && self.queue.is_empty() && self.embeds.is_empty();
        let mut first = if idle && self.deadline.is_none() {
            match rx.recv() {
                Ok(w) => Some(w),
                Err(_) => return false,
            }
        } else {
            None
        };
        loop {
            let work = match first.take() {
                Some(w) => w,
                None => match rx.recv_timeout(Duration::ZERO) {
                    Ok(w) => w,
                    Err(RecvTimeoutError::Timeout) => return true,
                    Err(RecvTimeoutError::Disconnected) => return !idle,
                },
            };
            match work {
                Work::Generate(job) => self.prepare(job),
                Work::Embed(job) => {
                    let done = Embeddings { vectors: Vec::new(), prompt_tokens: 0 };
                    self.embeds.push_back(EmbedProgress { job, done });
                }
                Work::Shutdown { deadline } => {
                    self.deadline = Some(deadline);
                    for r in std::mem::take(&mut self.queue) {
                        self.metrics.queued.fetch_sub(1, Relaxed);
                        let _ = r.job.events.send(Event::Failed(ApiError::shutting_down()));
                    }
                }
            }
        }
    }

    /// Tokenize and check a new request (errors go back at once), then queue it.
    fn prepare(&mut self, job: Job) {
        match self.check(&job) {
            Ok((prompt, limit, sampler)) => self.queue.push_back(Ready { job, prompt, limit, sampler }),
            Err(e) => {
                self.metrics.queued.fetch_sub(1, Relaxed);
                let _ = job.events.send(Event::Failed(e));
            }
        }
    }

    /// The request's prompt tokens, generation limit and sampler, or why it cannot run.
    fn check(&self, job: &Job) -> Result<(Vec<u32>, usize, Sampler), ApiError> {
        if self.deadline.is_some() {
            return Err(ApiError::shutting_down());
        }
        let engine = self.engine;
        let prompt =
            catch_unwind(AssertUnwindSafe(|| engine.tokenize(&job.request.prompt))).unwrap_or_else(|panic| {
                Err(ApiError::internal(format!("preparing the prompt failed: {}", panic_message(&panic))))
            })?;
        let limit = self.limit(job, prompt.len())?;
        let sampler =
            Sampler::new(job.request.params.sampler.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((prompt, limit, sampler))
    }

    /// How many tokens the request may generate: `max_tokens`, or what the context has
    /// room for; an error when the prompt and `max_tokens` do not fit.
    fn limit(&self, job: &Job, prompt: usize) -> Result<usize, ApiError> {
        let ctx = self.slots[0].cache.capacity();
        let too_long = |msg: String| Err(ApiError::invalid("messages", msg).with_code("context_length_exceeded"));
        if prompt >= ctx {
            return too_long(format!(
                "the prompt has {prompt} tokens; the context holds {ctx} (with room for at least one new token)"
            ));
        }
        match job.request.params.max_tokens {
            Some(n) if prompt + n > ctx => too_long(format!(
                "the prompt ({prompt} tokens) plus max_tokens ({n}) exceeds the context of {ctx} tokens"
            )),
            Some(n) => Ok(n),
            None => Ok(ctx - prompt),
        }
    }

    /// Move queued requests into free slots, each into the slot whose cache shares the
    /// longest prefix with its prompt.
    fn admit(&mut self) {
        while let Some(ready) = self.queue.front() {
            let reuse = ready.job.cache_prompt;
            let best = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.seq.is_none())
                .map(|(i, s)| (i, if reuse { common_prefix(&s.cached[..s.cache.len()], &ready.prompt) } else { 0 }))
                .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)));
            let Some((i, shared)) = best else { break };
            let Ready { job, prompt, limit, sampler } = self.queue.pop_front().expect("front exists");
            self.metrics.queued.fetch_sub(1, Relaxed);
            if job.events.is_closed() {
                self.metrics.add_cancelled();
                continue;
            }
            let _ = job.events.send(Event::Started { prompt_tokens: prompt.len() });
            self.metrics.add_prompt(prompt.len());
            self.admitted += 1;
            // At least the last prompt token runs, to give the first logits.
            let keep = shared.min(prompt.len() - 1);
            let slot = &mut self.slots[i];
            slot.cache.truncate(keep);
            slot.cached.clear();
            slot.seq = Some(Sequence::new(self.engine, job, prompt, keep, limit, sampler, self.admitted));
            self.metrics.active.fetch_add(1, Relaxed);
        }
    }

    /// Free the slots of requests whose client has gone, and forget queued ones.
    fn drop_abandoned(&mut self) {
        for i in 0..self.slots.len() {
            if self.slots[i].seq.as_ref().is_some_and(|s| s.abandoned()) {
                self.metrics.add_cancelled();
                self.release(i, true);
            }
        }
    }

    /// Free slot `i`; `keep_cache`: remember what its cache holds for prefix reuse.
    fn release(&mut self, i: usize, keep_cache: bool) {
        let slot = &mut self.slots[i];
        if let Some(seq) = slot.seq.take() {
            self.metrics.active.fetch_sub(1, Relaxed);
            if keep_cache {
                slot.cached = seq.history().take(slot.cache.len()).collect();
            } else {
                slot.cache.clear();
                slot.cached.clear();
            }
        }
    }

    /// Cancel everything still running or queued (shutdown deadline, or the end).
    fn cancel_all(&mut self) {
        for i in 0..self.slots.len() {
            if let Some(seq) = self.slots[i].seq.as_mut() {
                let _ = seq.job.events.send(Event::Failed(ApiError::shutting_down()));
                self.release(i, false);
            }
        }
        for r in std::mem::take(&mut self.queue) {
            self.metrics.queued.fetch_sub(1, Relaxed);
            let _ = r.job.events.send(Event::Failed(ApiError::shutting_down()));
        }
        for e in std::mem::take(&mut self.embeds) {
            self.metrics.queued.fetch_sub(1, Relaxed);
            let _ = e.job.reply.send(Err(ApiError::shutting_down()));
        }
    }

    /// One batched forward pass over every running sequence, then sampling.
    fn step(&mut self) {
        let plan = self.plan();
        if plan.is_empty() {
            return;
        }
        let lens: Vec<usize> = self.slots.iter().map(|s| s.cache.len()).collect();
        match self.run_batch(&plan) {
            Ok(rows) => self.apply(&plan, &rows),
            Err(msg) => {
                // Find the culprit: each sequence alone, from the caches as they were.
                for (s, &n) in self.slots.iter_mut().zip(&lens) {
                    s.cache.truncate(n);
                }
                for &(i, n) in &plan {
                    match self.run_batch(&[(i, n)]) {
                        Ok(rows) => self.apply(&[(i, n)], &rows),
                        Err(alone) => {
                            let msg = if plan.len() == 1 { msg.clone() } else { alone };
                            if let Some(seq) = self.slots[i].seq.as_mut() {
                                seq.fail(format!("running the model failed: {msg}"));
                            }
                            self.release(i, false);
                        }
                    }
                }
            }
        }
    }

    /// (slot, tokens to run) for this step, in slot order: every decoding sequence, and
    /// prefill chunks for the oldest prefilling ones while the step's budget lasts.
    fn plan(&self) -> Vec<(usize, usize)> {
        let mut by_age: Vec<(u64, usize)> =
            self.slots.iter().enumerate().filter_map(|(i, s)| s.seq.as_ref().map(|q| (q.order, i))).collect();
        by_age.sort_unstable();
        let mut budget = self.opts.chunk;
        let mut plan = Vec::with_capacity(by_age.len());
        for (_, i) in by_age {
            let seq = self.slots[i].seq.as_ref().expect("active");
            if seq.prefilling() {
                let n = seq.next_tokens(budget).len();
                if n > 0 {
                    budget -= n;
                    plan.push((i, n));
                }
            } else {
                plan.push((i, 1));
            }
        }
        plan.sort_unstable();
        plan
    }

    /// The forward pass over `plan`'s sequences; logits rows in plan order. A panic in the
    /// model is caught and returned as an error.
    fn run_batch(&mut self, plan: &[(usize, usize)]) -> Result<Vec<f32>, String> {
        let mut steps = Vec::with_capacity(plan.len());
        let mut want = plan.iter().peekable();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(&(_, n)) = want.next_if(|p| p.0 == i) {
                let seq = slot.seq.as_ref().expect("planned slots are active");
                steps.push(SeqStep { tokens: seq.next_tokens(n), cache: &mut slot.cache });
            }
        }
        let model = self.engine.decoder().map_err(|e| e.message.clone())?;
        let run = || -> lamina_model::Result<Vec<f32>> {
            Ok(model.forward_batch(&mut steps, LogitsFor::Last)?.to_vec_f32()?)
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(Ok(rows)) => Ok(rows),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(format!("panic: {}", panic_message(&panic))),
        }
    }

    /// Sample each planned sequence's next token from its row; release finished slots.
    fn apply(&mut self, plan: &[(usize, usize)], rows: &[f32]) {
        let vocab = self.engine.vocab_size();
        for (k, &(i, n)) in plan.iter().enumerate() {
            let slot = &mut self.slots[i];
            let room = slot.cache.capacity() - slot.cache.len();
            let seq = slot.seq.as_mut().expect("planned slots are active");
            let row = &rows[k * vocab..(k + 1) * vocab];
            let engine = self.engine;
            let metrics = &self.metrics;
            let progress = catch_unwind(AssertUnwindSafe(|| seq.advance(engine, n, row, room, metrics)))
                .unwrap_or_else(|panic| seq.fail(format!("sampling failed: {}", panic_message(&panic))));
            if let Progress::Finished = progress {
                self.release(i, true);
            }
        }
    }

    /// Run the next input of the oldest embedding request; answer it after its last input,
    /// its first failing one, or at once if its client has gone.
    fn embed_next(&mut self) {
        let Some(e) = self.embeds.front_mut() else { return };
        let gone = e.job.reply.is_closed();
        let mut failure = None;
        if let Some(input) = e.job.request.inputs.get(e.done.vectors.len()).filter(|_| !gone) {
            match embed_input(self.engine, input, self.opts.ctx) {
                Ok((v, n)) => {
                    e.done.vectors.push(v);
                    e.done.prompt_tokens += n;
                }
                Err(err) => failure = Some(err),
            }
            if failure.is_none() && e.done.vectors.len() < e.job.request.inputs.len() {
                return;
            }
        }
        let e = self.embeds.pop_front().expect("front exists");
        self.metrics.queued.fetch_sub(1, Relaxed);
        if gone {
            self.metrics.add_cancelled();
        } else {
            let _ = e.job.reply.send(failure.map_or(Ok(e.done), Err));
        }
    }
}

/// One embedding input, a panic caught as a 500.
fn embed_input(engine: &Engine, input: &Prompt, ctx: usize) -> Result<(Vec<f32>, usize), ApiError> {
    catch_unwind(AssertUnwindSafe(|| engine.embed(input, ctx)))
        .unwrap_or_else(|panic| Err(ApiError::internal(format!("embedding failed: {}", panic_message(&panic)))))
}

fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
