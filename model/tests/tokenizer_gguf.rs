//! Tokenizers from small GGUF vocabularies built in memory (no downloads): the
//! SentencePiece rules worked by hand (score order, byte fallback, the space prefix and
//! special tokens), streaming of byte-fallback characters, and every kind of bad
//! metadata as an error that names its key.

use lamina_model::gguf::{self, GgufFile, MetaArray, MetaValue};
use lamina_model::{ModelError, Tokenizer};

fn strings(v: &[&str]) -> MetaValue {
    MetaValue::Array(MetaArray::String(v.iter().map(|s| s.to_string()).collect()))
}

fn build(meta: Vec<(&str, MetaValue)>) -> Result<Tokenizer, ModelError> {
    let meta = meta.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Tokenizer::from_gguf(&GgufFile::from_bytes(gguf::to_bytes(meta, &[]).unwrap()).unwrap())
}

/// A SentencePiece vocabulary: `<unk> <s> </s>`, the 256 byte tokens, then pieces with
/// scores chosen so that merge order matters.
fn spm_meta() -> Vec<(&'static str, MetaValue)> {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"].map(String::from).to_vec();
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let pieces = [
        ("▁", -1.0),
        ("h", -2.0),
        ("e", -2.0),
        ("l", -2.0),
        ("o", -2.0),
        ("▁h", -3.0),
        ("ll", -1.5),
        ("he", -4.0),
        ("▁he", -5.0),
        ("llo", -6.0),
        ("▁hello", -7.0),
        ("<tool>", 0.0),
    ];
    let mut scores = vec![0.0f32; tokens.len()];
    let mut types = vec![3, 3, 3];
    types.extend([6; 256]);
    types[0] = 2;
    for (p, s) in pieces {
        tokens.push(p.to_string());
        scores.push(s);
        types.push(if p == "<tool>" { 4 } else { 1 });
    }
    vec![
        ("tokenizer.ggml.model", MetaValue::String("llama".into())),
        ("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::String(tokens))),
        ("tokenizer.ggml.scores", MetaValue::Array(MetaArray::F32(scores))),
        ("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(types))),
    ]
}

fn pieces(tok: &Tokenizer, ids: &[u32]) -> Vec<String> {
    ids.iter().map(|&i| tok.id_to_token(i).unwrap().to_string()).collect()
}

#[test]
fn sentencepiece_merges_by_score_with_byte_fallback() {
    let tok = build(spm_meta()).unwrap();
    assert_eq!(tok.family(), "SPM");
    assert_eq!((tok.bos_id(), tok.eos_id(), tok.unk_id()), (Some(1), Some(2), Some(0)));
    assert!(tok.adds_bos() && !tok.adds_eos());
    // ▁ h e l l o: "ll" (-1.5), "▁h" (-3), "▁he" (-5), "llo" (-6), "▁hello" (-7).
    let ids = tok.encode("hello", true, false).unwrap();
    assert_eq!(pieces(&tok, &ids), ["<s>", "▁hello"]);
    // No "x" piece: its byte; "é" is two bytes; the space before "h" joins it.
    let ids = tok.encode("xé hell", false, false).unwrap();
    assert_eq!(pieces(&tok, &ids), ["▁", "<0x78>", "<0xC3>", "<0xA9>", "▁he", "ll"]);
    // Decoding drops the space encoding put in front, and joins the bytes.
    assert_eq!(tok.decode(&ids, false).unwrap(), "xé hell");
    assert_eq!(tok.decode(&tok.encode(" hello", false, false).unwrap(), false).unwrap(), " hello");
}

#[test]
fn sentencepiece_special_tokens_and_space_prefix() {
    let tok = build(spm_meta()).unwrap();
    // Control tokens only when parsed; the text after one gets a space prefix again.
    let ids = tok.encode("<s>hello</s>", false, true).unwrap();
    assert_eq!(pieces(&tok, &ids), ["<s>", "▁hello", "</s>"]);
    let plain = tok.encode("<s>", false, false).unwrap();
    assert!(!plain.contains(&1), "{:?}", pieces(&tok, &plain));
    // User-defined tokens are always split out.
    let ids = tok.encode("he<tool>he", false, false).unwrap();
    assert_eq!(pieces(&tok, &ids), ["▁he", "<tool>", "▁he"]);
    assert_eq!(tok.decode(&ids, true).unwrap(), "he<tool> he");
    assert!(tok.is_end_of_generation(2), "</s> ends generation");
    // The file can turn the space prefix off.
    let mut meta = spm_meta();
    meta.push(("tokenizer.ggml.add_space_prefix", MetaValue::Bool(false)));
    let tok = build(meta).unwrap();
    // h e l l o: "ll" (-1.5), then "he" (-4), then "llo" (-6).
    assert_eq!(pieces(&tok, &tok.encode("hello", false, false).unwrap()), ["he", "llo"]);
}

#[test]
fn streaming_byte_fallback_never_splits_a_character() {
    let tok = build(spm_meta()).unwrap();
    let text = "é漢😀 hello";
    let ids = tok.encode(text, false, false).unwrap();
    assert!(ids.len() > 9, "{ids:?}");
    let mut stream = tok.stream(true);
    let mut out = Vec::new();
    for &id in &ids {
        out.extend(stream.push(id).unwrap());
    }
    assert_eq!(stream.finish(), None);
    // Each piece is whole characters: "▁", then the two bytes of "é" as one, 漢, 😀, ...
    assert_eq!(out, [" ", "é", "漢", "😀", " hello"]);
    // A character cut off at the end comes out as U+FFFD when the stream finishes.
    let mut stream = tok.stream(true);
    assert_eq!(stream.push(ids[3]).unwrap(), None);
    assert_eq!(stream.finish().as_deref(), Some("\u{FFFD}"));
}

fn error(meta: Vec<(&str, MetaValue)>) -> String {
    match build(meta) {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => e.to_string(),
    }
}

fn with(key: &'static str, value: MetaValue) -> Vec<(&'static str, MetaValue)> {
    let mut meta: Vec<_> = spm_meta().into_iter().filter(|(k, _)| *k != key).collect();
    meta.push((key, value));
    meta
}

#[test]
fn bad_metadata_is_an_error_naming_the_key() {
    let cases: Vec<(Vec<(&str, MetaValue)>, &str)> = vec![
        (with("tokenizer.ggml.model", MetaValue::String("t5".into())), "tokenizer.ggml.model = t5"),
        (with("tokenizer.ggml.model", MetaValue::String("klingon".into())), "tokenizer.ggml.model = klingon"),
        (with("tokenizer.ggml.model", MetaValue::U32(3)), "tokenizer.ggml.model"),
        (with("tokenizer.ggml.scores", MetaValue::Array(MetaArray::F32(vec![0.0; 5]))), "tokenizer.ggml.scores"),
        (with("tokenizer.ggml.scores", strings(&["a"])), "tokenizer.ggml.scores"),
        (with("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(vec![1; 7]))), "tokenizer.ggml.token_type"),
        (with("tokenizer.ggml.tokens", strings(&[])), "tokenizer.ggml.tokens"),
        (with("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::U32(vec![1]))), "tokenizer.ggml.tokens"),
        (with("tokenizer.ggml.bos_token_id", MetaValue::U32(1_000_000)), "tokenizer.ggml.bos_token_id"),
        (with("tokenizer.ggml.eos_token_id", MetaValue::I32(-1)), "tokenizer.ggml.eos_token_id"),
        (with("tokenizer.ggml.padding_token_id", MetaValue::String("0".into())), "tokenizer.ggml.padding_token_id"),
        (with("tokenizer.ggml.add_bos_token", MetaValue::U32(1)), "tokenizer.ggml.add_bos_token"),
        (with("tokenizer.ggml.pre", MetaValue::U32(1)), "tokenizer.ggml.pre"),
    ];
    for (meta, key) in cases {
        let e = error(meta);
        assert!(e.contains(key), "{e:?} does not name {key}");
    }
    // The same text twice.
    let mut meta = spm_meta();
    if let MetaValue::Array(MetaArray::String(t)) = &mut meta[1].1 {
        t[270] = t[260].clone();
    }
    let e = error(meta);
    assert!(e.contains("tokenizer.ggml.tokens") && e.contains("repeats token 260"), "{e}");
}

#[test]
fn bad_bpe_metadata_is_an_error_naming_the_key() {
    let bpe = |pre: &str, merges: &[&str]| {
        vec![
            ("tokenizer.ggml.model", MetaValue::String("gpt2".into())),
            ("tokenizer.ggml.pre", MetaValue::String(pre.into())),
            ("tokenizer.ggml.tokens", strings(&["a", "b", "ab"])),
            ("tokenizer.ggml.merges", strings(merges)),
        ]
    };
    let tok = build(bpe("gpt-2", &["a b"])).unwrap();
    assert_eq!(tok.encode("ab", false, false).unwrap(), [2]);
    let e = error(bpe("no-such-pre", &["a b"]));
    assert!(e.contains("tokenizer.ggml.pre = no-such-pre"), "{e}");
    let e = error(bpe("gpt-2", &["ab"]));
    assert!(e.contains("tokenizer.ggml.merges") && e.contains("not two tokens"), "{e}");
    let e = error(bpe("gpt-2", &["a zz"]));
    assert!(e.contains("tokenizer.ggml.merges") && e.contains("\"zz\" is not a token"), "{e}");
    let mut no_merges = bpe("gpt-2", &[]);
    no_merges.pop();
    assert!(error(no_merges).contains("tokenizer.ggml.merges"));
}

/// A GGUF whose metadata is cut short anywhere never panics the tokenizer: it is an
/// error of the file or of the tokenizer.
#[test]
fn truncated_files_are_errors() {
    let meta = spm_meta().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let bytes = gguf::to_bytes(meta, &[]).unwrap();
    for cut in (0..bytes.len()).step_by(997) {
        if let Ok(f) = GgufFile::from_bytes(bytes[..cut].to_vec()) {
            let _ = Tokenizer::from_gguf(&f);
        }
    }
}
