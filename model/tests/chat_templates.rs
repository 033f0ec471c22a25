//! Real models' chat templates (llama.cpp's `models/templates/*.jinja`, fetched by
//! `scripts/fetch-llama-vocab.sh`) render exactly as transformers' `apply_chat_template`
//! renders them with Python jinja2: the texts, and the conversations a template refuses,
//! but for one documented difference: a loop over `tools` (none) raises in Python and
//! renders nothing in minijinja.
//! Fixture: tests/fixtures/chat_templates/expected.json, made by
//! scripts/reference/chat_templates_reference.py.

use lamina_model::chat::{ChatTemplate, Message};
use serde_json::Value;

/// The fixture's fixed clock, 2024-07-26 09:05:03 UTC, for the templates that print today.
const NOW: i64 = 1_721_984_703;

#[test]
fn templates_render_as_transformers_renders_them() {
    let Some(dir) = lamina_testkit::llama_vocab() else { return };
    let path = lamina_testkit::fixture("chat_templates/expected.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(fixture["now"], "2024-07-26T09:05:03");
    let (bos, eos) = (fixture["bos_token"].as_str().unwrap(), fixture["eos_token"].as_str().unwrap());
    let conversations = &fixture["conversations"];
    let cases = fixture["cases"].as_array().unwrap();
    let (mut report, mut rendered, mut refused, mut none_loops) = (Vec::new(), 0, 0, 0);
    for case in cases {
        let name = case["template"].as_str().unwrap();
        let source = std::fs::read_to_string(dir.join("templates").join(name)).unwrap();
        let messages: Vec<Message> = conversations[case["conversation"].as_str().unwrap()]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| Message::new(m["role"].as_str().unwrap(), m["content"].as_str().unwrap()))
            .collect();
        let agp = case["add_generation_prompt"].as_bool().unwrap();
        let got = ChatTemplate::new(&source, bos, eos).and_then(|t| t.with_clock(NOW).render(&messages, agp));
        let what = format!("{name} {} (add_generation_prompt {agp})", case["conversation"]);
        match (case.get("rendered").and_then(Value::as_str), got) {
            (Some(want), Ok(got)) if got == want => rendered += 1,
            (Some(want), Ok(got)) => report.push(format!("{what}:\n  jinja2 {want:?}\n  lamina {got:?}")),
            (Some(_), Err(e)) => report.push(format!("{what}: jinja2 renders it, lamina fails: {e}")),
            (None, Err(_)) => refused += 1,
            (None, Ok(_)) if case["error"] == "TypeError: 'NoneType' object is not iterable" => none_loops += 1,
            (None, Ok(got)) => report.push(format!("{what}: jinja2 raises {}, lamina renders {got:?}", case["error"])),
        }
    }
    eprintln!(
        "{} cases: {rendered} rendered alike, {refused} refused by both, {none_loops} loops over none (Python raises)",
        cases.len()
    );
    assert!(report.is_empty(), "{} of {} cases differ:\n{}", report.len(), cases.len(), report.join("\n"));
}
