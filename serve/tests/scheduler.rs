//! The scheduler without HTTP: a fault in one request's work fails that request alone,
//! batching does not change greedy results, a client that leaves frees its slot, and
//! requests that cannot fit are refused with the OpenAI error code. The model is a tiny
//! random LLaMA with SmolLM2's tokenizer (so it needs the reference model file), wrapped so
//! that it panics whenever it is asked to run one chosen token.

use lamina_model::gguf::GgufFile;
use lamina_model::kv_cache::KvCache;
use lamina_model::sampling::SamplerConfig;
use lamina_model::{BpeTokenizer, CausalLm, Llama, LlamaConfig, LogitsFor, SeqStep};
use lamina_serve::api::{EmbedRequest, GenParams, GenRequest, Prompt};
use lamina_serve::metrics::Metrics;
use lamina_serve::scheduler::job::{EmbedJob, Event, Finish, Job, Work};
use lamina_serve::scheduler::Scheduler;
use lamina_serve::{Engine, Network, SchedulerOptions};
use lamina_tensor::{Device, RopeConvention, Tensor};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

const POISON: u32 = 666;

/// A model whose forward pass panics when any sequence holds `POISON`, and which logs
/// its calls: `g` for a (batched) forward pass, `e` for an embedding's hidden states.
struct Faulty(Llama, Arc<Mutex<String>>);

impl CausalLm for Faulty {
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn context_length(&self) -> usize {
        self.0.context_length()
    }
    fn device(&self) -> Device {
        self.0.device()
    }
    fn new_cache(&self, capacity: usize) -> lamina_model::Result<KvCache> {
        self.0.new_cache(capacity)
    }
    fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: LogitsFor) -> lamina_model::Result<Tensor> {
        self.forward_batch(&mut [SeqStep { tokens, cache }], which)
    }
    fn forward_batch(&self, seqs: &mut [SeqStep<'_>], which: LogitsFor) -> lamina_model::Result<Tensor> {
        assert!(!seqs.iter().any(|s| s.tokens.contains(&POISON)), "poisoned token in the batch");
        self.1.lock().unwrap().push('g');
        self.0.forward_batch(seqs, which)
    }
    fn hidden_states(&self, tokens: &[u32]) -> lamina_model::Result<Tensor> {
        self.1.lock().unwrap().push('e');
        self.0.hidden_states(tokens)
    }
}

fn engine(tokenizer: BpeTokenizer, template_source: Option<String>, log: Arc<Mutex<String>>) -> Engine {
    let config = LlamaConfig {
        arch: "llama".into(),
        vocab_size: tokenizer.vocab_size(),
        dim: 32,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 8,
        ffn_dim: 48,
        norm_eps: 1e-5,
        rope_base: 10000.0,
        rope_convention: RopeConvention::Interleaved,
        context_length: 256,
        ..Default::default()
    };
    let model = Faulty(Llama::random(config, true, 0.5, 11, Device::Cpu).unwrap(), log);
    let token = |id: Option<u32>| id.and_then(|i| tokenizer.id_to_token(i)).unwrap_or("").to_string();
    let template = lamina_model::chat::ChatTemplate::new(
        template_source.as_deref().unwrap_or(lamina_model::chat::CHATML),
        &token(tokenizer.bos_id()),
        &token(tokenizer.eos_id()),
    )
    .unwrap();
    Engine { model: Network::Decoder(Box::new(model)), tokenizer, template, name: "faulty".into() }
}

struct Running {
    tx: mpsc::Sender<Work>,
    metrics: Arc<Metrics>,
    handle: std::thread::JoinHandle<()>,
    /// The model's calls so far (see `Faulty`).
    log: Arc<Mutex<String>>,
}

/// A scheduler thread with `parallel` slots of `ctx` tokens, started once `before` has put
/// its work in the channel. It stops when the channel's sender is dropped.
fn start_after(parallel: usize, ctx: usize, before: impl FnOnce(&mpsc::Sender<Work>, &Metrics)) -> Option<Running> {
    let path = lamina_testkit::smollm2()?;
    let (tx, rx) = mpsc::channel();
    let metrics = Arc::new(Metrics::new(parallel));
    before(&tx, &metrics);
    let (m, log) = (metrics.clone(), Arc::new(Mutex::new(String::new())));
    let model_log = log.clone();
    let handle = std::thread::spawn(move || {
        let f = GgufFile::open(path).unwrap();
        let template = f.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(String::from);
        let engine = engine(BpeTokenizer::from_gguf(&f).unwrap(), template, model_log);
        Scheduler::new(&engine, SchedulerOptions { parallel, ctx, chunk: 16 }, m).unwrap().run(rx);
    });
    Some(Running { tx, metrics, handle, log })
}

fn start(parallel: usize, ctx: usize) -> Option<(mpsc::Sender<Work>, Arc<Metrics>, std::thread::JoinHandle<()>)> {
    start_after(parallel, ctx, |_, _| {}).map(|r| (r.tx, r.metrics, r.handle))
}

fn greedy(prompt: Vec<u32>, max_tokens: usize) -> GenRequest {
    GenRequest {
        prompt: Prompt::Tokens(prompt),
        params: GenParams {
            max_tokens: Some(max_tokens),
            sampler: SamplerConfig::greedy(),
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            stop: Vec::new(),
            logprobs: None,
            ignore_eos: true,
        },
        stream: false,
        include_usage: false,
    }
}

fn submit(
    tx: &mpsc::Sender<Work>,
    metrics: &Metrics,
    request: GenRequest,
    cache_prompt: bool,
) -> UnboundedReceiver<Event> {
    let (events, rx) = unbounded_channel();
    metrics.queued.fetch_add(1, Relaxed);
    tx.send(Work::Generate(Job { request, cache_prompt, events, received: Instant::now() })).unwrap();
    rx
}

/// The events of one request to its end: (text, finish or the error's status).
fn outcome(rx: &mut UnboundedReceiver<Event>) -> (String, Result<Finish, u16>) {
    let mut text = String::new();
    loop {
        match rx.blocking_recv().expect("the scheduler dropped a request") {
            Event::Started { .. } => {}
            Event::Delta { text: t, .. } => text.push_str(&t),
            Event::Done { finish, .. } => return (text, Ok(finish)),
            Event::Failed(e) => return (text, Err(e.status.as_u16())),
        }
    }
}

fn prompt(seed: u32, n: u32) -> Vec<u32> {
    (0..n).map(|i| 100 + (seed * 131 + i * 17) % 5000).collect()
}

#[test]
fn a_panic_fails_only_its_own_request() {
    let Some((tx, metrics, handle)) = start(4, 128) else { return };
    let mut alone = submit(&tx, &metrics, greedy(prompt(1, 20), 12), false);
    let reference = outcome(&mut alone);
    assert_eq!(reference.1, Ok(Finish::Length));
    // Three requests in one batch; the middle one's prompt holds the poisoned token.
    let mut bad_prompt = prompt(2, 20);
    bad_prompt[10] = POISON;
    let mut ok1 = submit(&tx, &metrics, greedy(prompt(1, 20), 12), false);
    let mut bad = submit(&tx, &metrics, greedy(bad_prompt, 12), false);
    let mut ok2 = submit(&tx, &metrics, greedy(prompt(3, 30), 12), false);
    assert_eq!(outcome(&mut bad).1, Err(500));
    assert_eq!(outcome(&mut ok1), reference, "batching or the fault changed another request's tokens");
    assert_eq!(outcome(&mut ok2).1, Ok(Finish::Length));
    // The server goes on serving.
    let mut after = submit(&tx, &metrics, greedy(prompt(1, 20), 12), true);
    assert_eq!(outcome(&mut after), reference);
    drop(tx);
    handle.join().unwrap();
    assert_eq!(metrics.active.load(Relaxed), 0);
    assert_eq!(metrics.queued.load(Relaxed), 0);
}

#[test]
fn a_client_that_leaves_frees_its_slot() {
    let Some((tx, metrics, handle)) = start(1, 256) else { return };
    let mut long = submit(&tx, &metrics, greedy(prompt(4, 8), 200), false);
    assert!(matches!(long.blocking_recv(), Some(Event::Started { .. })));
    assert!(matches!(long.blocking_recv(), Some(Event::Delta { .. })));
    drop(long);
    // With one slot, this request can only run once the abandoned one is gone.
    let mut next = submit(&tx, &metrics, greedy(prompt(5, 8), 4), false);
    let deadline = Instant::now() + Duration::from_secs(60);
    assert_eq!(outcome(&mut next).1, Ok(Finish::Length));
    assert!(Instant::now() < deadline);
    assert!(metrics.render().contains("lamina_cancelled_total 1"));
    drop(tx);
    handle.join().unwrap();
}

#[test]
fn requests_that_cannot_fit_are_refused_with_a_code() {
    let Some((tx, metrics, handle)) = start(2, 64) else { return };
    let mut too_long = submit(&tx, &metrics, greedy(prompt(6, 64), 1), false);
    match too_long.blocking_recv() {
        Some(Event::Failed(e)) => {
            assert_eq!((e.status.as_u16(), e.code), (400, Some("context_length_exceeded")), "{e:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut no_room = submit(&tx, &metrics, greedy(prompt(6, 40), 30), false);
    assert!(matches!(no_room.blocking_recv(), Some(Event::Failed(e)) if e.message.contains("exceeds the context")));
    let mut bad_id = submit(&tx, &metrics, greedy(vec![1, 2, u32::MAX], 3), false);
    assert!(matches!(bad_id.blocking_recv(), Some(Event::Failed(e)) if e.message.contains("vocabulary")));
    drop(tx);
    handle.join().unwrap();
    assert_eq!(metrics.queued.load(Relaxed), 0);
}

#[test]
fn a_long_embedding_request_lets_generations_run_between_its_inputs() {
    let inputs = 24;
    let (mut gen, mut reply) = (None, None);
    let Some(r) = start_after(2, 128, |tx, metrics| {
        // Both wait in the channel before the scheduler starts: the embeddings first.
        let request =
            EmbedRequest { inputs: (0..inputs).map(|i| Prompt::Tokens(prompt(i, 30))).collect(), base64: false };
        let (tx_reply, rx_reply) = tokio::sync::oneshot::channel();
        metrics.queued.fetch_add(1, Relaxed);
        tx.send(Work::Embed(EmbedJob { request, reply: tx_reply })).unwrap();
        reply = Some(rx_reply);
        gen = Some(submit(tx, metrics, greedy(prompt(7, 10), 3), false));
    }) else {
        return;
    };
    assert_eq!(outcome(gen.as_mut().unwrap()).1, Ok(Finish::Length));
    let out = reply.unwrap().blocking_recv().unwrap().unwrap();
    assert_eq!((out.vectors.len(), out.prompt_tokens), (inputs as usize, inputs as usize * 30));
    drop(r.tx);
    r.handle.join().unwrap();
    let log = r.log.lock().unwrap().clone();
    // Prefill and 3 decode steps, each followed by one input; then the other inputs.
    assert_eq!(log.matches('e').count(), inputs as usize, "{log}");
    assert!(log.starts_with("gegege"), "the generation waited for the embeddings: {log}");
    assert_eq!(r.metrics.queued.load(Relaxed), 0);
}
