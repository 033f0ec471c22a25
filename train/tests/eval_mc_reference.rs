//! Multiple-choice scoring agrees with lm-evaluation-harness's method run on Hugging Face
//! transformers (tests/fixtures/eval_mc/expected.json, made by
//! scripts/reference/mc_loglik_reference.py on the same SmolLM2 weights dequantized to f32):
//! the same context and continuation tokens, each choice's log-likelihood sum within 1e-3
//! nats, the same greedy flags, and identical acc and acc_norm for every question
//! (measured: within 7e-5 nats).

use lamina_model::chat::{ChatTemplate, CHATML};
use lamina_model::gguf::GgufFile;
use lamina_model::{BpeTokenizer, Llama, LoadOptions};
use lamina_tensor::Device;
use lamina_train::eval::choice::score_item;
use lamina_train::eval::loglik::{encode_pair, Scorer};
use lamina_train::eval::{read_task, run_task, Env, RunOptions};
use serde_json::Value;

const TOLERANCE: f64 = 1e-3;

#[test]
fn loglikelihoods_and_accuracies_match_transformers() {
    let Some(model_path) = lamina_testkit::smollm2() else { return };
    let dir = lamina_testkit::fixture("eval_mc");
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let file = GgufFile::open(&model_path).unwrap();
    let model = Llama::from_gguf_with(&file, LoadOptions { device: Device::Cpu, keep_quantized: false }).unwrap();
    let tokenizer = BpeTokenizer::from_gguf(&file).unwrap();
    assert_eq!(tokenizer.bos_id().or(tokenizer.eos_id()), expected["prefix_token"].as_u64().map(|v| v as u32));
    let template = ChatTemplate::new(CHATML, "", "").unwrap();
    let env = Env::new(&model, &tokenizer, &template, RunOptions::default());

    let mut worst = 0f64;
    for t in expected["tasks"].as_array().unwrap() {
        let task = read_task(&dir.join(t["file"].as_str().unwrap())).unwrap();
        let mut scorer = Scorer::new(&model, 512).unwrap();
        let (mut acc, mut acc_norm) = (0.0, 0.0);
        let want_items = t["items"].as_array().unwrap();
        assert_eq!(want_items.len(), task.items.len());
        for (item, want) in task.items.iter().zip(want_items) {
            let at = format!("{}:{}", t["file"], item.line);
            assert_eq!(item.line as u64, want["line"].as_u64().unwrap(), "{at}");
            let outcome = score_item(&env, &task, &mut scorer, item).unwrap();
            for (k, (got, w)) in outcome.scored.iter().zip(want["choices"].as_array().unwrap()).enumerate() {
                let c = item.choice();
                let continuation = format!("{}{}", task.spec.target_delimiter, c.choices[k]);
                let request = encode_pair(&tokenizer, &c.context, &continuation, false).unwrap();
                assert_eq!(request.context, ids(&w["context_ids"]), "{at} choice {k}: context tokens");
                assert_eq!(request.continuation, ids(&w["continuation_ids"]), "{at} choice {k}: continuation tokens");
                let diff = (got.loglik - w["loglik"].as_f64().unwrap()).abs();
                worst = worst.max(diff);
                assert!(diff < TOLERANCE, "{at} choice {k}: {} vs transformers {}", got.loglik, w["loglik"]);
                assert_eq!(got.greedy, w["is_greedy"].as_bool().unwrap(), "{at} choice {k}: greedy");
            }
            let right = item.choice().answer;
            assert_eq!(f64::from(u8::from(outcome.pred == right)), want["acc"].as_f64().unwrap(), "{at}: acc");
            assert_eq!(
                f64::from(u8::from(outcome.pred_norm == right)),
                want["acc_norm"].as_f64().unwrap(),
                "{at}: acc_norm"
            );
            acc += want["acc"].as_f64().unwrap();
            acc_norm += want["acc_norm"].as_f64().unwrap();
        }
        // The whole task through the runner gives the reference's means (the smaller file
        // only: each forward pass of the f32 model costs tens of milliseconds).
        if task.items.len() <= 4 {
            let result = run_task(&env, &task, &mut |_| {}).unwrap();
            let n = want_items.len() as f64;
            assert_eq!(result.metric("acc").unwrap().value, acc / n);
            assert_eq!(result.metric("acc_norm").unwrap().value, acc_norm / n);
        }
    }
    eprintln!("largest log-likelihood difference from transformers: {worst:.2e} nats");
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}
