//! Server-sent events for `stream: true`: each scheduler event becomes `data: {json}`
//! lines, the stream ends with `data: [DONE]` (or an error object if the request failed
//! midway). Dropping the body (the client went away) drops the event receiver, which
//! tells the scheduler to free the slot.

use crate::responses::Header;
use crate::scheduler::job::Event;
use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::convert::Infallible;
use tokio::sync::mpsc::UnboundedReceiver;

struct Stream {
    rx: UnboundedReceiver<Event>,
    header: Header,
    include_usage: bool,
    /// Bytes of text sent so far (legacy completions' `text_offset`).
    sent: usize,
    done: bool,
}

fn data(v: &Value) -> String {
    format!("data: {v}\n\n")
}

impl Stream {
    /// The SSE text for one event, and whether the stream ends with it.
    fn render(&mut self, event: Event) -> (String, bool) {
        match event {
            Event::Started { .. } => (String::new(), false),
            Event::Delta { text, logprobs } => {
                let chunk = self.header.text_chunk(&text, &logprobs, self.sent);
                self.sent += text.len();
                (data(&chunk), false)
            }
            Event::Done { finish, usage } => {
                let mut out = data(&self.header.finish_chunk(finish));
                if self.include_usage {
                    out.push_str(&data(&self.header.usage_chunk(usage)));
                }
                out.push_str("data: [DONE]\n\n");
                (out, true)
            }
            Event::Failed(e) => (data(&e.body()), true),
        }
    }
}

/// The streaming response; the `Started` event has been received already.
pub fn response(rx: UnboundedReceiver<Event>, header: Header, include_usage: bool) -> Response {
    let first = header.role_chunk().map(|c| data(&c)).unwrap_or_default();
    let state = Stream { rx, header, include_usage, sent: 0, done: false };
    let opening = futures_util::stream::once(async move { Ok::<_, Infallible>(Bytes::from(first)) });
    let events = futures_util::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        let (text, end) = match s.rx.recv().await {
            Some(ev) => s.render(ev),
            // The scheduler went away without a last event.
            None => (data(&crate::error::ApiError::internal("the request ended without a result").body()), true),
        };
        s.done = end;
        Some((Ok::<_, Infallible>(Bytes::from(text)), s))
    });
    let body = Body::from_stream(futures_util::StreamExt::chain(opening, events));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}
