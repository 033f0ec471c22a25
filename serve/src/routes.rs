//! The HTTP routes: OpenAI's `/v1` API (behind the API key when one is set), health,
//! Prometheus metrics and the chat page. Handlers parse and check requests, hand them to
//! the scheduler thread and turn its events into responses; they never run the model.

use crate::api::{self, GenRequest};
use crate::error::ApiError;
use crate::responses::{Flavor, Header};
use crate::scheduler::job::{EmbedJob, Event, Finish, Job, TokenLogprob, Usage, Work};
use crate::{sse, AppState};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

type App = Arc<AppState>;

/// The chat page: one HTML file with its script inline, nothing fetched from elsewhere.
const CHAT_PAGE: &str = include_str!("chat.html");

/// The routes whose requests are counted by name (others count as "other").
const ROUTES: [&str; 8] = [
    "/",
    "/health",
    "/metrics",
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/models/{id}",
];

pub fn router(state: App) -> Router {
    let v1 = Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    Router::new()
        .route("/", get(|| async { ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], CHAT_PAGE) }))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(v1)
        .fallback(|req: Request| async move {
            ApiError::not_found(format!("no route {} {}", req.method(), req.uri().path()))
        })
        .method_not_allowed_fallback(|req: Request| async move {
            ApiError::status(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed on {}", req.method(), req.uri().path()),
            )
        })
        .layer(middleware::from_fn_with_state(state.clone(), count_and_catch))
        .with_state(state)
}

/// Counts every answer by route and status, and turns a panic in a handler into a 500 for
/// that request (the connection and the server carry on).
async fn count_and_catch(State(app): State<App>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let route = ROUTES.iter().find(|r| **r == path).copied().unwrap_or("other");
    let response = AssertUnwindSafe(next.run(req)).catch_unwind().await.unwrap_or_else(|_| {
        ApiError::internal("the request's handler failed (a bug: see the server log)").into_response()
    });
    app.metrics.count_request(route, response.status().as_u16());
    response
}

/// With `--api-key`, `Authorization: Bearer KEY`, compared in constant time.
async fn require_key(State(app): State<App>, req: Request, next: Next) -> Response {
    if let Some(key) = &app.opts.api_key {
        let given = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes()).unwrap_or_default();
        let want = format!("Bearer {key}");
        if !constant_time_eq(given, want.as_bytes()) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(req).await
}

/// Equality whose time depends only on the lengths, not on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    (a.len() == b.len()) & (diff == 0)
}

async fn health(State(app): State<App>) -> Response {
    if app.shutting_down.load(SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, json_body(&json!({"status": "shutting down"}))).into_response();
    }
    json_response(&json!({"status": "ok"}))
}

async fn metrics(State(app): State<App>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render()).into_response()
}

async fn models(State(app): State<App>) -> Response {
    let m = &app.model;
    json_response(&json!({"object": "list", "data": [
        {"id": m.name, "object": "model", "created": m.created, "owned_by": "lamina", "context_length": m.ctx}
    ]}))
}

async fn chat_completions(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    generation_route(app, headers, body, Flavor::Chat, api::chat_request).await
}

async fn completions(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    generation_route(app, headers, body, Flavor::Text, api::completion_request).await
}

/// Read and parse a generation request (`parse` knows the route's shape), then run it.
async fn generation_route(
    app: App,
    headers: HeaderMap,
    body: Body,
    flavor: Flavor,
    parse: fn(&[u8], usize) -> Result<GenRequest, ApiError>,
) -> Response {
    let result = async {
        let bytes = read_json(&headers, body, app.opts.body_limit).await?;
        let req = parse(&bytes, app.model.ctx)?;
        generate(&app, flavor, req, cache_prompt(&bytes)).await
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// llama.cpp's per-request `cache_prompt` (default true): reuse a slot's cached prefix.
fn cache_prompt(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("cache_prompt")?.as_bool()).unwrap_or(true)
}

/// Queue a generation, wait for the scheduler to take it, and answer as a whole or as a
/// stream.
async fn generate(app: &App, flavor: Flavor, req: GenRequest, cache_prompt: bool) -> Result<Response, ApiError> {
    static IDS: AtomicU64 = AtomicU64::new(1);
    enqueue(app)?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stream, include_usage) = (req.stream, req.include_usage);
    let job = Job { request: req, cache_prompt, events: tx, received: Instant::now() };
    submit(app, Work::Generate(job))?;
    match rx.recv().await {
        Some(Event::Started { .. }) => {}
        Some(Event::Failed(e)) => return Err(e),
        _ => return Err(ApiError::internal("the scheduler did not take the request")),
    }
    let header = Header::new(flavor, IDS.fetch_add(1, Relaxed), &app.model.name);
    if stream {
        return Ok(sse::response(rx, header, include_usage));
    }
    let (mut text, mut logprobs) = (String::new(), Vec::<TokenLogprob>::new());
    let (finish, usage): (Finish, Usage) = loop {
        match rx.recv().await {
            Some(Event::Delta { text: t, logprobs: l }) => {
                text.push_str(&t);
                logprobs.extend(l);
            }
            Some(Event::Done { finish, usage }) => break (finish, usage),
            Some(Event::Failed(e)) => return Err(e),
            Some(Event::Started { .. }) => {}
            None => return Err(ApiError::internal("the request ended without a result")),
        }
    };
    Ok(json_response(&header.completion(&text, &logprobs, finish, usage)))
}

async fn embeddings(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let bytes = read_json(&headers, body, app.opts.body_limit).await?;
        let req = api::embed_request(&bytes)?;
        let base64 = req.base64;
        enqueue(&app)?;
        let (reply, answer) = oneshot::channel();
        submit(&app, Work::Embed(EmbedJob { request: req, reply }))?;
        let out = answer.await.map_err(|_| ApiError::internal("the embedding request was dropped"))??;
        let data: Vec<Value> = out
            .vectors
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let embedding = if base64 { json!(base64_f32(v)) } else { json!(v) };
                json!({"object": "embedding", "index": i, "embedding": embedding})
            })
            .collect();
        let n = out.prompt_tokens;
        Ok::<_, ApiError>(json_response(&json!({
            "object": "list", "data": data, "model": app.model.name,
            "usage": {"prompt_tokens": n, "total_tokens": n},
        })))
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// Take a place in the queue, or refuse: 503 while shutting down, 429 when full.
fn enqueue(app: &App) -> Result<(), ApiError> {
    if app.shutting_down.load(SeqCst) {
        return Err(ApiError::shutting_down());
    }
    let queued = app.metrics.queued.fetch_add(1, SeqCst);
    if queued >= app.opts.queue {
        app.metrics.queued.fetch_sub(1, SeqCst);
        return Err(ApiError::busy(queued));
    }
    Ok(())
}

fn submit(app: &App, work: Work) -> Result<(), ApiError> {
    app.work.send(work).map_err(|_| {
        app.metrics.queued.fetch_sub(1, SeqCst);
        ApiError::shutting_down()
    })
}

/// The body of a JSON request: the right content type, at most `limit` bytes.
async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, got {:?}", if ct.is_empty() { "nothing" } else { ct }),
        ));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_big = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_big {
            ApiError::status(StatusCode::PAYLOAD_TOO_LARGE, format!("the body is larger than {limit} bytes"))
        } else {
            ApiError::bad_request(format!("reading the body failed: {e}"))
        }
    })
}

fn json_body(v: &Value) -> String {
    v.to_string()
}

fn json_response(v: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json_body(v)).into_response()
}

/// Little-endian f32 bytes in standard base64 (OpenAI's `encoding_format: "base64"`).
fn base64_f32(v: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        // 1.0f32 = 00 00 80 3f; 2.0 = 00 00 00 40 (checked with Python's base64 + struct).
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, 2.0]), "AACAPwAAAEA=");
        assert_eq!(base64_f32(&[]), "");
    }

    #[test]
    fn keys_compare_in_full() {
        assert!(constant_time_eq(b"Bearer k", b"Bearer k"));
        assert!(!constant_time_eq(b"Bearer k", b"Bearer x"));
        assert!(!constant_time_eq(b"Bearer", b"Bearer k"));
    }
}
