//! Items: the lines of a task file after its header, one JSON object each, read as the
//! task's kind says. Keys a kind does not use (`id`, `source`, ...) are ignored.
//!
//! - `multiple_choice`: `{"context": "...", "choices": ["...", ...], "answer": 0}`; `answer`
//!   is the index of the right choice or its text.
//! - `minimal_pairs`: `{"good": "...", "bad": "..."}`: the grammatical sentence first.
//! - `bias_pairs`: `{"stereo": "...", "anti": "...", "category": "..."?}`: the sentence that
//!   expresses a stereotype and its minimally different counterpart.
//!
//! Any item may say `"split": "train"`: it is then a few-shot example, never evaluated.

use super::task::Kind;
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
    pub fn choice(&self) -> &Choice {
        match &self.body {
            Body::Choice(c) => c,
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
    match obj.get("category") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("`category` must be a string, got {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiple_choice_items_take_an_index_or_the_text() {
        let i = parse_item(r#"{"context": "2+2=", "choices": ["3", "4"], "answer": "4", "id": 7}"#, 3, Kind::MultipleChoice)
            .unwrap();
        assert_eq!(i.line, 3);
        assert!(!i.train);
        assert_eq!(i.choice().answer, 1);
        let i = parse_item(r#"{"context": "", "choices": ["a", "b"], "answer": 0, "split": "train"}"#, 1, Kind::MultipleChoice)
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
        ];
        for (text, kind, want) in cases {
            let e = parse_item(text, 1, kind).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
