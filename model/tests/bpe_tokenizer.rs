//! The byte-level BPE tokenizer: SmolLM2's token ids against llama.cpp's golden lists
//! (tests/fixtures/smollm2/tokens.json), streaming decode, special tokens, and errors on
//! small GGUF files built in memory (these need no model).

use lamina_model::bpe::byte_level::byte_to_char;
use lamina_model::gguf::GgufFile;
use lamina_model::{BpeTokenizer, ModelError};
use std::sync::OnceLock;
use std::time::Instant;

/// SmolLM2's tokenizer, built once for all the tests here (None when the model is absent).
fn smollm2() -> Option<&'static BpeTokenizer> {
    static TOKENIZER: OnceLock<Option<BpeTokenizer>> = OnceLock::new();
    TOKENIZER
        .get_or_init(|| {
            let path = lamina_testkit::smollm2()?;
            let gguf = GgufFile::open(path).unwrap();
            let t0 = Instant::now();
            let tok = BpeTokenizer::from_gguf(&gguf).unwrap();
            let load = t0.elapsed();
            eprintln!("SmolLM2 tokenizer built in {load:?}");
            if !cfg!(debug_assertions) {
                assert!(load.as_secs_f64() < 1.0, "building the tokenizer took {load:?}");
            }
            Some(tok)
        })
        .as_ref()
}

// ---------------------------------------------------------------------------------------
// Golden ids from llama.cpp

struct Golden {
    name: String,
    text: String,
    ids: Vec<u32>,
}

/// The fixture's cases. They were made by llama.cpp's `tokenize(text, add_bos=False,
/// special=True)` (see its `method` field), so they are compared with
/// `encode(text, add_special = false, parse_special = true)`.
fn golden() -> Vec<Golden> {
    let path = lamina_testkit::repo_root().join("tests/fixtures/smollm2/tokens.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let method = json["method"].as_str().unwrap();
    assert!(method.contains("add_bos=False, special=True"), "the fixture was made differently: {method}");
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Golden {
            name: e["name"].as_str().unwrap().to_string(),
            text: e["text"].as_str().unwrap().to_string(),
            ids: e["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect(),
        })
        .collect()
}

#[test]
fn token_ids_equal_llama_cpp() {
    let Some(tok) = smollm2() else { return };
    let cases = golden();
    assert!(cases.len() >= 5, "the fixture has only {} entries", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let got = tok.encode(&c.text, false, true).unwrap();
        if got != c.ids {
            failures.push(format!("{} {:?}: llama.cpp {:?}, ours {:?}", c.name, c.text, c.ids, got));
        }
        let back = tok.decode(&c.ids, false).unwrap();
        if back != c.text {
            failures.push(format!("{} {:?}: decodes to {back:?}", c.name, c.text));
        }
    }
    assert!(failures.is_empty(), "{} of {} entries differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
    eprintln!("{} golden entries match", cases.len());
}

#[test]
fn stream_decodes_split_emoji_whole() {
    let Some(tok) = smollm2() else { return };
    // The fixture's emoji entry, so the ids are llama.cpp's; a fallback keeps the test
    // meaningful if the fixture is rewritten without one.
    let ids = golden()
        .into_iter()
        .find(|c| c.text.chars().any(|ch| ch as u32 >= 0x1F300))
        .map(|c| c.ids)
        .unwrap_or_else(|| tok.encode("emoji 😀🎉 ok 👩‍👩‍👧", false, false).unwrap());
    let full = tok.decode(&ids, false).unwrap();
    let mut stream = tok.stream(false);
    let mut pieces = Vec::new();
    let mut held_back = 0;
    for &id in &ids {
        match stream.push(id).unwrap() {
            Some(p) => pieces.push(p),
            None => held_back += 1,
        }
    }
    assert_eq!(stream.finish(), None, "nothing may be left over after whole characters");
    assert!(held_back > 0, "an emoji should span several byte tokens (ids {ids:?})");
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
    assert_eq!(pieces.concat(), full);
}

#[test]
fn stream_flushes_an_unfinished_character_and_skips_specials() {
    let Some(tok) = smollm2() else { return };
    let ids = tok.encode("😀", false, false).unwrap();
    assert!(ids.len() > 1, "{ids:?}");
    let mut stream = tok.stream(true);
    assert_eq!(stream.push(ids[0]).unwrap(), None);
    assert_eq!(stream.push(tok.token_to_id("<|im_end|>").unwrap()).unwrap(), None);
    assert!(stream.push(u32::MAX).is_err(), "an unknown id is an error");
    assert_eq!(stream.finish().as_deref(), Some("\u{FFFD}"));
}

#[test]
fn special_tokens_are_split_only_when_parsed() {
    let Some(tok) = smollm2() else { return };
    let im_start = tok.token_to_id("<|im_start|>").unwrap();
    let user = tok.token_to_id("user").unwrap();
    assert_eq!(tok.encode("<|im_start|>user", false, true).unwrap(), [im_start, user]);
    let plain = tok.encode("<|im_start|>user", false, false).unwrap();
    assert!(plain.len() > 2 && !plain.contains(&im_start), "{plain:?}");
    assert_eq!(tok.decode(&plain, false).unwrap(), "<|im_start|>user");

    let chat = tok.encode("<|im_start|>user\nHi<|im_end|>\n", false, true).unwrap();
    assert_eq!(tok.decode(&chat, false).unwrap(), "<|im_start|>user\nHi<|im_end|>\n");
    assert_eq!(tok.decode(&chat, true).unwrap(), "user\nHi\n");
}

#[test]
fn smollm2_metadata() {
    let Some(tok) = smollm2() else { return };
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!((tok.bos_id(), tok.eos_id(), tok.unk_id(), tok.pad_id()), (Some(1), Some(2), Some(0), Some(2)));
    // add_bos_token = false in the file: no BOS even with add_special.
    assert!(!tok.adds_bos() && !tok.adds_eos());
    assert_eq!(tok.encode("Hello", true, false).unwrap(), tok.encode("Hello", false, false).unwrap());
    assert_eq!(tok.encode("", true, true).unwrap(), Vec::<u32>::new());
    for t in ["<|im_end|>", "<|endoftext|>"] {
        assert!(tok.is_end_of_generation(tok.token_to_id(t).unwrap()), "{t}");
    }
    assert!(!tok.is_end_of_generation(tok.token_to_id("<|im_start|>").unwrap()));
    assert!(!tok.is_end_of_generation(tok.token_to_id("Hello").unwrap()));
    assert_eq!(tok.id_to_token(19556), Some("Hello"));
    assert_eq!(tok.id_to_token(49152), None);
    assert!(tok.decode(&[19556, 49152], false).is_err());
}

/// Any text without special tokens decodes back to itself (byte-level BPE is lossless).
#[test]
fn arbitrary_text_round_trips() {
    let Some(tok) = smollm2() else { return };
    let pool: Vec<char> =
        "aZ é漢字語 \t\n\r\u{0}\u{7f}\u{a0}\u{ad}\u{301}\u{200d}\u{feff}😀🎉👩‍👧'sll123٣.,!?<|>{}".chars().collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let len = (next() % 40) as usize;
        let text: String = (0..len).map(|_| pool[(next() % pool.len() as u64) as usize]).collect();
        let ids = tok.encode(&text, false, false).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), text, "ids {ids:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Small GGUF files built in memory

enum Kv<'a> {
    Str(&'a str),
    U32(u32),
    Bool(bool),
    Strs(Vec<String>),
    I32s(Vec<i32>),
}

/// A GGUF v3 image with metadata only.
fn gguf(kvs: &[(&str, Kv)]) -> GgufFile {
    fn string(b: &mut Vec<u8>, s: &str) {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    }
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend((kvs.len() as u64).to_le_bytes());
    for (key, value) in kvs {
        string(&mut b, key);
        match value {
            Kv::Str(s) => {
                b.extend(8u32.to_le_bytes());
                string(&mut b, s);
            }
            Kv::U32(v) => {
                b.extend(4u32.to_le_bytes());
                b.extend(v.to_le_bytes());
            }
            Kv::Bool(v) => {
                b.extend(7u32.to_le_bytes());
                b.push(*v as u8);
            }
            Kv::Strs(v) => {
                b.extend(9u32.to_le_bytes());
                b.extend(8u32.to_le_bytes());
                b.extend((v.len() as u64).to_le_bytes());
                v.iter().for_each(|s| string(&mut b, s));
            }
            Kv::I32s(v) => {
                b.extend(9u32.to_le_bytes());
                b.extend(5u32.to_le_bytes());
                b.extend((v.len() as u64).to_le_bytes());
                v.iter().for_each(|x| b.extend(x.to_le_bytes()));
            }
        }
    }
    GgufFile::from_bytes(b).unwrap()
}

/// A toy byte-level vocabulary: the 256 byte characters, a few merges, and two control
/// tokens `<s>` (256 + 5) and `</s>` (256 + 6).
fn toy(pre: Option<&str>, extra: Vec<(&'static str, Kv<'static>)>) -> GgufFile {
    let mut tokens: Vec<String> = byte_to_char().iter().map(|c| c.to_string()).collect();
    tokens.extend(["he", "ll", "hell", "hello", "Ġw"].map(String::from));
    tokens.extend(["<s>", "</s>"].map(String::from));
    let mut types = vec![1; tokens.len()];
    let n = types.len();
    types[n - 2..].fill(3);
    let merges = ["h e", "l l", "he ll", "hell o", "Ġ w"].map(String::from).to_vec();
    let mut kvs = vec![
        ("tokenizer.ggml.model", Kv::Str("gpt2")),
        ("tokenizer.ggml.tokens", Kv::Strs(tokens)),
        ("tokenizer.ggml.token_type", Kv::I32s(types)),
        ("tokenizer.ggml.merges", Kv::Strs(merges)),
        ("tokenizer.ggml.bos_token_id", Kv::U32(261)),
        ("tokenizer.ggml.eos_token_id", Kv::U32(262)),
    ];
    if let Some(p) = pre {
        kvs.push(("tokenizer.ggml.pre", Kv::Str(p)));
    }
    kvs.extend(extra);
    gguf(&kvs)
}

#[test]
fn toy_vocabulary_merges_and_adds_bos_as_the_pre_tokenizer_says() {
    let tok = BpeTokenizer::from_gguf(&toy(Some("gpt-2"), vec![])).unwrap();
    let ids = tok.encode("hello world", true, false).unwrap();
    let pieces: Vec<&str> = ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    assert_eq!(pieces, ["hello", "Ġw", "o", "r", "l", "d"], "gpt2 adds no BOS by default");
    assert_eq!(tok.decode(&ids, false).unwrap(), "hello world");

    // llama3-type pre-tokenizers add BOS unless the file says otherwise.
    let tok = BpeTokenizer::from_gguf(&toy(Some("llama-bpe"), vec![])).unwrap();
    assert_eq!(tok.encode("hello", true, false).unwrap(), [261, 256 + 3]);
    assert_eq!(tok.decode(&[261, 259], true).unwrap(), "hello");
    assert_eq!(tok.decode(&[261, 259], false).unwrap(), "<s>hello");
    let tok = BpeTokenizer::from_gguf(&toy(
        Some("llama-bpe"),
        vec![("tokenizer.ggml.add_bos_token", Kv::Bool(false)), ("tokenizer.ggml.add_eos_token", Kv::Bool(true))],
    ))
    .unwrap();
    assert_eq!(tok.encode("hello", true, false).unwrap(), [259, 262]);
    assert_eq!(tok.encode("", true, false).unwrap(), [262]);
    assert!(tok.is_end_of_generation(262));

    // No `tokenizer.ggml.pre` at all: llama.cpp's "default".
    let tok = BpeTokenizer::from_gguf(&toy(None, vec![])).unwrap();
    assert_eq!(tok.decode(&tok.encode("he said: hello!", false, false).unwrap(), false).unwrap(), "he said: hello!");
}

#[test]
fn unknown_pre_tokenizer_and_tokenizer_model_are_unsupported() {
    let err = BpeTokenizer::from_gguf(&toy(Some("no-such-pre"), vec![])).unwrap_err();
    assert!(matches!(err, ModelError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("no-such-pre"), "{err}");

    let t5 = gguf(&[("tokenizer.ggml.model", Kv::Str("t5"))]);
    let err = BpeTokenizer::from_gguf(&t5).unwrap_err();
    assert!(matches!(err, ModelError::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("tokenizer.ggml.model = t5"), "{err}");

    let err = BpeTokenizer::from_gguf(&gguf(&[])).unwrap_err();
    assert!(matches!(err, ModelError::Missing(_)), "{err}");
}

#[test]
fn bad_vocabularies_are_errors() {
    // A merge of tokens that are not in the vocabulary.
    let mut tokens: Vec<String> = byte_to_char().iter().map(|c| c.to_string()).collect();
    tokens.push("ab".into());
    let bad_merge = gguf(&[
        ("tokenizer.ggml.model", Kv::Str("gpt2")),
        ("tokenizer.ggml.tokens", Kv::Strs(tokens.clone())),
        ("tokenizer.ggml.merges", Kv::Strs(vec!["a zz".into()])),
    ]);
    assert!(matches!(BpeTokenizer::from_gguf(&bad_merge), Err(ModelError::Tokenizer(_))));
    // Token types that do not cover the vocabulary.
    let short_types = gguf(&[
        ("tokenizer.ggml.model", Kv::Str("gpt2")),
        ("tokenizer.ggml.tokens", Kv::Strs(tokens)),
        ("tokenizer.ggml.token_type", Kv::I32s(vec![1; 3])),
        ("tokenizer.ggml.merges", Kv::Strs(vec!["a b".into()])),
    ]);
    assert!(matches!(BpeTokenizer::from_gguf(&short_types), Err(ModelError::Tokenizer(_))));
}

// ---------------------------------------------------------------------------------------
// tokenizer.json

/// A Hugging Face directory holding the toy vocabulary as `tokenizer.json` (GPT-2's
/// ByteLevel pre-tokenizer), plus `tokenizer_config.json` when `config` is given.
fn hf_dir(name: &str, config: Option<serde_json::Value>) -> std::path::PathBuf {
    use serde_json::json;
    let dir = std::env::temp_dir().join(format!("lamina-bpe-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut vocab = serde_json::Map::new();
    for (i, c) in byte_to_char().iter().enumerate() {
        vocab.insert(c.to_string(), json!(i));
    }
    for (i, t) in ["he", "ll", "hell", "hello", "Ġw"].iter().enumerate() {
        vocab.insert(t.to_string(), json!(256 + i));
    }
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let added = |id: u32, content: &str, special: bool| {
        json!({"id": id, "content": content, "special": special, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false})
    };
    let tokenizer = json!({
        "version": "1.0",
        "added_tokens": [added(261, "<s>", true), added(262, "<|im_end|>", true), added(263, "<tool>", false)],
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": ["h e", "l l", "he ll", "hell o", "Ġ w"]},
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    match config {
        Some(c) => std::fs::write(dir.join("tokenizer_config.json"), c.to_string()).unwrap(),
        None => {
            let _ = std::fs::remove_file(dir.join("tokenizer_config.json"));
        }
    }
    dir.join("tokenizer.json")
}

#[test]
fn tokenizer_json_with_added_tokens() {
    // BOS from the post-processor's template, EOS unknown.
    let tok = BpeTokenizer::from_file(hf_dir("template", None)).unwrap();
    assert_eq!(tok.vocab_size(), 264);
    assert_eq!((tok.bos_id(), tok.eos_id()), (Some(261), None));
    let ids = tok.encode("hello world<|im_end|><tool>", true, true).unwrap();
    let pieces: Vec<&str> = ids.iter().map(|&i| tok.id_to_token(i).unwrap()).collect();
    assert_eq!(pieces, ["<s>", "hello", "Ġw", "o", "r", "l", "d", "<|im_end|>", "<tool>"]);
    assert_eq!(tok.decode(&ids, true).unwrap(), "hello world<tool>");
    assert!(tok.is_end_of_generation(262), "<|im_end|> ends generation");
    // Without parsing specials the control token is text, but the user-defined one still splits.
    let plain = tok.encode("<|im_end|><tool>", false, false).unwrap();
    assert!(!plain.contains(&262) && plain.ends_with(&[263]), "{plain:?}");

    // tokenizer_config.json overrides: no BOS, EOS added.
    let config =
        serde_json::json!({"add_bos_token": false, "add_eos_token": true, "eos_token": {"content": "<|im_end|>"}});
    let tok = BpeTokenizer::from_file(hf_dir("config", Some(config))).unwrap();
    assert_eq!(tok.encode("hello", true, false).unwrap(), [259, 262]);

    let err = BpeTokenizer::from_file(std::env::temp_dir().join("lamina-no-such-dir/tokenizer.json")).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err}");
}
