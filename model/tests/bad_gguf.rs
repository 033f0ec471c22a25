//! Hostile GGUF files: each gives a clear error, never a panic, and the parser never has
//! more than `64 KiB + 10 × file size` allocated while reading one (measured by a counting
//! global allocator). Counts and lengths are checked against the bytes left before
//! anything is reserved for them, so what a file can make the parser allocate is what it
//! holds, times the in-memory size of the smallest item: the worst case is a file of
//! 15-byte metadata entries (two-character keys, one-byte values), ~8.7× in B-tree nodes
//! and the key-order list; lists of empty strings or arrays cost 3× and 2.7×.

#[path = "support/peak_alloc.rs"]
mod peak_alloc;
mod support;

use lamina_model::gguf::{self, GgufFile};
use lamina_tensor::DType;
use proptest::prelude::*;

/// Parse `bytes`, checking the allocation bound; the error message, or `None` on success.
fn parse(bytes: &[u8]) -> Option<String> {
    let (result, peak) = peak_alloc::peak_during(|| gguf::parse(bytes).map(|_| ()).map_err(|e| e.to_string()));
    let limit = 64 * 1024 + 10 * bytes.len();
    assert!(peak <= limit, "parsing {} bytes allocated {peak} bytes at peak (limit {limit})", bytes.len());
    result.err()
}

/// Raw GGUF bytes, written field by field.
#[derive(Clone)]
struct Raw(Vec<u8>);

impl Raw {
    fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        Raw(b"GGUF".to_vec()).u32(version).u64(n_tensors).u64(n_kv)
    }
    fn u8(mut self, v: u8) -> Raw {
        self.0.push(v);
        self
    }
    fn u32(mut self, v: u32) -> Raw {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Raw {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn str(self, s: &str) -> Raw {
        let mut r = self.u64(s.len() as u64);
        r.0.extend_from_slice(s.as_bytes());
        r
    }
    fn zeros(mut self, n: usize) -> Raw {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    /// A key and its value type; the value follows.
    fn key(self, k: &str, ty: u32) -> Raw {
        self.str(k).u32(ty)
    }
    fn tensor(self, name: &str, ne: &[u64], ty: u32, offset: u64) -> Raw {
        let mut r = self.str(name).u32(ne.len() as u32);
        for &d in ne {
            r = r.u64(d);
        }
        r.u32(ty).u64(offset)
    }
    /// Pad to 32 and append `n` data bytes.
    fn data(self, n: usize) -> Raw {
        let pad = self.0.len().next_multiple_of(32) - self.0.len();
        self.zeros(pad + n)
    }
}

/// One f32 tensor of `ne` at `offset`, `data` bytes after the header, alignment `align`.
fn one_tensor(ne: &[u64], ty: u32, offset: u64, data: usize) -> Vec<u8> {
    Raw::header(3, 1, 0).tensor("w", ne, ty, offset).data(data).0
}

fn with_alignment(value_ty: u32, value: u64) -> Vec<u8> {
    let r = Raw::header(3, 1, 1).key("general.alignment", value_ty);
    let r = if value_ty == 8 { r.str("32") } else { r.u32(value as u32) };
    r.tensor("w", &[4], 0, 0).data(64).0
}

fn array_header(elem_ty: u32, n: u64) -> Raw {
    Raw::header(3, 0, 1).key("a", 9).u32(elem_ty).u64(n)
}

/// Arrays nested `depth` deep, the innermost one empty.
fn nested(depth: usize) -> Vec<u8> {
    let mut r = Raw::header(3, 0, 1).key("a", 9);
    for _ in 1..depth {
        r = r.u32(9).u64(1);
    }
    r.u32(4).u64(0).0
}

/// The sample file with byte `at` replaced (as a little-endian u64 or u32).
fn patched(at: usize, value: &[u8]) -> Vec<u8> {
    let mut b = support::sample_gguf();
    b[at..at + value.len()].copy_from_slice(value);
    b
}

#[test]
fn sample_file_is_valid() {
    assert_eq!(parse(&support::sample_gguf()), None);
    assert_eq!(parse(&Raw::header(3, 0, 0).0), None, "an empty GGUF is valid");
    assert_eq!(parse(&one_tensor(&[4], 0, 0, 16)), None);
    assert_eq!(parse(&nested(4)), None);
}

#[test]
fn crafted_files_are_refused_with_a_clear_message() {
    let sample = support::sample_gguf();
    let header_len = gguf::parse(&sample).unwrap().data_offset as usize;
    // 3 f32 values (12 bytes) need 4 more than this file holds after its header.
    let past_eof = one_tensor(&[3], 0, 0, 8);
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("empty file", vec![], &["magic"]),
        ("bad magic", [b"GGUX".as_slice(), &sample[4..]].concat(), &["magic"]),
        ("version 1", patched(4, &1u32.to_le_bytes()), &["version 1"]),
        ("version 99", patched(4, &99u32.to_le_bytes()), &["version 99"]),
        ("version 0", patched(4, &0u32.to_le_bytes()), &["version 0"]),
        ("tensor count u64::MAX", patched(8, &u64::MAX.to_le_bytes()), &["tensor count"]),
        ("metadata count u64::MAX", patched(16, &u64::MAX.to_le_bytes()), &["metadata count"]),
        // 8 + 320 bytes follow the tensor count: room for 10 tensors of 32 bytes, not 11.
        ("tensor count just past the file", Raw::header(3, 11, 0).zeros(320).0, &["tensor count"]),
        ("metadata count just past the file", Raw::header(3, 0, 11).zeros(130).0, &["metadata count"]),
        ("tensors and metadata together past the file", Raw::header(3, 4, 3).zeros(150).0, &["metadata count"]),
        ("metadata count one too many", patched(16, &20u64.to_le_bytes()), &["type", "truncated"]),
        ("tensor count one too many", patched(8, &5u64.to_le_bytes()), &["truncated", "tensor"]),
        ("key length u64::MAX", Raw::header(3, 0, 1).u64(u64::MAX).zeros(64).0, &["truncated", "metadata key"]),
        ("string value length u64::MAX", Raw::header(3, 0, 1).key("a", 8).u64(u64::MAX).zeros(64).0, &["truncated"]),
        ("string value past the end", Raw::header(3, 0, 1).key("a", 8).u64(65).zeros(64).0, &["truncated"]),
        ("u32 array count huge", array_header(4, 1 << 62).zeros(64).0, &["length of array"]),
        ("u64 array count u64::MAX", array_header(10, u64::MAX).zeros(64).0, &["length of array"]),
        ("u32 array count just past the file", array_header(4, 17).zeros(64).0, &["length of array"]),
        ("string array count huge", array_header(8, u64::MAX / 4).zeros(64).0, &["length of array"]),
        ("array of arrays count huge", array_header(9, 1 << 40).zeros(64).0, &["length of array"]),
        ("bool array count huge", array_header(7, 65).zeros(64).0, &["length of array"]),
        ("nested arrays too deep", nested(5), &["nested"]),
        ("nested arrays far too deep", nested(1000), &["nested"]),
        ("unknown value type", Raw::header(3, 0, 1).key("a", 13).zeros(8).0, &["unknown value type 13"]),
        ("unknown array element type", array_header(77, 1).zeros(8).0, &["unknown element type 77"]),
        ("invalid bool byte", Raw::header(3, 0, 1).key("a", 7).u8(2).0, &["not a bool"]),
        ("invalid bool in an array", array_header(7, 2).u8(1).u8(255).0, &["not a bool"]),
        ("duplicate key", Raw::header(3, 0, 2).key("a", 0).u8(1).key("a", 0).u8(2).0, &["twice"]),
        ("unknown ggml type", one_tensor(&[4], 99, 0, 16), &["ggml type id 99"]),
        ("removed ggml type Q4_2", one_tensor(&[32], 4, 0, 32), &["ggml type id 4"]),
        ("zero dimensions", one_tensor(&[], 0, 0, 16), &["0 dimensions"]),
        ("five dimensions", one_tensor(&[1, 1, 1, 1, 1], 0, 0, 16), &["5 dimensions"]),
        ("rank u32::MAX", Raw::header(3, 1, 0).str("w").u32(u32::MAX).zeros(64).0, &["dimensions"]),
        ("dims overflow u64", one_tensor(&[1 << 32, 1 << 32], 0, 0, 16), &["overflow"]),
        ("dims overflow i64", one_tensor(&[1 << 32, 1 << 31], 0, 0, 16), &["overflow"]),
        ("byte size overflows", one_tensor(&[1 << 31, 1 << 31], 0, 0, 16), &["overflow"]),
        ("row not whole blocks", one_tensor(&[16, 2], 2, 0, 64), &["block size"]),
        ("misaligned offset", one_tensor(&[4], 0, 4, 64), &["not aligned"]),
        ("offset past the end", one_tensor(&[4], 0, 1 << 20, 64), &["past the end"]),
        ("offset + size overflows", one_tensor(&[4], 0, u64::MAX - 31, 64), &["past the end"]),
        ("size past the end", past_eof, &["past the end"]),
        ("data section cut short", sample[..sample.len() - 20].to_vec(), &["past the end"]),
        ("header cut short", sample[..header_len - 40].to_vec(), &["truncated"]),
        ("alignment 0", with_alignment(4, 0), &["power of two"]),
        ("alignment 24", with_alignment(4, 24), &["power of two"]),
        ("alignment as a string", with_alignment(8, 0), &["power of two"]),
        (
            "duplicate tensor name",
            Raw::header(3, 2, 0).tensor("w", &[4], 0, 0).tensor("w", &[4], 0, 32).data(64).0,
            &["twice"],
        ),
    ];
    for (name, bytes, words) in &cases {
        let msg = parse(bytes).unwrap_or_else(|| panic!("{name}: parsed without error"));
        assert!(words.iter().any(|w| msg.contains(w)), "{name}: message {msg:?} lacks any of {words:?}");
        // The same file through the public loader.
        assert!(GgufFile::from_bytes(bytes.clone()).is_err(), "{name}");
    }
}

/// Every prefix of a valid file is an error until the last tensor's data is complete.
#[test]
fn every_truncation_is_an_error() {
    let sample = support::sample_gguf();
    let h = gguf::parse(&sample).unwrap();
    let complete = h.tensors.iter().map(|t| h.data_offset + t.offset + t.n_bytes).max().unwrap() as usize;
    for len in 0..=sample.len() {
        let r = parse(&sample[..len]);
        assert_eq!(r.is_none(), len >= complete, "prefix of {len} bytes: {r:?}");
    }
}

/// Files as dense as the format allows, sized to the allocation limit's edge: lists of the
/// smallest items, each of which the parser keeps.
#[test]
fn densest_files_stay_within_the_allocation_bound() {
    let n = 50_000u64;
    let mut empty_strings = array_header(8, n);
    let mut empty_arrays = array_header(9, n);
    for _ in 0..n {
        empty_strings = empty_strings.u64(0);
        empty_arrays = empty_arrays.u32(0).u64(0);
    }
    // Two-character keys: the shortest that can be this many distinct ones.
    let mut many_keys = Raw::header(3, 0, 95 * 95);
    for i in 0..95 * 95 {
        let key = [(i % 95 + 32) as u8, (i / 95 + 32) as u8];
        many_keys = many_keys.str(std::str::from_utf8(&key).unwrap()).u32(0).u8(0);
    }
    let mut many_tensors = Raw::header(3, n, 0);
    for i in 0..n {
        many_tensors = many_tensors.tensor(&format!("{i:x}"), &[0], 0, 0);
    }
    let many_tensors = many_tensors.data(0);
    for (name, file) in
        [("strings", empty_strings), ("arrays", empty_arrays), ("keys", many_keys), ("tensors", many_tensors)]
    {
        assert_eq!(parse(&file.0), None, "{name}");
    }
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

    /// Random byte changes and truncations never panic; what parses can be loaded (or
    /// refused) without panicking either.
    #[test]
    fn mutated_files_never_panic(
        flips in prop::collection::vec((0usize..4096, any::<u8>()), 1..8),
        cut in prop::option::of(0usize..4096),
    ) {
        let bytes = mutate(support::sample_gguf(), &flips, cut);
        if parse(&bytes).is_none() {
            let file = GgufFile::from_bytes(bytes).unwrap();
            for t in &file.tensors {
                let _ = file.load(t, DType::F32);
            }
        }
    }

    /// Flips aimed at the header's counts and lengths, where a wrong value does the most.
    #[test]
    fn mutated_headers_never_panic(at in 0usize..600, value in any::<u64>()) {
        let mut bytes = support::sample_gguf();
        let end = (at + 8).min(bytes.len());
        let at = at.min(end);
        bytes[at..end].copy_from_slice(&value.to_le_bytes()[..end - at]);
        let _ = parse(&bytes);
    }
}
