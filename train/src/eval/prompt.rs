//! Prompts as lm-evaluation-harness lays them out: the task's description, then the
//! few-shot examples (each its text, the target delimiter and its answer) joined by the
//! few-shot delimiter, then the delimiter again and the item's text. In the chat format the
//! description is a system turn and each example a user turn answered by an assistant turn
//! (the harness's `fewshot_as_multiturn`), rendered with the model's template up to the
//! assistant's turn.

use super::error::Result;
use super::task::{PromptFormat, TaskSpec};
use lamina_model::chat::{ChatTemplate, Message};

/// A prompt's text; `special`: it holds control-token text (a chat template's) that must
/// become control tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    pub text: String,
    pub special: bool,
}

/// One few-shot example: its text and its answer.
#[derive(Clone, Copy, Debug)]
pub struct Shot<'a> {
    pub text: &'a str,
    pub answer: &'a str,
}

/// The prompt for an item whose text is `text`, after `shots`.
pub fn build(spec: &TaskSpec, text: &str, shots: &[Shot<'_>], template: &ChatTemplate) -> Result<Prompt> {
    match spec.format {
        PromptFormat::Raw => Ok(Prompt { text: raw(spec, text, shots), special: false }),
        PromptFormat::Chat => {
            let messages = chat_turns(spec, shots, &[Message::new("user", text)]);
            Ok(Prompt { text: template.render(&messages, true)?, special: true })
        }
    }
}

/// The conversation before the answer in the chat format: the description as a system
/// turn, each few-shot example as a user turn and its answer, then the item's `turns`.
pub fn chat_turns(spec: &TaskSpec, shots: &[Shot<'_>], turns: &[Message]) -> Vec<Message> {
    let mut messages = Vec::with_capacity(2 * shots.len() + turns.len() + 1);
    if !spec.description.is_empty() {
        messages.push(Message::new("system", &spec.description));
    }
    for s in shots {
        messages.push(Message::new("user", s.text));
        messages.push(Message::new("assistant", s.answer));
    }
    messages.extend_from_slice(turns);
    messages
}

fn raw(spec: &TaskSpec, text: &str, shots: &[Shot<'_>]) -> String {
    let mut out = spec.description.clone();
    for s in shots {
        out.push_str(s.text);
        out.push_str(&spec.target_delimiter);
        out.push_str(s.answer);
        out.push_str(&spec.fewshot_delimiter);
    }
    out.push_str(text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamina_model::chat::CHATML;
    use serde_json::json;
    use std::path::Path;

    fn spec(extra: serde_json::Value) -> TaskSpec {
        let mut h = json!({"lamina_task": 1, "kind": "multiple_choice"});
        h.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        TaskSpec::parse(&h, Path::new("."), "t").unwrap()
    }

    #[test]
    fn raw_prompts_follow_the_harness_layout() {
        let t = ChatTemplate::new(CHATML, "", "").unwrap();
        let shots = [Shot { text: "Q: 1+1?\nA:", answer: "2" }, Shot { text: "Q: 2+2?\nA:", answer: "4" }];
        let p = build(&spec(json!({"description": "Arithmetic.\n\n"})), "Q: 3+3?\nA:", &shots, &t).unwrap();
        assert_eq!(p.text, "Arithmetic.\n\nQ: 1+1?\nA: 2\n\nQ: 2+2?\nA: 4\n\nQ: 3+3?\nA:");
        assert!(!p.special);
        assert_eq!(build(&spec(json!({})), "x", &[], &t).unwrap().text, "x");
    }

    #[test]
    fn chat_prompts_are_turns() {
        let t = ChatTemplate::new(CHATML, "", "").unwrap();
        let shots = [Shot { text: "1+1?", answer: "2" }];
        let p = build(&spec(json!({"format": "chat", "description": "Be brief."})), "3+3?", &shots, &t).unwrap();
        assert!(p.special);
        assert_eq!(
            p.text,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n2<|im_end|>\n\
             <|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
