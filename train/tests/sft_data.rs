//! Fine-tuning data end to end: examples -> tokens and loss masks, with a tiny tokenizer
//! (always) and with SmolLM2's real tokenizer and ChatML template (when the model is
//! present); the report's counts; the shipped dataset in data/sft/.

mod support;

use lamina_model::chat::{ChatTemplate, Message, CHATML};
use lamina_train::sft::*;
use std::collections::BTreeSet;
use support::*;

fn chat(turns: &[(&str, &str)]) -> Example {
    Example::Chat(turns.iter().map(|(r, c)| Message::new(r, c)).collect())
}

fn opts(max_len: usize, prompt_format: PromptFormat) -> EncodeOptions {
    EncodeOptions { max_len, prompt_format }
}

#[test]
fn text_scores_every_token_after_bos_and_ends_with_eos() {
    let tok = tiny_tokenizer();
    let enc = Encoder::new(&tok, None, EncodeOptions::default()).unwrap();
    let o = enc.encode(&Example::Text("hello".into())).unwrap();
    let e = &o.encoded;
    let mut want = vec![ENDOFTEXT];
    want.extend("hello".bytes().map(|b| tok.token_to_id(&byte_to(b)).unwrap()));
    want.push(ENDOFTEXT);
    assert_eq!(e.tokens, want);
    // Shifted labels: position i predicts token i + 1; BOS is never a target, EOS is.
    let mut labels: Vec<i32> = want[1..].iter().map(|&t| t as i32).collect();
    labels.push(IGNORE);
    assert_eq!(e.labels, labels);
    assert_eq!(e.scored(), 6);
    assert!(!o.truncated && !o.boundary_merge);
    // Control-token text in plain text stays text.
    let o = enc.encode(&Example::Text("<|im_end|>".into())).unwrap();
    assert!(!o.encoded.tokens[1..o.encoded.len() - 1].contains(&IM_END));
}

fn byte_to(b: u8) -> String {
    lamina_model::bpe::byte_level::byte_to_char()[b as usize].to_string()
}

#[test]
fn raw_prompt_completion_scores_the_completion_and_eos_only() {
    let tok = tiny_tokenizer();
    let enc = Encoder::new(&tok, None, opts(64, PromptFormat::Raw)).unwrap();
    let ex = Example::PromptCompletion { system: None, prompt: "Q: 2+2? A:".into(), completion: " 4".into() };
    let e = enc.encode(&ex).unwrap().encoded;
    assert_eq!(scored_text(&tok, &e), " 4<|endoftext|>");
    let p = enc.eval_prompt(&ex).unwrap();
    assert_eq!(tok.decode(&p.ids, false).unwrap(), "<|endoftext|>Q: 2+2? A:");
    assert_eq!(p.ids.as_slice(), &e.tokens[..p.ids.len()], "the eval prompt is the training prefix");
    assert_ne!(e.labels[p.ids.len() - 1], IGNORE, "the first answer token is scored right after the prompt");
    assert!(e.labels[..p.ids.len() - 1].iter().all(|&l| l == IGNORE));
    assert_eq!(p.reference, " 4");
    // "ab" + "cd": the merge "b c" would join the pieces in the whole text; the pieces win
    // (inference tokenizes the prompt alone) and the report counts it.
    let ab = Example::PromptCompletion { system: None, prompt: "ab".into(), completion: "cd".into() };
    let o = enc.encode(&ab).unwrap();
    assert!(o.boundary_merge);
    assert_eq!(scored_text(&tok, &o.encoded), "cd<|endoftext|>");
    assert_eq!(o.encoded.len(), 6, "BOS a b c d EOS");
}

#[test]
fn chat_scores_assistant_turns_through_their_end_of_turn_token() {
    let tok = tiny_tokenizer();
    let template = ChatTemplate::new(CHATML, "<|endoftext|>", "<|endoftext|>").unwrap();
    let enc = Encoder::new(&tok, Some(&template), EncodeOptions::default()).unwrap();
    let ex = chat(&[
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello"),
        ("user", "Bye"),
        ("assistant", "Ciao"),
    ]);
    let o = enc.encode(&ex).unwrap();
    let e = &o.encoded;
    assert!(!o.boundary_merge);
    assert_eq!(scored_text(&tok, e), "Hello<|im_end|>Ciao<|im_end|>");
    let text = template
        .render(
            &match &ex {
                Example::Chat(m) => m.clone(),
                _ => unreachable!(),
            },
            false,
        )
        .unwrap();
    assert_eq!(tok.decode(&e.tokens, false).unwrap(), text, "the tokens are the rendered conversation");
    assert_eq!(e.tokens[0], IM_START, "a chat template writes its own specials; no BOS added");
    // The eval prompt: everything before the last answer, ending with the assistant header.
    let p = enc.eval_prompt(&ex).unwrap();
    assert!(tok.decode(&p.ids, false).unwrap().ends_with("Bye<|im_end|>\n<|im_start|>assistant\n"));
    assert_eq!(p.ids.as_slice(), &e.tokens[..p.ids.len()]);
    assert_eq!((p.reference.as_str(), p.question.as_str()), ("Ciao", "Bye"));
    // Prompt/completion through the template is the same as a two-turn chat.
    let pc = Example::PromptCompletion { system: None, prompt: "Hi".into(), completion: "Hello".into() };
    assert_eq!(
        enc.encode(&pc).unwrap().encoded,
        enc.encode(&chat(&[("user", "Hi"), ("assistant", "Hello")])).unwrap().encoded
    );
}

#[test]
fn unusable_examples_are_skipped_with_a_reason() {
    let tok = tiny_tokenizer();
    let template = ChatTemplate::new(CHATML, "", "").unwrap();
    let enc = Encoder::new(&tok, Some(&template), opts(8, PromptFormat::Template)).unwrap();
    let reason = |e: &Example| enc.encode(e).unwrap_err().0;
    // Content that would forge a turn boundary.
    assert_eq!(reason(&chat(&[("user", "hi<|im_end|>"), ("assistant", "x")])), SkipReason::SpecialTokenText);
    // A long prompt pushes the whole answer past max_len.
    assert_eq!(reason(&chat(&[("user", "a long question"), ("assistant", "x")])), SkipReason::NothingScored);
    // No template: chat cannot be laid out.
    let bare = Encoder::new(&tok, None, EncodeOptions::default()).unwrap();
    assert_eq!(bare.encode(&chat(&[("user", "q"), ("assistant", "a")])).unwrap_err().0, SkipReason::Template);
    assert_eq!(bare.eval_prompt(&Example::Text("t".into())).unwrap_err().0, SkipReason::NoReference);
    // A template whose prefixes are not prefixes of the whole (it numbers turns from the end).
    let odd = ChatTemplate::new(
        "{% for m in messages %}[{{ messages|length - loop.index }}]{{ m.content }}{% endfor %}",
        "",
        "",
    )
    .unwrap();
    let enc_odd = Encoder::new(&tok, Some(&odd), EncodeOptions::default()).unwrap();
    assert_eq!(enc_odd.encode(&chat(&[("user", "q"), ("assistant", "a")])).unwrap_err().0, SkipReason::Template);
    assert!(Encoder::new(&tok, None, opts(0, PromptFormat::Raw)).is_err());
}

#[test]
fn truncation_keeps_the_target_of_the_last_position() {
    let tok = tiny_tokenizer();
    let enc = Encoder::new(&tok, None, opts(4, PromptFormat::Raw)).unwrap();
    let full = Encoder::new(&tok, None, opts(64, PromptFormat::Raw))
        .unwrap()
        .encode(&Example::Text("abcdefg".into()))
        .unwrap();
    let o = enc.encode(&Example::Text("abcdefg".into())).unwrap();
    assert!(o.truncated && !full.truncated);
    assert_eq!(o.encoded.tokens, full.encoded.tokens[..4]);
    assert_eq!(o.encoded.labels, full.encoded.labels[..4]);
    assert_eq!(o.encoded.labels[3], full.encoded.tokens[4] as i32);
}

#[test]
fn a_file_report_counts_every_line() {
    let tok = tiny_tokenizer();
    let template = ChatTemplate::new(CHATML, "", "").unwrap();
    let enc = Encoder::new(&tok, Some(&template), opts(40, PromptFormat::Template)).unwrap();
    let dir = TempDir::new("report");
    let lines = [
        r#"{"text": "fine"}"#,
        r#"{"prompt": "p", "completion": "c"}"#,
        r#"{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}"#,
        "not json",
        r#"{"messages": [{"role": "user", "content": "<|im_start|>"}, {"role": "assistant", "content": "a"}]}"#,
        r#"{"text": "a text longer than forty tokens, so it is cut to the first forty of them"}"#,
        r#"{"messages": [{"role": "user", "content": "a question far too long to leave room for the answer"}, {"role": "assistant", "content": "a"}]}"#,
        r#"{"messages": [{"role": "bot", "content": "a"}]}"#,
    ];
    let path = dir.path("d.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let (encoded, report) = load_encoded(&path, &enc, false).unwrap();
    assert_eq!((report.read, report.kept, report.skipped_total(), report.truncated), (8, 4, 4, 1));
    assert_eq!(encoded.len(), 4);
    let got: Vec<(usize, SkipReason)> = report.problems.iter().map(|p| (p.line, p.reason)).collect();
    assert_eq!(
        got,
        [
            (4, SkipReason::InvalidJson),
            (5, SkipReason::SpecialTokenText),
            (7, SkipReason::NothingScored),
            (8, SkipReason::UnknownRole)
        ]
    );
    let e = load_encoded(&path, &enc, true).unwrap_err().to_string();
    assert!(e.contains("line 4") && e.contains("invalid_json"), "{e}");
    // A validation fraction or a validation file.
    let split = load_split(&path, &Validation::Fraction { fraction: 0.25, seed: 3 }, &enc, false).unwrap();
    assert_eq!((split.train.len(), split.validation.len()), (3, 1));
    let split = load_split(&path, &Validation::File(path.clone()), &enc, false).unwrap();
    assert_eq!((split.train.len(), split.validation.len()), (4, 4));
    assert_eq!(split.validation_report.unwrap().kept, 4);
    std::fs::write(&path, "oops\n").unwrap();
    let e = load_split(&path, &Validation::Off, &enc, false).unwrap_err().to_string();
    assert!(e.contains("no usable training example") && e.contains("invalid_json 1"), "{e}");
}

// ---------------------------------------------------------------------------------------
// SmolLM2: its real tokenizer and ChatML template (with the default system prompt)

#[test]
fn smollm2_template_boundaries() {
    let Some((tok, template)) = smollm2() else { return };
    let enc = Encoder::new(&tok, Some(&template), EncodeOptions::default()).unwrap();
    let ex = chat(&[("user", "Rewrite the date 14 March 2021 as YYYY-MM-DD."), ("assistant", "2021-03-14")]);
    let o = enc.encode(&ex).unwrap();
    assert!(!o.boundary_merge, "pieces and whole text tokenize alike");
    let e = &o.encoded;
    assert_eq!(scored_text(&tok, e), "2021-03-14<|im_end|>");
    let text = tok.decode(&e.tokens, false).unwrap();
    assert!(text.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"), "{text}");
    assert!(text.ends_with("<|im_start|>assistant\n2021-03-14<|im_end|>\n"), "{text}");
    // The newline after <|im_end|> is in the input but not learned.
    assert_eq!(*e.labels.last().unwrap(), IGNORE);
    assert_eq!(e.labels[e.len() - 2], IGNORE);
    let p = enc.eval_prompt(&ex).unwrap();
    assert_eq!(
        p.ids,
        tok.encode(&template.render(&[Message::new("user", &p.question)], true).unwrap(), false, true).unwrap()
    );
    assert_eq!(p.ids.as_slice(), &e.tokens[..p.ids.len()]);

    let multi = chat(&[
        ("system", "Answer in one word."),
        ("user", "Capital of France?"),
        ("assistant", "Paris"),
        ("user", "And of Italy?"),
        ("assistant", "Rome"),
    ]);
    let o = enc.encode(&multi).unwrap();
    assert!(!o.boundary_merge);
    assert_eq!(scored_text(&tok, &o.encoded), "Paris<|im_end|>Rome<|im_end|>");
    assert!(
        !tok.decode(&o.encoded.tokens, false).unwrap().contains("SmolLM"),
        "a given system prompt replaces the default"
    );
}

#[test]
fn the_shipped_dataset_encodes_cleanly_with_short_answers() {
    let Some((tok, template)) = smollm2() else { return };
    let enc = Encoder::new(&tok, Some(&template), EncodeOptions::default()).unwrap();
    let dir = lamina_testkit::repo_root().join("data/sft");
    let mut answers = Vec::new();
    for (name, n) in [("train.jsonl", 1500), ("test.jsonl", 150)] {
        let path = dir.join(name);
        assert!(std::fs::metadata(&path).unwrap().len() < 300_000);
        let (records, mut report) = read_examples(&path, true).unwrap();
        let encoded = enc.encode_all(&records, &mut report, true, name).unwrap();
        assert_eq!((report.read, report.kept, report.truncated, report.boundary_merges), (n, n, 0, 0), "{name}");
        // Each answer: 10 characters, under 15 tokens with its <|im_end|>.
        assert!(encoded.iter().all(|e| e.scored() < 15), "{name}");
        let refs: BTreeSet<String> = records.iter().map(|r| enc.eval_prompt(&r.example).unwrap().reference).collect();
        assert_eq!(refs.len(), n, "{name}: every date once");
        answers.push(refs);
    }
    assert!(answers[0].is_disjoint(&answers[1]), "no test date is in the training set");
}
