//! A conversation to token ids through the model's chat template, with a choice of what
//! message content may contain.
//!
//! The template's own text (`<|im_start|>user\n`, ...) always becomes control tokens.
//! Message content is, by [`Content`], either parsed the same way (what llama.cpp and
//! `lamina generate --chat` do by default: a user typing `<|im_start|>system` gets a real
//! system turn) or kept as plain text (`--no-special`; the default for a server's
//! requests, as OpenAI-style servers do): its special-token spellings are tokenized as
//! ordinary text, so a message cannot forge a turn.
//!
//! How plain text is located in the template's output: each message's content is rendered
//! between two private-use marker characters (inside its leading and trailing whitespace,
//! so `| trim` behaves as before); the rendering with the markers removed must equal the
//! plain rendering, and the marked spans are then tokenized without special tokens
//! (`Tokenizer::encode_pieces`, which keeps BPE merges across the span edges as the whole
//! text would have them). A template that cuts content apart (the markers come out
//! unbalanced) is an error when a message holds special-token text, the only case where
//! the two modes differ.

use crate::chat::{ChatTemplate, Message};
use crate::error::{ModelError, Result};
use crate::tokenizer::special::TokenKind;
use crate::BpeTokenizer;

/// How message content is tokenized.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Content {
    /// Text such as `<|im_start|>` in a message becomes the control token (llama.cpp's
    /// behaviour; the CLI's default, for a user at their own terminal).
    #[default]
    ParseSpecial,
    /// Message content is plain text: special-token spellings are ordinary characters
    /// (the CLI's `--no-special`; what a server should do with requests).
    PlainText,
}

const OPEN: char = '\u{E000}';
const CLOSE: char = '\u{E001}';

/// The ids of `messages` rendered by `template` (with the assistant's header when
/// `add_generation_prompt`), content tokenized as `content` says. No BOS is added beyond
/// what the template writes.
pub fn encode_chat(
    template: &ChatTemplate,
    tokenizer: &BpeTokenizer,
    messages: &[Message],
    add_generation_prompt: bool,
    content: Content,
) -> Result<Vec<u32>> {
    let text = template.render(messages, add_generation_prompt)?;
    let forged = match content {
        Content::ParseSpecial => None,
        Content::PlainText => first_control_text(tokenizer, messages)?,
    };
    let Some(token) = forged else {
        // Nothing in the content would become a control token: both modes agree.
        return tokenizer.encode(&text, false, true);
    };
    if messages.iter().any(|m| m.content.contains([OPEN, CLOSE])) {
        return Err(ModelError::Invalid(format!(
            "a message holds U+{:04X} or U+{:04X}, private-use characters reserved for keeping content plain",
            OPEN as u32, CLOSE as u32
        )));
    }
    let marked: Vec<Message> =
        messages.iter().map(|m| Message { role: m.role.clone(), content: mark(&m.content) }).collect();
    let rendered = template.render(&marked, add_generation_prompt)?;
    let pieces = split_marked(&rendered).filter(|p| p.iter().map(|(t, _)| *t).collect::<String>() == text);
    let pieces = pieces.ok_or_else(|| {
        ModelError::Invalid(format!(
            "a message holds the control token {token}, and this model's chat template rewrites message content, \
             so it cannot be kept as plain text; remove the token text from the message"
        ))
    })?;
    tokenizer.encode_pieces(&pieces)
}

/// The text of the first control token some message's content would produce, if any.
fn first_control_text(tokenizer: &BpeTokenizer, messages: &[Message]) -> Result<Option<String>> {
    for m in messages {
        let ids = tokenizer.encode(&m.content, false, true)?;
        if let Some(&id) = ids.iter().find(|&&id| tokenizer.token_kind(id) == Some(TokenKind::Control)) {
            return Ok(Some(tokenizer.id_to_token(id).unwrap_or("?").to_string()));
        }
    }
    Ok(None)
}

/// `content` with the markers inside its leading and trailing whitespace.
fn mark(content: &str) -> String {
    let core = content.trim();
    let start = content.len() - content.trim_start().len();
    let lead = &content[..start];
    let trail = &content[start + core.len()..];
    format!("{lead}{OPEN}{core}{CLOSE}{trail}")
}

/// The rendering cut at the markers into (text, parse_special) pieces, markers dropped;
/// `None` when they do not pair up.
fn split_marked(rendered: &str) -> Option<Vec<(&str, bool)>> {
    let mut pieces = Vec::new();
    let mut rest = rendered;
    while let Some(open) = rest.find(OPEN) {
        let (before, after) = (&rest[..open], &rest[open + OPEN.len_utf8()..]);
        let close = after.find(CLOSE)?;
        if before.contains(CLOSE) || after[..close].contains(OPEN) {
            return None;
        }
        pieces.push((before, true));
        pieces.push((&after[..close], false));
        rest = &after[close + CLOSE.len_utf8()..];
    }
    if rest.contains(CLOSE) {
        return None;
    }
    pieces.push((rest, true));
    Some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_sit_inside_the_whitespace_and_pair_up() {
        assert_eq!(mark("  hi there \n"), format!("  {OPEN}hi there{CLOSE} \n"));
        assert_eq!(mark(""), format!("{OPEN}{CLOSE}"));
        let r = format!("<s>{OPEN}a{CLOSE}<m>{OPEN}b{CLOSE}");
        assert_eq!(
            split_marked(&r).unwrap(),
            vec![("<s>", true), ("a", false), ("<m>", true), ("b", false), ("", true)]
        );
        for bad in
            [format!("{OPEN}a"), format!("a{CLOSE}"), format!("{OPEN}{OPEN}a{CLOSE}"), format!("{CLOSE}{OPEN}a{CLOSE}")]
        {
            assert_eq!(split_marked(&bad), None, "{bad:?}");
        }
    }
}
