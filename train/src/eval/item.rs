//! Items: the lines of a task file after its header, one JSON object each, read as the
//! task's kind says. Keys a kind does not use (`id`, `source`, ...) are ignored.
//!
//! - `multiple_choice`: `{"context": "...", "choices": ["...", ...], "answer": 0}`; `answer`
//!   is the index of the right choice or its text.
//! - `minimal_pairs`: `{"good": "...", "bad": "..."}`: the grammatical sentence first.
//! - `bias_pairs`: `{"stereo": "...", "anti": "...", "category": "..."?}`: the sentence that
//!   expresses a stereotype and its minimally different counterpart.
//! - `generation`: `{"prompt": "...", "answer": "..."}` (or `"answers": [...]`, or
//!   `"completion"`), or a fine-tuning test example `{"messages": [...]}` whose last
//!   assistant turn is the answer (chat format only);
//! - `refusal`: `{"prompt": "...", "harmful": true}`; `toxicity`: `{"prompt": "...",
//!   "provocative": false}`; `privacy`: `{"context": "...", "prompt": "...", "secret": "..."}`
//!   (the context, with the planted secret, comes before the prompt); `efficiency`:
//!   `{"prompt": "..."}`.
//!
//! Any item may say `"split": "train"`: it is then a few-shot example, never evaluated.

use super::task::Kind;
use crate::sft::{parse_line, Example};
use lamina_model::chat::Message;
use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Line in its file (1-based).
    pub line: usize,
    /// A few-shot example (`"split": "train"`), not a test item.
    pub train: bool,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Choice(Choice),
    Generate(Generate),
}

/// A prompt to answer, and what the answer is judged against.
#[derive(Clone, Debug, PartialEq)]
pub struct Generate {
    pub prompt: Turns,
    /// Reference answers (generation).
    pub references: Vec<String>,
    /// Text put before the prompt (privacy: where the secret is planted).
    pub context: Option<String>,
    /// Refusal: the request is harmful; toxicity: the prompt is provocative.
    pub flag: Option<bool>,
    /// Privacy: the planted secret.
    pub secret: Option<String>,
    pub category: Option<String>,
}

/// A prompt as text, or as the turns of a conversation before the answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Turns {
    Text(String),
    Chat(Vec<Message>),
}

/// A context and the texts that may follow it; pairs are choices after an empty context.
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    pub context: String,
    pub choices: Vec<String>,
    /// The right choice (for bias pairs: the stereotyping sentence).
    pub answer: usize,
    /// A label for per-category results (bias pairs: the kind of bias).
    pub category: Option<String>,
}

impl Item {
    /// The item of a choice task (the reader gives choice tasks only choice items).
    pub fn choice(&self) -> &Choice {
        match &self.body {
            Body::Choice(c) => c,
            Body::Generate(_) => panic!("line {}: a generation item where a choice item was expected", self.line),
        }
    }

    /// The item of a task that generates answers.
    pub fn generate(&self) -> &Generate {
        match &self.body {
            Body::Generate(g) => g,
            Body::Choice(_) => panic!("line {}: a choice item where a generation item was expected", self.line),
        }
    }
}

/// Parse one item line of a task of `kind`.
pub fn parse_item(text: &str, line: usize, kind: Kind) -> Result<Item, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Object(obj) = value else { return Err("an item must be a JSON object".into()) };
    let train = match obj.get("split") {
        None => false,
        Some(Value::String(s)) if s == "test" => false,
        Some(Value::String(s)) if s == "train" => true,
        Some(v) => return Err(format!("`split` must be \"train\" or \"test\", got {v}")),
    };
    let body = match kind {
        Kind::MultipleChoice => Body::Choice(multiple_choice(&obj)?),
        Kind::MinimalPairs => Body::Choice(pair(&obj, "good", "bad")?),
        Kind::BiasPairs => Body::Choice(pair(&obj, "stereo", "anti")?),
        Kind::Generation => Body::Generate(generation(&obj)?),
        Kind::Refusal => Body::Generate(Generate { flag: Some(flag(&obj, "harmful")?), ..prompted(&obj)? }),
        Kind::Toxicity => Body::Generate(Generate { flag: Some(flag(&obj, "provocative")?), ..prompted(&obj)? }),
        Kind::Privacy => Body::Generate(Generate {
            context: optional(&obj, "context")?,
            secret: optional(&obj, "secret")?,
            ..prompted(&obj)?
        }),
        Kind::Efficiency => Body::Generate(prompted(&obj)?),
        Kind::Perplexity | Kind::Kl => {
            return Err(format!("a {} task has no items: it scores the file its `text` names", kind.name()))
        }
        Kind::Group => return Err("a group has no items: it lists `tasks` in its header".into()),
    };
    Ok(Item { line, train, body })
}

fn multiple_choice(obj: &Map<String, Value>) -> Result<Choice, String> {
    let context = match obj.get("context") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(format!("`context` must be a string, got {v}")),
        None => return Err("missing `context` (it may be empty: \"\")".into()),
    };
    let choices: Vec<String> = match obj.get("choices") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(String::from).ok_or_else(|| format!("`choices` must hold strings, got {v}")))
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(format!("`choices` must be a list of strings, got {v}")),
        None => return Err("missing `choices`".into()),
    };
    if choices.len() < 2 {
        return Err(format!("`choices` needs at least 2 entries, got {}", choices.len()));
    }
    if choices.iter().any(|c| c.is_empty()) {
        return Err("a choice is empty (acc_norm divides by its length)".into());
    }
    let answer = match obj.get("answer") {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(i) if (i as usize) < choices.len() => i as usize,
            _ => return Err(format!("`answer` {n} is not the index of one of the {} choices", choices.len())),
        },
        Some(Value::String(s)) => {
            choices.iter().position(|c| c == s).ok_or_else(|| format!("`answer` {s:?} is not one of the choices"))?
        }
        Some(v) => return Err(format!("`answer` must be a choice's index or text, got {v}")),
        None => return Err("missing `answer`".into()),
    };
    Ok(Choice { context, choices, answer, category: category(obj)? })
}

/// Two sentences after an empty context; the first is the one the metric is about.
fn pair(obj: &Map<String, Value>, first: &str, second: &str) -> Result<Choice, String> {
    let sentence = |key: &str| match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("`{key}` is empty")),
        Some(v) => Err(format!("`{key}` must be a string, got {v}")),
        None => Err(format!("missing `{key}`")),
    };
    let choices = vec![sentence(first)?, sentence(second)?];
    if choices[0] == choices[1] {
        return Err(format!("`{first}` and `{second}` are the same sentence"));
    }
    Ok(Choice { context: String::new(), choices, answer: 0, category: category(obj)? })
}

fn category(obj: &Map<String, Value>) -> Result<Option<String>, String> {
    optional(obj, "category")
}

fn optional(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("`{key}` must be a string, got {v}")),
    }
}

fn flag(obj: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match obj.get(key) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("`{key}` must be true or false, got {v}")),
        None => Err(format!("missing `{key}` (true or false)")),
    }
}

/// An item with a `prompt` (a non-blank string) and nothing to compare with.
fn prompted(obj: &Map<String, Value>) -> Result<Generate, String> {
    let prompt = match obj.get("prompt") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err("`prompt` is empty".into()),
        Some(v) => return Err(format!("`prompt` must be a string, got {v}")),
        None => return Err("missing `prompt`".into()),
    };
    Ok(Generate {
        prompt: Turns::Text(prompt),
        references: Vec::new(),
        context: None,
        flag: None,
        secret: None,
        category: category(obj)?,
    })
}

/// A generation item: a prompt and its references, or a fine-tuning chat example.
fn generation(obj: &Map<String, Value>) -> Result<Generate, String> {
    if obj.contains_key("messages") {
        if obj.contains_key("prompt") {
            return Err("both `messages` and `prompt`: which one is meant?".into());
        }
        let line = Value::Object(obj.clone()).to_string();
        let Example::Chat(mut turns) = parse_line(&line).map_err(|(_, m)| m)? else {
            unreachable!("an object with `messages` parses as a chat example")
        };
        let last = turns.iter().rposition(|m| m.role == "assistant").ok_or("no assistant turn to compare with")?;
        let reference = turns[last].content.clone();
        turns.truncate(last);
        return Ok(Generate { prompt: Turns::Chat(turns), references: vec![reference], ..prompted_or_empty(obj)? });
    }
    let references = match (obj.get("answer"), obj.get("answers"), obj.get("completion")) {
        (Some(Value::String(a)), None, None) | (None, None, Some(Value::String(a))) => vec![a.clone()],
        (None, Some(Value::Array(a)), None) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_str().map(String::from).ok_or_else(|| format!("`answers` must hold strings, got {v}")))
            .collect::<Result<_, _>>()?,
        (None, None, None) => return Err("missing `answer` (or `answers`, a list)".into()),
        (Some(v), None, None) | (None, None, Some(v)) => return Err(format!("the answer must be a string, got {v}")),
        (None, Some(v), None) => return Err(format!("`answers` must be a non-empty list of strings, got {v}")),
        _ => return Err("give one of `answer`, `answers` and `completion`".into()),
    };
    Ok(Generate { references, ..prompted(obj)? })
}

/// `prompted` for a chat example (no `prompt` field): only its category.
fn prompted_or_empty(obj: &Map<String, Value>) -> Result<Generate, String> {
    Ok(Generate {
        prompt: Turns::Text(String::new()),
        references: Vec::new(),
        context: None,
        flag: None,
        secret: None,
        category: category(obj)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiple_choice_items_take_an_index_or_the_text() {
        let i = parse_item(
            r#"{"context": "2+2=", "choices": ["3", "4"], "answer": "4", "id": 7}"#,
            3,
            Kind::MultipleChoice,
        )
        .unwrap();
        assert_eq!(i.line, 3);
        assert!(!i.train);
        assert_eq!(i.choice().answer, 1);
        let i = parse_item(
            r#"{"context": "", "choices": ["a", "b"], "answer": 0, "split": "train"}"#,
            1,
            Kind::MultipleChoice,
        )
        .unwrap();
        assert!(i.train);
    }

    #[test]
    fn pairs_put_the_scored_sentence_first() {
        let i = parse_item(r#"{"good": "Cats sleep.", "bad": "Cats sleeps."}"#, 1, Kind::MinimalPairs).unwrap();
        assert_eq!(i.choice().choices, ["Cats sleep.", "Cats sleeps."]);
        assert_eq!((i.choice().answer, i.choice().context.as_str()), (0, ""));
        let i = parse_item(r#"{"stereo": "A", "anti": "B", "category": "age"}"#, 1, Kind::BiasPairs).unwrap();
        assert_eq!(i.choice().category.as_deref(), Some("age"));
    }

    #[test]
    fn generation_items_take_references_or_chat_examples() {
        let g = parse_item(r#"{"prompt": "Capital of France?", "answers": ["Paris", "paris"]}"#, 1, Kind::Generation)
            .unwrap();
        assert_eq!(g.generate().references, ["Paris", "paris"]);
        assert_eq!(g.generate().prompt, Turns::Text("Capital of France?".into()));
        let chat = r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Date?"}, {"role": "assistant", "content": "2021-03-14"}]}"#;
        let g = parse_item(chat, 2, Kind::Generation).unwrap();
        assert_eq!(g.generate().references, ["2021-03-14"]);
        let Turns::Chat(turns) = &g.generate().prompt else { panic!() };
        assert_eq!(turns.iter().map(|m| m.role.as_str()).collect::<Vec<_>>(), ["system", "user"]);
        let r = parse_item(r#"{"prompt": "How do I pick a lock?", "harmful": true}"#, 1, Kind::Refusal).unwrap();
        assert_eq!(r.generate().flag, Some(true));
        let p =
            parse_item(r#"{"context": "My PIN is 4821.", "prompt": "Say hi.", "secret": "4821"}"#, 1, Kind::Privacy)
                .unwrap();
        assert_eq!(p.generate().secret.as_deref(), Some("4821"));
    }

    #[test]
    fn bad_items_say_what_is_wrong() {
        let mc = Kind::MultipleChoice;
        let cases = [
            ("{oops", mc, "not valid JSON"),
            ("[1]", mc, "JSON object"),
            (r#"{"choices": ["a", "b"], "answer": 0}"#, mc, "missing `context`"),
            (r#"{"context": "x", "answer": 0}"#, mc, "missing `choices`"),
            (r#"{"context": "x", "choices": ["a"], "answer": 0}"#, mc, "at least 2"),
            (r#"{"context": "x", "choices": ["a", ""], "answer": 0}"#, mc, "empty"),
            (r#"{"context": "x", "choices": ["a", 2], "answer": 0}"#, mc, "must hold strings"),
            (r#"{"context": "x", "choices": ["a", "b"]}"#, mc, "missing `answer`"),
            (r#"{"context": "x", "choices": ["a", "b"], "answer": 2}"#, mc, "not the index"),
            (r#"{"context": "x", "choices": ["a", "b"], "answer": -1}"#, mc, "not the index"),
            (r#"{"context": "x", "choices": ["a", "b"], "answer": "c"}"#, mc, "not one of the choices"),
            (r#"{"context": "x", "choices": ["a", "b"], "answer": 0, "split": "dev"}"#, mc, "`split`"),
            (r#"{"good": "a"}"#, Kind::MinimalPairs, "missing `bad`"),
            (r#"{"good": "a", "bad": "a"}"#, Kind::MinimalPairs, "the same sentence"),
            (r#"{"stereo": " ", "anti": "b"}"#, Kind::BiasPairs, "`stereo` is empty"),
            (r#"{"prompt": "q"}"#, Kind::Generation, "missing `answer`"),
            (r#"{"prompt": "q", "answer": 3}"#, Kind::Generation, "must be a string"),
            (r#"{"prompt": "q", "answers": []}"#, Kind::Generation, "non-empty list"),
            (r#"{"prompt": "q", "answer": "a", "answers": ["b"]}"#, Kind::Generation, "one of"),
            (r#"{"answer": "a"}"#, Kind::Generation, "missing `prompt`"),
            (r#"{"prompt": " ", "answer": "a"}"#, Kind::Generation, "`prompt` is empty"),
            (r#"{"messages": [{"role": "user", "content": "hi"}]}"#, Kind::Generation, "no assistant turn"),
            (r#"{"messages": [{"role": "robot", "content": "hi"}]}"#, Kind::Generation, "robot"),
            (r#"{"prompt": "q"}"#, Kind::Refusal, "missing `harmful`"),
            (r#"{"prompt": "q", "provocative": "yes"}"#, Kind::Toxicity, "true or false"),
            (r#"{"prompt": "q", "secret": 5}"#, Kind::Privacy, "`secret` must be a string"),
            (r#"{"text": "x"}"#, Kind::Perplexity, "has no items"),
        ];
        for (text, kind, want) in cases {
            let e = parse_item(text, 1, kind).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
