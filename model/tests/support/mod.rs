//! Helpers shared by the model crate's integration tests.
#![allow(dead_code)]

pub mod arch_fixture;

use lamina_model::gguf::{self, GgufTensor, MetaArray, MetaValue};
use lamina_tensor::quant::GgmlType;
use std::path::PathBuf;

/// A fresh, empty directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lamina-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Metadata of every value type, nested arrays included, in a fixed order.
pub fn sample_metadata() -> Vec<(String, MetaValue)> {
    let kv = |k: &str, v| (k.to_string(), v);
    vec![
        kv("general.architecture", MetaValue::String("llama".into())),
        kv("general.name", MetaValue::String("tiny ünïcode".into())),
        kv("llama.block_count", MetaValue::U32(2)),
        kv("llama.embedding_length", MetaValue::U64(64)),
        kv("llama.rope.freq_base", MetaValue::F32(10000.0)),
        kv("llama.attention.layer_norm_rms_epsilon", MetaValue::F64(1e-5)),
        kv("t.u8", MetaValue::U8(7)),
        kv("t.i8", MetaValue::I8(-7)),
        kv("t.u16", MetaValue::U16(65535)),
        kv("t.i16", MetaValue::I16(-300)),
        kv("t.i32", MetaValue::I32(-1)),
        kv("t.i64", MetaValue::I64(i64::MIN)),
        kv("t.bool", MetaValue::Bool(true)),
        kv("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::String(vec!["<s>".into(), "a".into(), "".into()]))),
        kv("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(vec![3, 1, 1]))),
        kv("t.bools", MetaValue::Array(MetaArray::Bool(vec![true, false]))),
        kv("t.f64s", MetaValue::Array(MetaArray::F64(vec![0.5, -2.0]))),
        kv("t.empty", MetaValue::Array(MetaArray::U8(vec![]))),
        kv(
            "t.nested",
            MetaValue::Array(MetaArray::Array(vec![MetaArray::U16(vec![1, 2]), MetaArray::String(vec!["x".into()])])),
        ),
    ]
}

/// Tensors of a few types and ranks: (name, type, ne, bytes).
pub fn sample_tensors() -> Vec<(String, GgmlType, Vec<u64>, Vec<u8>)> {
    let t = |name: &str, ty: GgmlType, ne: &[u64], seed| {
        let n: u64 = ne.iter().product();
        let len = ty.row_bytes(n).unwrap() as usize;
        (name.to_string(), ty, ne.to_vec(), bytes(len, seed))
    };
    let f32s: Vec<u8> = (0..12).flat_map(|i| (i as f32 * 0.25 - 1.0).to_le_bytes()).collect();
    vec![
        ("norm.weight".to_string(), GgmlType::F32, vec![4, 3], f32s),
        t("emb.weight", GgmlType::F16, &[5], 2),
        t("blk.0.q.weight", GgmlType::Q8_0, &[32, 2], 3),
        t("blk.0.k.weight", GgmlType::Q4_1, &[64, 1, 1, 2], 4),
    ]
}

pub fn as_gguf_tensors(t: &[(String, GgmlType, Vec<u64>, Vec<u8>)]) -> Vec<GgufTensor<'_>> {
    t.iter().map(|(name, ty, ne, data)| GgufTensor { name, ty: *ty, ne, data }).collect()
}

/// A small valid GGUF v3 image holding `sample_metadata` and `sample_tensors`.
pub fn sample_gguf() -> Vec<u8> {
    let tensors = sample_tensors();
    gguf::to_bytes(sample_metadata(), &as_gguf_tensors(&tensors)).unwrap()
}
