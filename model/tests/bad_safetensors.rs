//! Hostile safetensors files: each gives a clear error, never a panic, and the parser never
//! has more than `64 KiB + 8 × file size` allocated while reading one.

#[path = "support/peak_alloc.rs"]
mod peak_alloc;
mod support;

use lamina_model::safetensors::{self, SafeTensors};
use lamina_model::ModelError;
use lamina_tensor::{DType, Tensor};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn parse(bytes: &[u8]) -> Option<String> {
    let (result, peak) = peak_alloc::peak_during(|| safetensors::parse(bytes).map(|_| ()).map_err(|e| e.to_string()));
    let limit = 64 * 1024 + 8 * bytes.len();
    assert!(peak <= limit, "parsing {} bytes allocated {peak} bytes at peak (limit {limit})", bytes.len());
    result.err()
}

/// A file with header `json` (length-prefixed, unpadded) and `data` zero bytes.
fn file(json: &str, data: usize) -> Vec<u8> {
    let mut b = (json.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(json.as_bytes());
    b.resize(b.len() + data, 0);
    b
}

/// One tensor entry: `"name": {"dtype": .., "shape": .., "data_offsets": ..}`.
fn entry(name: &str, dtype: &str, shape: &str, offsets: &str) -> String {
    format!(r#""{name}":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}"#)
}

fn one(dtype: &str, shape: &str, offsets: &str, data: usize) -> Vec<u8> {
    file(&format!("{{{}}}", entry("w", dtype, shape, offsets)), data)
}

fn sample() -> Vec<u8> {
    let a = Tensor::from_f32s((0..6).map(|i| i as f32).collect(), &[2, 3], DType::F32).unwrap();
    let b = Tensor::from_f32s(vec![1.0, 2.0], &[2], DType::BF16).unwrap();
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::to_bytes(&[("a", &a), ("b", &b)], &meta).unwrap()
}

#[test]
fn valid_files_parse() {
    assert_eq!(parse(&sample()), None);
    assert_eq!(parse(&file("{}", 0)), None);
    assert_eq!(parse(&one("F32", "[2]", "[0,8]", 8)), None);
    assert_eq!(parse(&one("F32", "[0,3]", "[0,0]", 0)), None, "empty tensors are fine");
    // Zero-size tensors may sit anywhere, even inside another's bytes.
    let two = format!("{{{},{}}}", entry("a", "U8", "[4]", "[0,4]"), entry("b", "U8", "[0]", "[2,2]"));
    assert_eq!(parse(&file(&two, 4)), None);
}

#[test]
fn crafted_files_are_refused_with_a_clear_message() {
    let sample = sample();
    let header_len = u64::from_le_bytes(sample[..8].try_into().unwrap()) as usize;
    let patched_len = |n: u64| [n.to_le_bytes().as_slice(), &sample[8..]].concat();
    let deep = format!(r#"{{"w":{{"extra":{}{}}}}}"#, "[".repeat(5000), "]".repeat(5000));
    let long_shape = format!("[{}]", vec!["1"; 100_000].join(","));
    let dup_meta = r#"{"__metadata__":{},"__metadata__":{}}"#;
    let dup_name = format!("{{{},{}}}", entry("w", "U8", "[1]", "[0,1]"), entry("w", "U8", "[1]", "[1,2]"));
    let overlap = format!("{{{},{}}}", entry("a", "U8", "[4]", "[0,4]"), entry("b", "U8", "[2]", "[3,5]"));
    let same_bytes = format!("{{{},{}}}", entry("a", "U8", "[4]", "[0,4]"), entry("b", "I8", "[4]", "[0,4]"));
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("empty file", vec![], &["truncated"]),
        ("7 bytes", vec![2; 7], &["truncated"]),
        ("header length u64::MAX", patched_len(u64::MAX), &["header length"]),
        ("header length just past the file", patched_len((sample.len() - 8 + 1) as u64), &["header length"]),
        ("header cut short", sample[..8 + header_len / 2].to_vec(), &["header length"]),
        ("data cut short", sample[..sample.len() - 1].to_vec(), &["past the end"]),
        ("header is a list", file("[]", 0), &["not a JSON object"]),
        ("header is not JSON", file("{nope", 0), &["header JSON"]),
        (
            "header is not UTF-8",
            file("{\"\u{fffd}\":1}", 0).into_iter().map(|b| if b == 0xef { 0xff } else { b }).collect(),
            &["header JSON"],
        ),
        ("trailing garbage", file("{} x", 0), &["header JSON"]),
        ("deep nesting", file(&deep, 0), &["header JSON"]),
        ("metadata not strings", file(r#"{"__metadata__":{"a":1}}"#, 0), &["header JSON"]),
        ("duplicate __metadata__", file(dup_meta, 0), &["twice"]),
        ("duplicate tensor name", file(&dup_name, 2), &["twice"]),
        ("entry not an object", file(r#"{"w":3}"#, 0), &["header JSON"]),
        ("dtype missing", file(r#"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, 4), &["missing field `dtype`"]),
        ("unknown dtype", one("F4", "[2]", "[0,1]", 1), &["`F4`"]),
        ("negative dimension", one("U8", "[-1]", "[0,1]", 1), &["header JSON"]),
        ("fractional dimension", one("U8", "[1.5]", "[0,1]", 1), &["header JSON"]),
        ("nine dimensions", one("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]", 1), &["more than 8 dimensions"]),
        ("a hundred thousand dimensions", one("U8", &long_shape, "[0,1]", 1), &["more than 8 dimensions"]),
        ("shape overflows u64", one("U8", "[4294967296,4294967296]", "[0,1]", 1), &["overflows"]),
        ("byte size overflows i64", one("F32", "[4294967296,1073741824]", "[0,1]", 1), &["overflows"]),
        ("offsets reversed", one("U8", "[0]", "[4,0]", 4), &["end before"]),
        ("offsets u64::MAX", one("U8", "[1]", "[18446744073709551614,18446744073709551615]", 1), &["past the end"]),
        ("offsets past the data", one("U8", "[2]", "[1,3]", 2), &["past the end"]),
        ("size mismatch", one("F32", "[2]", "[0,4]", 8), &["needs 8 bytes"]),
        ("three offsets", one("U8", "[1]", "[0,1,2]", 2), &["header JSON"]),
        ("one offset", one("U8", "[1]", "[0]", 2), &["header JSON"]),
        ("overlapping tensors", file(&overlap, 5), &["overlap"]),
        ("aliased tensors", file(&same_bytes, 4), &["overlap"]),
        (
            "reserved name __metadata__ as a tensor",
            file(&format!("{{{}}}", entry("__metadata__", "U8", "[1]", "[0,1]")), 1),
            &["header JSON"],
        ),
    ];
    for (name, bytes, words) in &cases {
        let msg = parse(bytes).unwrap_or_else(|| panic!("{name}: parsed without error"));
        assert!(words.iter().any(|w| msg.contains(w)), "{name}: message {msg:?} lacks any of {words:?}");
        assert!(SafeTensors::from_bytes(bytes.clone()).is_err(), "{name}");
    }
    assert!(matches!(safetensors::parse(&one("F4", "[2]", "[0,1]", 1)), Err(ModelError::Unsupported(_))));
}

/// Known dtypes this build does not load parse fine and are refused at load, by name.
#[test]
fn unsupported_dtypes_are_named_at_load() {
    for (dtype, size) in [("I64", 8), ("F64", 8), ("U8", 1), ("BOOL", 1), ("F8_E4M3", 1), ("U16", 2)] {
        let st = SafeTensors::from_bytes(one(dtype, "[2]", &format!("[0,{}]", 2 * size), 2 * size)).unwrap();
        let e = st.load("w", DType::F32).unwrap_err();
        assert!(matches!(e, ModelError::Unsupported(_)) && e.to_string().contains(dtype), "{e}");
    }
}

#[test]
fn every_truncation_is_an_error() {
    let sample = sample();
    for len in 0..sample.len() {
        assert!(parse(&sample[..len]).is_some(), "prefix of {len} bytes parsed");
    }
}

/// The densest header: many tiny entries, each kept in the tensor table.
#[test]
fn densest_header_stays_within_the_allocation_bound() {
    let entries: Vec<String> =
        (0..30_000).map(|i| entry(&format!("{i:x}"), "U8", "[]", &format!("[{i},{}]", i + 1))).collect();
    assert_eq!(parse(&file(&format!("{{{}}}", entries.join(",")), 30_000)), None);
    let empties: Vec<String> = (0..30_000).map(|i| entry(&format!("{i:x}"), "U8", "[0]", "[0,0]")).collect();
    assert_eq!(parse(&file(&format!("{{{}}}", empties.join(",")), 0)), None);
}

fn mutate(mut bytes: Vec<u8>, flips: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let n = bytes.len();
    for &(at, v) in flips {
        bytes[at % n] = v;
    }
    if let Some(c) = cut {
        bytes.truncate(c % (n + 1));
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Random byte changes and truncations never panic; what parses loads or is refused.
    #[test]
    fn mutated_files_never_panic(
        flips in prop::collection::vec((0usize..512, any::<u8>()), 1..6),
        cut in prop::option::of(0usize..512),
    ) {
        let bytes = mutate(sample(), &flips, cut);
        if parse(&bytes).is_none() {
            let st = SafeTensors::from_bytes(bytes).unwrap();
            for name in st.names() {
                let _ = st.load(name, DType::F32);
            }
        }
    }

    /// Digits in the header changed to other digits: offsets and shapes that still parse as JSON.
    #[test]
    fn mutated_numbers_never_panic(at in prop::collection::vec(0usize..200, 1..4), digit in b'0'..=b'9') {
        let mut bytes = sample();
        for a in at {
            let i = 8 + a % (bytes.len() - 8);
            if bytes[i].is_ascii_digit() {
                bytes[i] = digit;
            }
        }
        let _ = parse(&bytes);
    }
}
