//! `lamina serve`: an OpenAI-compatible HTTP server over any model Lamina loads.
//!
//! Two sides meet through channels. The HTTP side (axum on a single-threaded tokio
//! runtime: parsing, auth, streaming) never touches the model; the scheduler thread owns
//! it, runs continuous batching (`scheduler`) and the embeddings, and answers each
//! request on its own event channel. Dropping that channel's receiver (a client that
//! went away) frees the request's slot.

pub mod api;
pub mod engine;
pub mod error;
pub mod metrics;
mod responses;
mod routes;
pub mod scheduler;
mod sse;

pub use engine::{Engine, Network};
pub use scheduler::SchedulerOptions;

use metrics::Metrics;
use scheduler::job::Work;
use scheduler::Scheduler;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub host: String,
    /// 0 picks a free port (printed at start).
    pub port: u16,
    /// When set, every `/v1` route needs `Authorization: Bearer KEY`.
    pub api_key: Option<String>,
    pub scheduler: SchedulerOptions,
    /// Requests waiting for a slot at most; more get 429 with `Retry-After`.
    pub queue: usize,
    /// Largest request body, in bytes (413 beyond).
    pub body_limit: usize,
    /// After SIGINT/SIGTERM, running requests may finish for this long; then they are cancelled.
    pub shutdown_timeout: Duration,
}

/// What the HTTP side knows about the model (filled in by the scheduler thread).
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub name: String,
    pub ctx: usize,
    pub created: u64,
}

/// Shared by every handler.
pub(crate) struct AppState {
    pub opts: ServeOptions,
    pub model: ModelInfo,
    pub metrics: Arc<Metrics>,
    pub work: mpsc::Sender<Work>,
    pub shutting_down: AtomicBool,
}

/// Load the model on the scheduler thread (`load` runs there), bind, and serve until
/// SIGINT or SIGTERM; returns once in-flight requests have finished or been cancelled.
pub fn serve(opts: ServeOptions, load: impl FnOnce() -> Result<Engine, String> + Send + 'static) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new(opts.scheduler.parallel));
    let (work_tx, work_rx) = mpsc::channel::<Work>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<ModelInfo, String>>();
    let sched_opts = opts.scheduler;
    let sched_metrics = metrics.clone();
    let scheduler = std::thread::Builder::new()
        .name("lamina-scheduler".into())
        .spawn(move || {
            let engine = match load() {
                Ok(e) => e,
                Err(e) => return drop(ready_tx.send(Err(e))),
            };
            let ctx = sched_opts.ctx.min(engine.context_length());
            let opts = SchedulerOptions { ctx, ..sched_opts };
            let s = match Scheduler::new(&engine, opts, sched_metrics) {
                Ok(s) => s,
                Err(e) => return drop(ready_tx.send(Err(format!("allocating the KV cache pool: {e}")))),
            };
            match engine.model {
                Network::Decoder(_) => eprintln!(
                    "lamina serve: {} slots x {ctx} tokens of context, KV cache pool {:.0} MiB (allocated once)",
                    opts.parallel,
                    s.pool_bytes() as f64 / (1 << 20) as f64
                ),
                Network::Encoder(_) => {
                    eprintln!("lamina serve: an embedding model, inputs of up to {ctx} tokens: /v1/embeddings only")
                }
            }
            let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let _ = ready_tx.send(Ok(ModelInfo { name: engine.name.clone(), ctx, created }));
            s.run(work_rx);
        })
        .map_err(|e| format!("starting the scheduler thread: {e}"))?;
    let model = ready_rx.recv().map_err(|_| "the scheduler thread stopped while loading".to_string())??;
    let state = Arc::new(AppState {
        opts: opts.clone(),
        model,
        metrics,
        work: work_tx.clone(),
        shutting_down: AtomicBool::new(false),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((opts.host.as_str(), opts.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", opts.host, opts.port))?;
        let addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
        // Tests and scripts read this line for the port.
        println!("lamina serve: listening on http://{addr}");
        let app = routes::router(state.clone());
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal(state.clone()))
            .await
            .map_err(|e| format!("server error: {e}"))
    })?;
    drop(state);
    drop(work_tx);
    scheduler.join().map_err(|_| "the scheduler thread panicked".to_string())?;
    eprintln!("lamina serve: stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM, after telling the scheduler to drain.
async fn shutdown_signal(state: Arc<AppState>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    futures_util::future::select(Box::pin(ctrl_c), Box::pin(term)).await;
    eprintln!(
        "lamina serve: shutting down (running requests get {:.0} s to finish)",
        state.opts.shutdown_timeout.as_secs_f64()
    );
    state.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = state.work.send(Work::Shutdown { deadline: Instant::now() + state.opts.shutdown_timeout });
}
