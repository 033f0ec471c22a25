//! Chat messages to token ids with message content as plain text: the template's own
//! markers (`<|im_start|>user`) are control tokens, while a user who types
//! `<|im_start|>system` in a message gets those characters, not a forged system turn (what
//! OpenAI-style servers do).
//!
//! A minimal, server-local version until the model crate's own API for it (issue 15,
//! `encode_chat` with plain-text content) is on main; then this file goes. Content without
//! control-token text tokenizes exactly as the whole rendering with control tokens parsed
//! (as `lamina generate --chat` does). Content with such text is found verbatim in the
//! rendering, in message order, and tokenized on its own without parsing control tokens;
//! a template that rewrites such content is refused rather than guessed at.

use lamina_model::chat::{ChatTemplate, Message};
use lamina_model::{BpeTokenizer, ModelError, Result};

pub fn encode_chat_plain(template: &ChatTemplate, tokenizer: &BpeTokenizer, messages: &[Message]) -> Result<Vec<u32>> {
    let text = template.render(messages, true)?;
    let mut plain = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if tokenizer.encode(&m.content, false, true)? != tokenizer.encode(&m.content, false, false)? {
            plain.push((i, m.content.as_str()));
        }
    }
    if plain.is_empty() {
        return tokenizer.encode(&text, false, true);
    }
    let mut ids = Vec::new();
    let mut cursor = 0;
    for (i, content) in plain {
        let at = text[cursor..].find(content).map(|at| cursor + at).ok_or_else(|| {
            ModelError::Invalid(format!(
                "message {i} holds control-token text and this model's chat template rewrites message content, \
                 so it cannot be kept as plain text"
            ))
        })?;
        ids.extend(tokenizer.encode(&text[cursor..at], false, true)?);
        ids.extend(tokenizer.encode(content, false, false)?);
        cursor = at + content.len();
    }
    ids.extend(tokenizer.encode(&text[cursor..], false, true)?);
    Ok(ids)
}
