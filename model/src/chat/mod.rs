//! Chat templates: the model's own Jinja template (GGUF `tokenizer.chat_template` or
//! Hugging Face's `tokenizer_config.json`), rendered with minijinja as `transformers`
//! renders it, with ChatML as the fallback for models that ship none. A template comes
//! from the model file, so it is untrusted: its work (minijinja's fuel) and the size of
//! its output are bounded, and a template beyond either is a clear error, not a hang.
//!
//! "As transformers renders it" means its environment (`_compile_jinja_template`):
//! `trim_blocks` and `lstrip_blocks`, loop controls, Python's string methods, a `tojson`
//! that is Python's `json.dumps`, `raise_exception`, `strftime_now`, the
//! `{% generation %}` block (rendered as its body), and the variables of
//! `apply_chat_template`: `messages`, `tools` and `documents` (none),
//! `add_generation_prompt`, `bos_token`, `eos_token`. One difference remains: a `for`
//! loop over none renders nothing here where Python raises TypeError (templates that loop
//! over `tools` without checking it render a prompt with no tools instead of failing).

mod pyjson;
mod strftime;

use crate::error::{ModelError, Result};
use serde::Serialize;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Message {
        Message { role: role.into(), content: content.into() }
    }
}

/// ChatML, used when a model has no template of its own.
pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Instructions one rendering may run. Real templates take a few hundred per message;
/// nested loops over `range(100000)` would take 10^10.
const FUEL: u64 = 20_000_000;
/// Output one rendering may produce beyond four times the messages' own text.
const OUTPUT_SLACK: usize = 1 << 20;

pub struct ChatTemplate {
    env: minijinja::Environment<'static>,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    /// Compile `source`; `bos`/`eos` are the token strings templates may reference.
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<ChatTemplate> {
        let mut env = minijinja::Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Templates written for transformers call Python string methods (.strip(), ...).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
        });
        env.add_filter("tojson", pyjson::tojson);
        // Python: None is not iterable (templates test `tools is iterable` before
        // `tools | length`); minijinja's own test says it is.
        env.add_test("iterable", |v: minijinja::Value| !v.is_none() && v.try_iter().is_ok());
        env.add_template_owned("chat", generation_blocks_as_if(source))
            .map_err(|e| ModelError::Invalid(format!("the chat template does not compile: {e}")))?;
        let template = ChatTemplate { env, bos: bos.into(), eos: eos.into() };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        Ok(template.with_clock(now))
    }

    /// The same template with `strftime_now` reading a fixed time (seconds since the Unix
    /// epoch, UTC) instead of the clock: for reproducible prompts and tests.
    pub fn with_clock(mut self, unix_seconds: i64) -> ChatTemplate {
        self.env.add_function("strftime_now", move |format: String| strftime::strftime(unix_seconds, &format));
        self
    }

    /// The conversation as the model expects it; with `add_generation_prompt`, ending
    /// with the header of the assistant's turn.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let t = self.env.get_template("chat").expect("added in new()");
        let limit = 4 * messages.iter().map(|m| m.content.len() + m.role.len()).sum::<usize>() + OUTPUT_SLACK;
        let mut out = Capped { text: Vec::new(), limit };
        let ctx = minijinja::context! {
            messages => messages,
            tools => (),
            documents => (),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        };
        match t.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.text)
                .map_err(|_| ModelError::Invalid("the chat template's output is not UTF-8".into())),
            Err(_) if out.text.len() >= limit => Err(ModelError::Invalid(format!(
                "the chat template produced more than {limit} bytes for this conversation: refusing it (a hostile template?)"
            ))),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(ModelError::Invalid(format!(
                "the chat template ran more than {FUEL} instructions for this conversation: refusing it (a hostile template?)"
            ))),
            Err(e) => Err(ModelError::Invalid(format!("rendering the chat template failed: {e}"))),
        }
    }
}

/// A writer that fails once `limit` bytes are written.
struct Capped {
    text: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.text.len() + buf.len() > self.limit {
            self.text.extend_from_slice(&buf[..self.limit - self.text.len()]);
            return Err(std::io::Error::other("chat template output over its limit"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// transformers' `{% generation %}...{% endgeneration %}` (which marks the assistant's
/// tokens for training masks and renders its body) as `{% if true %}...{% endif %}`,
/// keeping the tags' whitespace control.
fn generation_blocks_as_if(source: &str) -> String {
    let tag = |body: &str| {
        let re = format!(r"\{{%([-+]?)\s*{body}\s*([-+]?)%\}}");
        fancy_regex::Regex::new(&re).expect("a valid pattern")
    };
    let s = tag("generation").replace_all(source, "{%${1} if true ${2}%}");
    tag("endgeneration").replace_all(&s, "{%${1} endif ${2}%}").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_renders_turns_and_the_generation_prompt() {
        let t = ChatTemplate::new(CHATML, "", "").unwrap();
        let s = t.render(&[Message::new("system", "Be brief."), Message::new("user", "Hi")], true).unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn hostile_templates_are_stopped_with_a_clear_error() {
        let m = [Message::new("user", "hi")];
        let loops = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let silent = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}";
        let big = "{% for i in range(100) %}{{ 'x' * 1000000 }}{% endfor %}";
        for (src, want) in [(loops, "bytes"), (silent, "instructions"), (big, "bytes")] {
            let t = ChatTemplate::new(src, "", "").unwrap();
            let start = std::time::Instant::now();
            let e = t.render(&m, true).unwrap_err().to_string();
            assert!(e.contains(want) && e.contains("hostile"), "{e}");
            assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
        }
    }

    #[test]
    fn python_methods_and_raise_exception_work() {
        let t = ChatTemplate::new("{{ messages[0]['content'].strip() }}", "", "").unwrap();
        assert_eq!(t.render(&[Message::new("user", "  x  ")], false).unwrap(), "x");
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        assert!(t.render(&[], false).unwrap_err().to_string().contains("no system role"));
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
    }

    #[test]
    fn generation_blocks_render_their_body() {
        let src = "{% for m in messages %}{%- generation -%} [{{ m.content }}] {%- endgeneration %}{% endfor %}";
        let t = ChatTemplate::new(src, "", "").unwrap();
        assert_eq!(t.render(&[Message::new("user", "a"), Message::new("assistant", "b")], false).unwrap(), "[a][b]");
    }

    #[test]
    fn blocks_trim_like_transformers() {
        let t = ChatTemplate::new(
            "{% for m in messages %}\n  {% if true %}\n{{ m.content }}\n  {% endif %}\n{% endfor %}",
            "",
            "",
        )
        .unwrap();
        assert_eq!(t.render(&[Message::new("user", "a")], false).unwrap(), "a\n");
    }
}
