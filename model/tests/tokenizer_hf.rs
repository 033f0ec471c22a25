//! `Tokenizer::from_hf_dir` on the non-byte-level kinds of `tokenizer.json` (SentencePiece-
//! style BPE with byte fallback, WordPiece, Unigram with Metaspace), against what Hugging
//! Face `tokenizers` itself gives (tests/fixtures/hf-tokenizers/, made by
//! scripts/reference/hf_tokenizers_reference.py): ids with the special tokens the
//! post-processor adds, and decoded text with and without special tokens.

use lamina_model::Tokenizer;

#[test]
fn hf_tokenizer_json_kinds_equal_hugging_face() {
    let root = lamina_testkit::repo_root().join("tests/fixtures/hf-tokenizers");
    let mut checked = 0;
    for kind in ["spm-bpe", "wordpiece", "unigram"] {
        let dir = root.join(kind);
        let tok = Tokenizer::from_hf_dir(&dir).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let reference: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
        for case in reference["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
            assert_eq!(tok.encode(text, true, true).unwrap(), want, "{kind} {text:?}");
            assert_eq!(tok.decode(&want, false).unwrap(), case["decode"].as_str().unwrap(), "{kind} {text:?}");
            let skipped = tok.decode(&want, true).unwrap();
            assert_eq!(skipped, case["decode_skip_special"].as_str().unwrap(), "{kind} {text:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 21);
}

/// Byte-fallback tokens of a `tokenizer.json` stream as whole characters.
#[test]
fn hf_byte_fallback_streams_whole_characters() {
    let tok = Tokenizer::from_hf_dir(lamina_testkit::repo_root().join("tests/fixtures/hf-tokenizers/spm-bpe")).unwrap();
    let ids = tok.encode("漢字 😀!", false, false).unwrap();
    assert!(ids.iter().filter(|&&i| tok.id_to_token(i).unwrap().starts_with("<0x")).count() >= 10, "{ids:?}");
    let mut stream = tok.stream(true);
    let pieces: Vec<String> = ids.iter().filter_map(|&i| stream.push(i).unwrap()).collect();
    assert_eq!(stream.finish(), None);
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
    assert_eq!(pieces.concat(), " 漢字 😀!");
}

/// A directory with only a SentencePiece `tokenizer.model` runs the SentencePiece engine
/// and gives the `sentencepiece` library's own ids and text.
#[test]
fn sentencepiece_model_equals_the_sentencepiece_library() {
    let dir = lamina_testkit::repo_root().join("tests/fixtures/hf-tokenizers/sentencepiece");
    let tok = Tokenizer::from_hf_dir(&dir).unwrap();
    assert_eq!((tok.family(), tok.bos_id(), tok.eos_id(), tok.unk_id()), ("SPM", Some(1), Some(2), Some(0)));
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(tok.encode(text, false, false).unwrap(), want, "{text:?}");
        assert_eq!(tok.encode(text, true, false).unwrap(), [&[1], &want[..]].concat(), "{text:?}");
        assert_eq!(tok.decode(&want, true).unwrap(), case["decode"].as_str().unwrap(), "{text:?}");
    }
    // A damaged model file is an error naming it, and a Unigram one is refused.
    let damaged = std::env::temp_dir().join(format!("lamina-spm-{}", std::process::id()));
    std::fs::create_dir_all(&damaged).unwrap();
    let bytes = std::fs::read(dir.join("tokenizer.model")).unwrap();
    std::fs::write(damaged.join("tokenizer.model"), &bytes[..bytes.len() / 2]).unwrap();
    let err = Tokenizer::from_hf_dir(&damaged).unwrap_err().to_string();
    assert!(err.contains("tokenizer.model"), "{err}");
    std::fs::remove_dir_all(damaged).unwrap();
}
