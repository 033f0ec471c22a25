//! llama.cpp's own tokenizer tests: every `ggml-vocab-*.gguf` that comes with a
//! `.inp`/`.out` pair (texts and llama.cpp's token ids, run by its
//! `tests/test-tokenizer-0.cpp` with `add_special = false, parse_special = false`) must
//! give exactly those ids. The files come from `scripts/fetch-llama-vocab.sh`.

use lamina_model::gguf::GgufFile;
use lamina_model::{fixtures, Tokenizer};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Every vocabulary with a test pair, built once for all the tests here (None when the
/// files are missing), with the time each took to build.
fn tokenizers() -> Option<&'static [(PathBuf, Tokenizer, std::time::Duration)]> {
    static ALL: OnceLock<Option<Vec<(PathBuf, Tokenizer, std::time::Duration)>>> = OnceLock::new();
    ALL.get_or_init(|| {
        let dir = fixtures::llama_vocab_for_test()?;
        let vocabs = vocabularies(&dir);
        assert!(vocabs.len() >= 15, "only {} vocabularies with test pairs in {}", vocabs.len(), dir.display());
        let load = |path: PathBuf| {
            let file = GgufFile::open(&path).unwrap();
            let t0 = std::time::Instant::now();
            let tok = Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{}: {e}", name(&path)));
            (path, tok, t0.elapsed())
        };
        Some(vocabs.into_iter().map(load).collect())
    })
    .as_deref()
}

/// The pairs of `<vocab>.inp` / `<vocab>.out`, read as `test-tokenizer-0.cpp` reads them:
/// texts separated by `\n__ggml_vocab_test__\n`, one line of ids per text.
fn read_pairs(vocab: &Path) -> Vec<(String, Vec<u32>)> {
    let with = |ext: &str| PathBuf::from(format!("{}.{ext}", vocab.display()));
    let raw = std::fs::read_to_string(with("inp")).unwrap();
    let out = std::fs::read_to_string(with("out")).unwrap();
    let sep = "\n__ggml_vocab_test__\n";
    let mut texts = Vec::new();
    let mut rest = raw.as_str();
    while !rest.is_empty() {
        match rest.find(sep) {
            Some(at) => {
                texts.push(rest[..at].to_string());
                rest = &rest[at + sep.len()..];
            }
            None => {
                texts.push(rest.to_string());
                rest = "";
            }
        }
    }
    let ids: Vec<Vec<u32>> = out.lines().map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect()).collect();
    assert_eq!(texts.len(), ids.len(), "{}: texts and id lines differ in number", vocab.display());
    texts.into_iter().zip(ids).collect()
}

/// The vocabularies in `dir` that have a test pair.
fn vocabularies(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .filter(|p| PathBuf::from(format!("{}.inp", p.display())).is_file())
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_vocabulary_reproduces_llama_cpp_ids() {
    let Some(all) = tokenizers() else { return };
    let mut report = Vec::new();
    for (path, tok, built) in all {
        let pairs = read_pairs(path);
        let mut failed = 0;
        for (text, want) in &pairs {
            let got = tok.encode(text, false, false).unwrap();
            if &got != want {
                failed += 1;
                report.push(format!("{} {text:?}:\n  llama.cpp {want:?}\n  lamina    {got:?}", name(path)));
            }
        }
        eprintln!(
            "{:32} {:>4} {:>7} tokens, built in {:>4} ms: {}/{} texts equal",
            name(path),
            tok.family(),
            tok.vocab_size(),
            built.as_millis(),
            pairs.len() - failed,
            pairs.len()
        );
    }
    assert!(report.is_empty(), "{} texts differ:\n{}", report.len(), report.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Decoding, against llama.cpp's `llama_detokenize` (tests/fixtures/llama-vocab/, made by
// scripts/reference/llama_vocab_reference.py)

/// One fixture value: "=" is the text itself, {"around": [a, b]} the text between a and
/// b, {"hex": ..} bytes that are not UTF-8 (compared as decoded lossily).
fn expected_text(v: &serde_json::Value, text: &str) -> String {
    if v == "=" {
        return text.to_string();
    }
    if let Some(s) = v.as_str() {
        return s.to_string();
    }
    if let Some(a) = v.get("around") {
        return format!("{}{text}{}", a[0].as_str().unwrap(), a[1].as_str().unwrap());
    }
    let hex = v["hex"].as_str().unwrap();
    let bytes: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn ids_of(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// With add_special and parse_special, ids equal llama.cpp's too; and decoding
/// (skipping special tokens or not) gives llama.cpp's text: its leading-space removal,
/// space clean-up and byte tokens included. Where llama.cpp's decode(encode(x)) is x,
/// so is ours.
#[test]
fn decoding_equals_llama_cpp() {
    let Some(all) = tokenizers() else { return };
    let path = fixtures::repo_root().join("tests/fixtures/llama-vocab/detokenize.json");
    let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let vocabs = fixture["vocabs"].as_object().unwrap();
    assert_eq!(vocabs.len(), all.len(), "the fixture covers every vocabulary with a test pair");
    let (mut report, mut round_trips, mut checked) = (Vec::new(), 0, 0);
    for (path, tok, _) in all {
        let file = name(path);
        let entries = &vocabs[&file];
        for ((text, plain), e) in read_pairs(path).iter().zip(entries.as_array().unwrap()) {
            let special = match &e["special_ids"] {
                v if v.get("add").is_some() => [ids_of(&v["add"][0]), plain.clone(), ids_of(&v["add"][1])].concat(),
                v => ids_of(&v["ids"]),
            };
            let mut check = |what: &str, got: String, want: &serde_json::Value| {
                checked += 1;
                let want = expected_text(want, text);
                if got != want {
                    report.push(format!("{file} {text:?} {what}: llama.cpp {want:?}, lamina {got:?}"));
                }
            };
            check("decode(plain ids, specials shown)", tok.decode(plain, false).unwrap(), &e["plain_ids_special"]);
            check(
                "decode(special ids, specials skipped)",
                tok.decode(&special, true).unwrap(),
                &e["special_ids_plain"],
            );
            check(
                "decode(special ids, specials shown)",
                tok.decode(&special, false).unwrap(),
                &e["special_ids_special"],
            );
            round_trips += (e["plain_ids_special"] == "=") as usize;
            let got = tok.encode(text, true, true).unwrap();
            if got != special {
                report.push(format!(
                    "{file} {text:?} encode(add_special, parse_special): llama.cpp {special:?}, lamina {got:?}"
                ));
            }
        }
    }
    eprintln!("{checked} decodes equal llama.cpp's; {round_trips} texts decode back to themselves in both");
    assert!(report.is_empty(), "{} differ:\n{}", report.len(), report.join("\n"));
}

/// Streaming never splits a character: every vocabulary's texts (emoji and CJK among
/// them, often as several byte tokens), fed one token at a time, come out as whole
/// characters only, and all together as the full decode.
#[test]
fn streaming_never_splits_a_character() {
    let Some(all) = tokenizers() else { return };
    let mut held_back = 0;
    for (path, tok, _) in all {
        for (text, _) in read_pairs(path) {
            let ids = tok.encode(&text, true, true).unwrap();
            for skip_special in [false, true] {
                let mut whole = Vec::new();
                for &id in &ids {
                    whole.extend(tok.token_to_piece(id, !skip_special).unwrap());
                }
                let Ok(whole) = String::from_utf8(whole) else { continue };
                let mut stream = tok.stream(skip_special);
                let mut pieces = Vec::new();
                for &id in &ids {
                    match stream.push(id).unwrap() {
                        Some(p) => pieces.push(p),
                        None => held_back += 1,
                    }
                }
                assert_eq!(stream.finish(), None, "{}: {text:?}", name(path));
                assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{}: {pieces:?}", name(path));
                assert_eq!(pieces.concat(), whole, "{}: {text:?}", name(path));
            }
        }
    }
    assert!(held_back > 0, "some token should end inside a character");
}
