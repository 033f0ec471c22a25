//! The OpenAI request shapes, read from JSON into what the scheduler runs. Fields are read
//! one by one so that a wrong one gets an error naming it (`param`); fields this server
//! does not use are ignored, as OpenAI-compatible servers do, except those whose meaning
//! it cannot honour (`n` > 1, image content, `echo`, `suffix`), which are refused.

use crate::error::ApiError;
use lamina_model::chat::Message;
use lamina_model::sampling::SamplerConfig;
use serde_json::{Map, Value};

/// What a generation request asks for, besides its prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct GenParams {
    /// `None`: until the end of the context.
    pub max_tokens: Option<usize>,
    /// Temperature, top-k/p, min-p and the seed; the repetition penalty stays off.
    pub sampler: SamplerConfig,
    /// OpenAI's penalties over the tokens generated so far: each logit is lowered by
    /// `frequency * count + presence * (count > 0)`.
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    pub stop: Vec<String>,
    /// Log-probabilities of the chosen tokens, with this many alternatives each.
    pub logprobs: Option<usize>,
    /// Keep going past end-of-generation tokens (llama.cpp's extension; benchmarks use it).
    pub ignore_eos: bool,
}

/// What a generation continues from.
#[derive(Clone, Debug, PartialEq)]
pub enum Prompt {
    /// Rendered with the model's chat template; message content is plain text.
    Chat(Vec<Message>),
    /// Raw text, tokenized as `lamina generate` does (BOS as the model asks, control-token
    /// text parsed: the caller writes the whole prompt).
    Text(String),
    Tokens(Vec<u32>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct GenRequest {
    pub prompt: Prompt,
    pub params: GenParams,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with the token counts.
    pub include_usage: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EmbedRequest {
    /// Each input: text or token ids.
    pub inputs: Vec<Prompt>,
    /// `encoding_format: "base64"` (little-endian f32 bytes), else a list of floats.
    pub base64: bool,
}

/// Generous bounds on list-valued fields: the body limit bounds their total anyway.
const MAX_STOPS: usize = 16;
const MAX_STOP_BYTES: usize = 1024;
const MAX_TOP_LOGPROBS: u64 = 20;
const MAX_EMBED_INPUTS: usize = 256;

/// A JSON object body, read field by field. `null` counts as absent.
pub struct Fields(Map<String, Value>);

impl Fields {
    pub fn parse(body: &[u8]) -> Result<Fields, ApiError> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
        match v {
            Value::Object(m) => Ok(Fields(m)),
            other => Err(ApiError::bad_request(format!("the body must be a JSON object, got {}", type_name(&other)))),
        }
    }

    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn number(&self, k: &str, lo: f64, hi: f64) -> Result<Option<f64>, ApiError> {
        let Some(v) = self.get(k) else { return Ok(None) };
        let x =
            v.as_f64().ok_or_else(|| ApiError::invalid(k, format!("`{k}` must be a number, got {}", type_name(v))))?;
        if !(lo..=hi).contains(&x) {
            return Err(ApiError::invalid(k, format!("`{k}` must be between {lo} and {hi}, got {x}")));
        }
        Ok(Some(x))
    }

    fn integer(&self, k: &str, lo: u64, hi: u64) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.get(k) else { return Ok(None) };
        let x =
            v.as_u64().ok_or_else(|| ApiError::invalid(k, format!("`{k}` must be a non-negative integer, got {v}")))?;
        if !(lo..=hi).contains(&x) {
            return Err(ApiError::invalid(k, format!("`{k}` must be between {lo} and {hi}, got {x}")));
        }
        Ok(Some(x))
    }

    fn boolean(&self, k: &str) -> Result<bool, ApiError> {
        match self.get(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(ApiError::invalid(k, format!("`{k}` must be true or false, got {}", type_name(v)))),
        }
    }

    fn string(&self, k: &str) -> Result<Option<&str>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(ApiError::invalid(k, format!("`{k}` must be a string, got {}", type_name(v)))),
        }
    }

    /// The generation parameters shared by chat and completions. `logprobs_count`: the
    /// completions API's integer `logprobs` instead of chat's `logprobs` + `top_logprobs`.
    fn gen_params(&self, logprobs_count: bool, ctx: usize) -> Result<GenParams, ApiError> {
        if let Some(n) = self.integer("n", 1, u64::MAX)? {
            if n > 1 {
                return Err(ApiError::invalid("n", format!("n = {n}: this server returns one choice per request")));
            }
        }
        let max_tokens = match self.integer("max_completion_tokens", 1, ctx as u64)? {
            Some(n) => Some(n),
            None => self.integer("max_tokens", 1, ctx as u64)?,
        };
        let d = SamplerConfig::default();
        let f = |k: &str, lo: f64, hi: f64, default: f32| -> Result<f32, ApiError> {
            Ok(self.number(k, lo, hi)?.map_or(default, |x| x as f32))
        };
        let seed = match self.get("seed") {
            None => fresh_seed(),
            // Negative seeds are fine in the OpenAI API; any integer picks a stream.
            Some(v) => v
                .as_i64()
                .map(|s| s as u64)
                .or_else(|| v.as_u64())
                .ok_or_else(|| ApiError::invalid("seed", format!("`seed` must be an integer, got {v}")))?,
        };
        let top_p = f("top_p", 0.0, 1.0, d.top_p)?;
        if top_p == 0.0 {
            return Err(ApiError::invalid("top_p", "`top_p` must be above 0"));
        }
        let sampler = SamplerConfig {
            temperature: f("temperature", 0.0, 2.0, d.temperature)?,
            top_k: self.integer("top_k", 0, u32::MAX as u64)?.map_or(d.top_k, |k| k as usize),
            top_p,
            min_p: f("min_p", 0.0, 1.0, d.min_p)?,
            repeat_penalty: 1.0,
            repeat_last_n: 0,
            seed,
        };
        let logprobs = if logprobs_count {
            self.integer("logprobs", 0, 5)?.map(|n| n as usize)
        } else {
            let top = self.integer("top_logprobs", 0, MAX_TOP_LOGPROBS)?;
            match (self.boolean("logprobs")?, top) {
                (true, top) => Some(top.unwrap_or(0) as usize),
                (false, Some(_)) => {
                    return Err(ApiError::invalid("top_logprobs", "`top_logprobs` needs `logprobs: true`"))
                }
                (false, None) => None,
            }
        };
        Ok(GenParams {
            max_tokens: max_tokens.map(|n| n as usize),
            sampler,
            frequency_penalty: f("frequency_penalty", -2.0, 2.0, 0.0)?,
            presence_penalty: f("presence_penalty", -2.0, 2.0, 0.0)?,
            stop: self.stop()?,
            logprobs,
            ignore_eos: self.boolean("ignore_eos")?,
        })
    }

    fn stop(&self) -> Result<Vec<String>, ApiError> {
        let list = match self.get("stop") {
            None => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(String::from).ok_or_else(|| ApiError::invalid("stop", "`stop` must hold strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(v) => {
                return Err(ApiError::invalid(
                    "stop",
                    format!("`stop` must be a string or a list, got {}", type_name(v)),
                ))
            }
        };
        if list.len() > MAX_STOPS || list.iter().any(|s| s.len() > MAX_STOP_BYTES) {
            return Err(ApiError::invalid(
                "stop",
                format!("at most {MAX_STOPS} stop strings of at most {MAX_STOP_BYTES} bytes"),
            ));
        }
        Ok(list)
    }

    fn streaming(&self) -> Result<(bool, bool), ApiError> {
        let stream = self.boolean("stream")?;
        let include_usage = match self.get("stream_options") {
            None => false,
            Some(Value::Object(o)) => match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(ApiError::invalid("stream_options", "`include_usage` must be true or false")),
            },
            Some(_) => return Err(ApiError::invalid("stream_options", "`stream_options` must be an object")),
        };
        Ok((stream, include_usage))
    }
}

/// `POST /v1/chat/completions`.
pub fn chat_request(body: &[u8], ctx: usize) -> Result<GenRequest, ApiError> {
    let f = Fields::parse(body)?;
    let messages = match f.get("messages") {
        Some(Value::Array(a)) if !a.is_empty() => {
            a.iter().enumerate().map(|(i, m)| message(i, m)).collect::<Result<_, _>>()?
        }
        Some(Value::Array(_)) => {
            return Err(ApiError::invalid("messages", "`messages` is empty: send at least one message"))
        }
        Some(v) => {
            return Err(ApiError::invalid("messages", format!("`messages` must be a list, got {}", type_name(v))))
        }
        None => return Err(ApiError::invalid("messages", "`messages` is required")),
    };
    let (stream, include_usage) = f.streaming()?;
    Ok(GenRequest { prompt: Prompt::Chat(messages), params: f.gen_params(false, ctx)?, stream, include_usage })
}

/// `POST /v1/completions`.
pub fn completion_request(body: &[u8], ctx: usize) -> Result<GenRequest, ApiError> {
    let f = Fields::parse(body)?;
    if f.boolean("echo")? {
        return Err(ApiError::invalid("echo", "`echo` is not supported"));
    }
    if f.string("suffix")?.is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid("suffix", "`suffix` (fill-in-the-middle) is not supported"));
    }
    if f.integer("best_of", 1, u64::MAX)?.is_some_and(|n| n > 1) {
        return Err(ApiError::invalid("best_of", "`best_of` > 1 is not supported"));
    }
    let prompt = match f.get("prompt") {
        None => return Err(ApiError::invalid("prompt", "`prompt` is required")),
        Some(Value::Array(a)) if a.len() == 1 && !a[0].is_number() => prompt_input("prompt", &a[0])?,
        Some(Value::Array(a)) if a.len() > 1 && a.iter().all(|v| !v.is_number()) => {
            return Err(ApiError::invalid("prompt", "one prompt per request (`n` and prompt lists are not supported)"))
        }
        Some(v) => prompt_input("prompt", v)?,
    };
    let (stream, include_usage) = f.streaming()?;
    Ok(GenRequest { prompt, params: f.gen_params(true, ctx)?, stream, include_usage })
}

/// `POST /v1/embeddings`.
pub fn embed_request(body: &[u8]) -> Result<EmbedRequest, ApiError> {
    let f = Fields::parse(body)?;
    let inputs = match f.get("input") {
        None => return Err(ApiError::invalid("input", "`input` is required")),
        Some(Value::Array(a)) if a.is_empty() => return Err(ApiError::invalid("input", "`input` is empty")),
        Some(Value::Array(a)) if a.iter().all(Value::is_number) => {
            vec![prompt_input("input", &Value::Array(a.clone()))?]
        }
        Some(Value::Array(a)) => a.iter().map(|v| prompt_input("input", v)).collect::<Result<_, _>>()?,
        Some(v) => vec![prompt_input("input", v)?],
    };
    if inputs.len() > MAX_EMBED_INPUTS {
        return Err(ApiError::invalid("input", format!("at most {MAX_EMBED_INPUTS} inputs per request")));
    }
    let base64 = match f.string("encoding_format")? {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("`encoding_format` must be float or base64, got {other:?}"),
            ))
        }
    };
    Ok(EmbedRequest { inputs, base64 })
}

/// A prompt: a non-empty string or a non-empty list of token ids.
fn prompt_input(param: &str, v: &Value) -> Result<Prompt, ApiError> {
    match v {
        Value::String(s) if s.is_empty() => Err(ApiError::invalid(param, format!("`{param}` is empty"))),
        Value::String(s) => Ok(Prompt::Text(s.clone())),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|t| t.as_u64().filter(|&t| t <= u32::MAX as u64).map(|t| t as u32))
            .collect::<Option<Vec<u32>>>()
            .map(Prompt::Tokens)
            .ok_or_else(|| ApiError::invalid(param, format!("`{param}` must be a string or a list of token ids"))),
        _ => Err(ApiError::invalid(param, format!("`{param}` must be a non-empty string or list of token ids"))),
    }
}

/// One chat message: a known role and text content (a string or a list of text parts).
fn message(i: usize, m: &Value) -> Result<Message, ApiError> {
    let param = format!("messages[{i}]");
    let bad = |msg: String| ApiError::invalid(&param, msg);
    let Value::Object(m) = m else { return Err(bad(format!("{param} must be an object with `role` and `content`"))) };
    let role = match m.get("role") {
        Some(Value::String(r)) => r.as_str(),
        _ => return Err(bad(format!("{param}.role must be a string"))),
    };
    let role = match role {
        "system" | "user" | "assistant" => role,
        // OpenAI's newer name for system instructions.
        "developer" => "system",
        other => return Err(bad(format!("{param}: unknown role {other:?} (use system, user or assistant)"))),
    };
    let content = match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts.iter().map(|p| text_part(p, &param)).collect::<Result<String, _>>()?,
        None | Some(Value::Null) if role == "assistant" => String::new(),
        None | Some(Value::Null) => return Err(bad(format!("{param}.content is required"))),
        Some(v) => {
            return Err(bad(format!("{param}.content must be a string or a list of parts, got {}", type_name(v))))
        }
    };
    Ok(Message::new(role, &content))
}

fn text_part(p: &Value, param: &str) -> Result<String, ApiError> {
    match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
        (Some("text"), Some(t)) => Ok(t.to_string()),
        (Some(kind), _) if kind != "text" => {
            Err(ApiError::invalid(param, format!("{param}: content of type {kind:?} is not supported (text only)")))
        }
        _ => Err(ApiError::invalid(
            param,
            format!("{param}: a content part must be {{\"type\": \"text\", \"text\": ...}}"),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A seed for a request that gives none: different for every request.
fn fresh_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    now ^ COUNTER.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: &str) -> Result<GenRequest, ApiError> {
        chat_request(body.as_bytes(), 100)
    }

    #[test]
    fn a_full_chat_request_reads_every_field() {
        let r = chat(
            r#"{"model":"x","messages":[{"role":"developer","content":"Be brief."},
                {"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],
                "max_tokens":16,"temperature":0,"top_p":0.5,"top_k":3,"min_p":0.1,"seed":-1,"stop":"\n",
                "frequency_penalty":0.5,"logprobs":true,"top_logprobs":2,"stream":true,
                "stream_options":{"include_usage":true},"user":"ignored"}"#,
        )
        .unwrap();
        assert_eq!(r.prompt, Prompt::Chat(vec![Message::new("system", "Be brief."), Message::new("user", "Hi there")]));
        let p = &r.params;
        assert_eq!(
            (p.max_tokens, p.sampler.temperature, p.sampler.top_k, p.sampler.seed),
            (Some(16), 0.0, 3, u64::MAX)
        );
        assert_eq!((p.stop.clone(), p.logprobs, p.frequency_penalty), (vec!["\n".to_string()], Some(2), 0.5));
        assert!(r.stream && r.include_usage);
    }

    #[test]
    fn bad_fields_are_named() {
        let param = |body: &str| chat(body).unwrap_err().param;
        let m = r#""messages":[{"role":"user","content":"x"}]"#;
        for (extra, want) in [
            (r#""temperature":"hot""#, "temperature"),
            (r#""temperature":7"#, "temperature"),
            (r#""max_tokens":0"#, "max_tokens"),
            (r#""max_tokens":101"#, "max_tokens"),
            (r#""max_tokens":1.5"#, "max_tokens"),
            (r#""top_p":0"#, "top_p"),
            (r#""n":2"#, "n"),
            (r#""stop":[1]"#, "stop"),
            (r#""top_logprobs":3"#, "top_logprobs"),
            (r#""stream":"yes""#, "stream"),
            (r#""presence_penalty":-3"#, "presence_penalty"),
        ] {
            assert_eq!(param(&format!("{{{m},{extra}}}")).as_deref(), Some(want), "{extra}");
        }
        assert_eq!(param(r#"{"messages":[]}"#).as_deref(), Some("messages"));
        assert_eq!(param(r#"{"messages":[{"role":"wizard","content":"x"}]}"#).as_deref(), Some("messages[0]"));
        assert_eq!(param(r#"{"messages":[{"role":"user"}]}"#).as_deref(), Some("messages[0]"));
        let img = r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}"#;
        assert!(chat(img).unwrap_err().message.contains("image_url"));
        assert!(chat("{not json").unwrap_err().message.contains("not valid JSON"));
        assert!(chat("[1]").unwrap_err().message.contains("JSON object"));
    }

    #[test]
    fn completion_and_embedding_inputs() {
        let r = completion_request(br#"{"prompt":["Once"],"logprobs":2}"#, 10).unwrap();
        assert_eq!((r.prompt, r.params.logprobs), (Prompt::Text("Once".into()), Some(2)));
        let r = completion_request(br#"{"prompt":[1,2,3]}"#, 10).unwrap();
        assert_eq!(r.prompt, Prompt::Tokens(vec![1, 2, 3]));
        assert!(completion_request(br#"{"prompt":""}"#, 10).is_err());
        assert!(completion_request(br#"{"prompt":"x","echo":true}"#, 10).is_err());
        assert!(completion_request(br#"{"prompt":[-1]}"#, 10).is_err());
        let e = embed_request(br#"{"input":["a","b"],"encoding_format":"base64"}"#).unwrap();
        assert_eq!((e.inputs.len(), e.base64), (2, true));
        assert_eq!(embed_request(br#"{"input":[5,6]}"#).unwrap().inputs, vec![Prompt::Tokens(vec![5, 6])]);
        assert_eq!(
            embed_request(br#"{"input":"x","encoding_format":"hex"}"#).unwrap_err().param.as_deref(),
            Some("encoding_format")
        );
    }
}
