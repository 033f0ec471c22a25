//! llama.cpp's own tokenizer tests: every `ggml-vocab-*.gguf` that comes with a
//! `.inp`/`.out` pair (texts and llama.cpp's token ids, run by its
//! `tests/test-tokenizer-0.cpp` with `add_special = false, parse_special = false`) must
//! give exactly those ids. The files come from `scripts/fetch-llama-vocab.sh`.

use lamina_model::gguf::GgufFile;
use lamina_model::Tokenizer;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Every vocabulary with a test pair, built once for all the tests here (None when the
/// files are missing), with the time each took to build.
fn tokenizers() -> Option<&'static [(PathBuf, Tokenizer, std::time::Duration)]> {
    static ALL: OnceLock<Option<Vec<(PathBuf, Tokenizer, std::time::Duration)>>> = OnceLock::new();
    ALL.get_or_init(|| {
        let dir = lamina_testkit::llama_vocab()?;
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
    let path = lamina_testkit::fixture("llama-vocab/detokenize.json");
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

/// Long inputs take time in proportion to their length (the merges run off priority
/// queues, as llama.cpp's): text and a run with no space or newline at all (one word for
/// the byte-level BPE, one line for Gemma 4, one symbol run for SentencePiece), of 8 000
/// and 64 000 characters. Eight times the text may cost at most 32 times the time (up to
/// 16 measured), where a quadratic merge costs 64 times. Times are the thread's CPU time
/// (other processes on a loaded machine do not count), the least of a few runs; a long
/// run under 20 ms passes whatever the ratio, as timer noise dominates there. Speed
/// itself is not asserted.
#[test]
fn long_texts_take_linearithmic_time() {
    let Some(all) = tokenizers() else { return };
    let (small, large) = (8_000, 64_000);
    let mut report = Vec::new();
    for (path, tok, _) in all {
        let sample = read_pairs(path).into_iter().map(|(t, _)| t).max_by_key(|t| t.len()).unwrap();
        let prose: String = sample.chars().cycle().take(large).collect();
        let word: String = "tokenization".chars().cycle().take(large).collect();
        for (what, text) in [("prose", &prose), ("one word", &word)] {
            let cost = |n: usize, runs: usize| {
                let text: String = text.chars().take(n).collect();
                (0..runs).map(|_| thread_cpu_time(|| tok.encode(&text, false, false).unwrap())).min().unwrap()
            };
            let (t_small, t_large) = (cost(small, 3), cost(large, 2));
            let ratio = t_large.as_secs_f64() / t_small.as_secs_f64().max(1e-6);
            eprintln!(
                "{:32} {what:8}: 8 000 chars {:>6.1} ms, 64 000 {:>6.1} ms, x{ratio:.1}",
                name(path),
                ms(t_small),
                ms(t_large)
            );
            if ratio > 32.0 && ms(t_large) > 20.0 {
                report
                    .push(format!("{} {what}: 8 000 chars {t_small:?}, 64 000 {t_large:?} (x{ratio:.1})", name(path)));
            }
        }
    }
    assert!(report.is_empty(), "superlinear tokenization:\n{}", report.join("\n"));
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The CPU time this thread spends in `f` (wall time where there is no thread clock).
fn thread_cpu_time<T>(f: impl FnOnce() -> T) -> std::time::Duration {
    #[cfg(unix)]
    fn now() -> std::time::Duration {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec; the clock id is a POSIX constant.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
        std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
    #[cfg(not(unix))]
    fn now() -> std::time::Duration {
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed()
    }
    let t0 = now();
    std::hint::black_box(f());
    now() - t0
}
