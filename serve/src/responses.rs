//! The OpenAI response shapes: whole completions, streamed chunks and usage, for the chat
//! API (`chat.completion`, `delta`, logprobs under `content`) and the legacy completions
//! API (`text_completion`, `text`, logprobs as parallel lists).

use crate::scheduler::job::{Finish, TokenLogprob, TokenText, Usage};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Chat,
    Text,
}

/// What every response of one request shares.
pub struct Header {
    pub flavor: Flavor,
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Header {
    pub fn new(flavor: Flavor, n: u64, model: &str) -> Header {
        let prefix = if flavor == Flavor::Chat { "chatcmpl" } else { "cmpl" };
        let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Header { flavor, id: format!("{prefix}-{n}"), created, model: model.to_string() }
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.flavor, chunk) {
            (Flavor::Chat, false) => "chat.completion",
            (Flavor::Chat, true) => "chat.completion.chunk",
            (Flavor::Text, _) => "text_completion",
        }
    }

    fn wrap(&self, chunk: bool, choices: Value) -> Value {
        json!({"id": self.id, "object": self.object(chunk), "created": self.created, "model": self.model, "choices": choices})
    }

    /// The whole answer (`stream: false`).
    pub fn completion(&self, text: &str, logprobs: &[TokenLogprob], finish: Finish, usage: Usage) -> Value {
        let lp = self.logprobs(logprobs, 0);
        let choice = match self.flavor {
            Flavor::Chat => {
                json!({"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": lp, "finish_reason": finish.as_str()})
            }
            Flavor::Text => json!({"index": 0, "text": text, "logprobs": lp, "finish_reason": finish.as_str()}),
        };
        let mut v = self.wrap(false, json!([choice]));
        v["usage"] = usage_json(usage);
        v
    }

    /// The first chunk of a chat stream names the role.
    pub fn role_chunk(&self) -> Option<Value> {
        (self.flavor == Flavor::Chat).then(|| {
            self.wrap(true, json!([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null}]))
        })
    }

    /// A chunk of new text. `offset`: bytes of text already sent (legacy `text_offset`).
    pub fn text_chunk(&self, text: &str, logprobs: &[TokenLogprob], offset: usize) -> Value {
        let lp = self.logprobs(logprobs, offset);
        let choice = match self.flavor {
            Flavor::Chat => json!({"index": 0, "delta": {"content": text}, "logprobs": lp, "finish_reason": null}),
            Flavor::Text => json!({"index": 0, "text": text, "logprobs": lp, "finish_reason": null}),
        };
        self.wrap(true, json!([choice]))
    }

    pub fn finish_chunk(&self, finish: Finish) -> Value {
        let choice = match self.flavor {
            Flavor::Chat => json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": finish.as_str()}),
            Flavor::Text => json!({"index": 0, "text": "", "logprobs": null, "finish_reason": finish.as_str()}),
        };
        self.wrap(true, json!([choice]))
    }

    /// `stream_options.include_usage`: a last chunk with no choices.
    pub fn usage_chunk(&self, usage: Usage) -> Value {
        let mut v = self.wrap(true, json!([]));
        v["usage"] = usage_json(usage);
        v
    }

    fn logprobs(&self, lps: &[TokenLogprob], offset: usize) -> Value {
        if lps.is_empty() {
            return Value::Null;
        }
        match self.flavor {
            Flavor::Chat => json!({"content": lps.iter().map(|l| {
                let mut e = token_json(&l.token, l.logprob);
                e["top_logprobs"] = l.top.iter().map(|(t, lp)| token_json(t, *lp)).collect();
                e
            }).collect::<Vec<_>>()}),
            Flavor::Text => {
                let mut at = offset;
                let offsets: Vec<usize> = lps
                    .iter()
                    .map(|l| {
                        let o = at;
                        at += l.token.text.len();
                        o
                    })
                    .collect();
                json!({
                    "tokens": lps.iter().map(|l| l.token.text.as_str()).collect::<Vec<_>>(),
                    "token_logprobs": lps.iter().map(|l| l.logprob).collect::<Vec<_>>(),
                    "top_logprobs": lps.iter().map(|l| l.top.iter().map(|(t, lp)| (t.text.clone(), json!(lp))).collect::<serde_json::Map<_, _>>()).collect::<Vec<_>>(),
                    "text_offset": offsets,
                })
            }
        }
    }
}

fn token_json(t: &TokenText, logprob: f32) -> Value {
    json!({"token": t.text, "logprob": logprob, "bytes": t.bytes})
}

pub fn usage_json(u: Usage) -> Value {
    json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.prompt_tokens + u.completion_tokens})
}
