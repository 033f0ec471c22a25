//! Exact-match evaluation: its mechanics on a scripted model that answers from a table
//! (right, wrong, padded with spaces, never stopping), and SmolLM2 on a few examples.

mod support;

use lamina_model::chat::{ChatTemplate, Message, CHATML};
use lamina_model::gguf::GgufFile;
use lamina_model::kv_cache::KvCache;
use lamina_model::{CausalLm, Llama, LoadOptions, LogitsFor};
use lamina_tensor::{DType, Device, Tensor};
use lamina_train::sft::*;
use std::cell::RefCell;
use support::*;

/// A "model" that, after a known prompt, writes a scripted answer token by token (then
/// EOS, unless told to ramble); it remembers the prompts it was given.
struct Scripted {
    vocab: usize,
    answers: Vec<(Vec<u32>, Vec<u32>, bool)>,
    seen: RefCell<Vec<u32>>,
    prompts: RefCell<Vec<Vec<u32>>>,
}

impl CausalLm for Scripted {
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn context_length(&self) -> usize {
        1 << 20
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn new_cache(&self, capacity: usize) -> lamina_model::Result<KvCache> {
        KvCache::new(1, 1, 1, capacity, DType::F32, Device::Cpu)
    }
    fn forward(&self, tokens: &[u32], cache: &mut KvCache, which: LogitsFor) -> lamina_model::Result<Tensor> {
        assert_eq!(which, LogitsFor::Last);
        cache.check_room(tokens.len())?;
        let mut seen = self.seen.borrow_mut();
        if cache.is_empty() {
            seen.clear();
            self.prompts.borrow_mut().push(tokens.to_vec());
        }
        seen.extend_from_slice(tokens);
        cache.advance(tokens.len());
        let next = self
            .answers
            .iter()
            .find(|(p, _, _)| seen.starts_with(p))
            .map(|(p, a, ramble)| {
                let k = seen.len() - p.len();
                a.get(k).copied().unwrap_or(if *ramble { u32::from(b'z') } else { ENDOFTEXT })
            })
            .unwrap_or(u32::from(b'?'));
        let mut logits = vec![0f32; self.vocab];
        logits[next as usize] = 10.0;
        Ok(Tensor::from_vec(logits, &[1, self.vocab])?)
    }
}

fn record(line: usize, q: &str, a: &str) -> Record {
    Record { line, example: Example::Chat(vec![Message::new("user", q), Message::new("assistant", a)]) }
}

#[test]
fn mechanics_on_a_scripted_model() {
    let tok = tiny_tokenizer();
    let template = ChatTemplate::new(CHATML, "", "").unwrap();
    let enc = Encoder::new(&tok, Some(&template), EncodeOptions::default()).unwrap();
    let records = vec![
        record(1, "one", "1"),
        record(2, "two", "2"),
        Record { line: 3, example: Example::Text("no answer here".into()) },
        record(4, "three", "3"),
        record(5, "four", "4"),
        record(6, "five", "5"),
    ];
    let ids = |s: &str| tok.encode(s, false, false).unwrap();
    let prompt = |r: &Record| enc.eval_prompt(&r.example).unwrap().ids;
    let model = Scripted {
        vocab: tok.vocab_size(),
        answers: vec![
            (prompt(&records[0]), ids("1"), false),    // right
            (prompt(&records[1]), ids("22"), false),   // wrong
            (prompt(&records[3]), ids("  3 "), false), // right once trimmed
            (prompt(&records[4]), ids("4"), true),     // right text, but never stops
        ],
        seen: RefCell::new(Vec::new()),
        prompts: RefCell::new(Vec::new()),
    };
    let options = EvalOptions { max_new_tokens: 6, limit: None, ctx: 64 };
    let mut streamed = 0;
    let report = evaluate(&model, &enc, &records, &options, |_| streamed += 1).unwrap();
    assert_eq!(streamed, 5);
    let got: Vec<(usize, &str, bool, bool, usize)> =
        report.records.iter().map(|r| (r.line, r.output.as_str(), r.correct, r.finished, r.generated_tokens)).collect();
    assert_eq!(
        got,
        [
            (1, "1", true, true, 2),
            (2, "22", false, true, 3),
            (4, "  3 ", true, true, 5),
            (5, "4zzzzz", false, false, 6),
            (6, "??????", false, false, 6),
        ]
    );
    assert_eq!((report.correct(), report.accuracy()), (2, 0.4));
    assert_eq!(report.skipped[&SkipReason::NoReference], [3]);
    assert_eq!(report.generated_tokens(), 22);
    assert!(report.tokens_per_s() > 0.0);
    assert_eq!(report.mistakes().map(|r| r.line).collect::<Vec<_>>(), [2, 5, 6]);
    // The model was given exactly the encoder's prompts (and so the training prefixes).
    let given = model.prompts.borrow().clone();
    assert_eq!(given, [0, 1, 3, 4, 5].map(|i| prompt(&records[i])));
    assert_eq!(report.records[0].question, "one");

    // --limit counts evaluated examples; a prompt that does not fit is skipped.
    let limited = evaluate(&model, &enc, &records, &EvalOptions { limit: Some(2), ..options }, |_| {}).unwrap();
    assert_eq!(limited.records.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 2]);
    let tight = evaluate(&model, &enc, &records, &EvalOptions { ctx: 10, ..options }, |_| {}).unwrap();
    assert_eq!(tight.records.len(), 0);
    assert_eq!(tight.skipped[&SkipReason::PromptTooLong], [1, 2, 4, 5, 6]);
    assert!(evaluate(&model, &enc, &records, &EvalOptions { max_new_tokens: 0, ..options }, |_| {}).is_err());
}

/// SmolLM2 (Q4_1, quantized arithmetic) on a question it knows and the first four test
/// dates: each output is the answer llama.cpp's `llama-server` generates greedily for the
/// same chat (tests/fixtures/sft_eval/answers.json, made by
/// scripts/reference/sft_eval_reference.py), and the scores follow from those answers.
/// The France question's reference is llama.cpp's answer, so it must score as correct;
/// the model gets every date wrong.
#[test]
fn smollm2_answers_as_llama_cpp_does() {
    let Some((tok, template)) = smollm2() else { return };
    let fx: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lamina_testkit::fixture("sft_eval/answers.json")).unwrap())
            .unwrap();
    let examples = fx["examples"].as_array().unwrap();
    let max_new_tokens = fx["max_new_tokens"].as_u64().unwrap() as usize;
    let gguf = GgufFile::open(lamina_testkit::smollm2_path()).unwrap();
    let model = Llama::from_gguf_with(&gguf, LoadOptions { device: Device::Cpu, keep_quantized: true }).unwrap();
    let enc = Encoder::new(&tok, Some(&template), EncodeOptions::default()).unwrap();
    let (mut records, _) = read_examples(&lamina_testkit::repo_root().join("data/sft/test.jsonl"), true).unwrap();
    records.truncate(examples.len() - 1);
    let first = &examples[0];
    records.insert(0, record(0, first["question"].as_str().unwrap(), first["answer"].as_str().unwrap()));

    let report =
        evaluate(&model, &enc, &records, &EvalOptions { max_new_tokens, ..Default::default() }, |_| {}).unwrap();
    assert_eq!(report.records.len(), examples.len());
    for (r, want) in report.records.iter().zip(examples) {
        assert_eq!(r.question, want["question"].as_str().unwrap(), "data/sft/test.jsonl changed: regenerate");
        if let Some(reference) = want["reference"].as_str() {
            assert_eq!(r.reference, reference);
        }
        let answer = want["answer"].as_str().unwrap();
        assert_eq!(
            r.output.trim(),
            answer,
            "{:?}: llama.cpp answers {answer:?} (its smallest top-2 probability gap on the way: {})",
            r.question,
            want["min_top2_gap"]
        );
        assert_eq!(r.correct, exact_match(answer, &r.reference));
    }
    assert_eq!(report.correct(), 1);
    assert!(report.records[0].correct);
}
