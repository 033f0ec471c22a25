//! Properties of the fine-tuning data pipeline over random conversations and random
//! batching set-ups: the loss mask scores exactly the assistant answers, the tokens are
//! the rendered conversation, a JSONL line round-trips, and a resumed batcher continues
//! exactly where an uninterrupted one would be.

mod support;

use lamina_model::chat::{ChatTemplate, Message, CHATML};
use lamina_train::sft::*;
use proptest::prelude::*;
use support::*;

/// Message text: letters, digits, spaces, newlines, punctuation, a non-ASCII letter.
fn content() -> impl Strategy<Value = String> {
    "[a-z0-9 .,!\n\u{e9}]{0,12}[a-z0-9\u{e9}]"
}

fn conversation() -> impl Strategy<Value = Vec<Message>> {
    (prop::option::of(content()), prop::collection::vec((content(), content()), 1..4)).prop_map(|(system, turns)| {
        let mut m: Vec<Message> = system.iter().map(|s| Message::new("system", s)).collect();
        for (q, a) in turns {
            m.push(Message::new("user", &q));
            m.push(Message::new("assistant", &a));
        }
        m
    })
}

fn encoded(n: usize, seed: u64) -> Vec<Encoded> {
    (0..n)
        .map(|i| {
            let len = 1 + ((i as u64 * 2654435761 + seed) % 17) as usize;
            let tokens: Vec<u32> = (0..len).map(|p| (i * 100 + p) as u32).collect();
            let labels = (0..len).map(|p| if p + 1 < len { tokens[p + 1] as i32 } else { IGNORE }).collect();
            Encoded { tokens, labels }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_mask_scores_exactly_the_answers(messages in conversation()) {
        let tok = tiny_tokenizer();
        let template = ChatTemplate::new(CHATML, "", "").unwrap();
        let enc = Encoder::new(&tok, Some(&template), EncodeOptions::default()).unwrap();
        // Through JSONL and back.
        let line = serde_json::json!({"messages": messages}).to_string();
        let example = parse_line(&line).unwrap();
        prop_assert_eq!(&example, &Example::Chat(messages.clone()));

        let o = enc.encode(&example).unwrap();
        let answers: String = messages.iter().filter(|m| m.role == "assistant").map(|m| format!("{}<|im_end|>", m.content)).collect();
        prop_assert_eq!(scored_text(&tok, &o.encoded), answers);
        prop_assert_eq!(tok.decode(&o.encoded.tokens, false).unwrap(), template.render(&messages, false).unwrap());
        let p = enc.eval_prompt(&example).unwrap();
        prop_assert_eq!(p.ids.as_slice(), &o.encoded.tokens[..p.ids.len()]);
        prop_assert_eq!(&p.reference, &messages.last().unwrap().content);
        prop_assert!(o.encoded.labels[p.ids.len() - 1] != IGNORE);
    }

    #[test]
    fn resuming_anywhere_continues_the_same_batches(
        n in 1usize..60, batch_size in 1usize..10, bucket_batches in 1usize..6, seed in any::<u64>(), stop_frac in 0.0f64..3.0,
    ) {
        let config = BatcherConfig { batch_size, seed, bucket_batches, pad_id: 7 };
        let mut straight = Batcher::new(encoded(n, seed), config).unwrap();
        let per_epoch = straight.batches_per_epoch();
        prop_assert_eq!(per_epoch, n.div_ceil(batch_size));
        let total = 3 * per_epoch;
        let all: Vec<Batch> = (0..total).map(|_| straight.next_batch()).collect();
        for epoch in all.chunks(per_epoch) {
            let mut rows: Vec<usize> = epoch.iter().flat_map(|b| b.rows.clone()).collect();
            rows.sort();
            prop_assert_eq!(rows, (0..n).collect::<Vec<_>>());
        }
        let stop = ((stop_frac * per_epoch as f64) as usize).min(total);
        let mut first = Batcher::new(encoded(n, seed), config).unwrap();
        for _ in 0..stop {
            first.next_batch();
        }
        let pos: BatchPosition = serde_json::from_str(&serde_json::to_string(&first.position()).unwrap()).unwrap();
        let mut resumed = Batcher::resume(encoded(n, seed), config, pos).unwrap();
        for b in &all[stop..] {
            prop_assert_eq!(&resumed.next_batch(), b);
        }
    }
}
