//! What travels between the HTTP handlers and the scheduler thread: work items in, events
//! out (one channel per request, whose closing means the client went away).

use crate::api::{EmbedRequest, GenRequest};
use crate::error::ApiError;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

pub enum Work {
    Generate(Job),
    Embed(EmbedJob),
    /// Stop admitting; finish what runs until `deadline`, then cancel it.
    Shutdown {
        deadline: Instant,
    },
}

pub struct Job {
    pub request: GenRequest,
    /// Per-request `cache_prompt` (llama.cpp's name): may reuse a slot's cached prefix.
    pub cache_prompt: bool,
    pub events: mpsc::UnboundedSender<Event>,
    pub received: Instant,
}

pub struct EmbedJob {
    pub request: EmbedRequest,
    pub reply: oneshot::Sender<Result<Embeddings, ApiError>>,
}

pub struct Embeddings {
    /// One L2-normalised vector per input.
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens`, or the end of the context.
    Length,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    /// Every token sampled, including an end-of-generation token or the ones a stop string
    /// was cut from.
    pub completion_tokens: usize,
}

/// Log-probability of a sampled token under the model (before penalties and filters).
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub token: TokenText,
    pub logprob: f32,
    /// The most likely tokens at that position, most likely first.
    pub top: Vec<(TokenText, f32)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TokenText {
    /// The token's text (U+FFFD where it holds part of a character).
    pub text: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
pub enum Event {
    /// Admitted into a slot: the prompt is tokenized and fits.
    Started {
        prompt_tokens: usize,
    },
    /// New text (may be empty when only log-probabilities are new).
    Delta {
        text: String,
        logprobs: Vec<TokenLogprob>,
    },
    Done {
        finish: Finish,
        usage: Usage,
    },
    /// Before `Started`: the request was refused (4xx/503). After: it failed (500).
    Failed(ApiError),
}
