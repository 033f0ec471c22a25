//! The GGUF writer: write → parse gives back the same metadata (in order), tensor table
//! and bytes; the real model re-written is byte-identical; bad input is refused and
//! leaves no file behind.

mod support;

use lamina_model::gguf::{self, GgufFile, GgufTensor, GgufWriter, MetaValue};
use lamina_model::ModelError;
use lamina_tensor::quant::GgmlType;
use std::borrow::Cow;
use support::{as_gguf_tensors, sample_metadata, sample_tensors, TempDir};

fn check_same(file: &GgufFile, meta: &[(String, MetaValue)], tensors: &[(String, GgmlType, Vec<u64>, Vec<u8>)]) {
    assert_eq!(file.version, 3);
    let got: Vec<(String, MetaValue)> = file.metadata_in_order().map(|(k, v)| (k.to_string(), v.clone())).collect();
    assert_eq!(got, meta);
    assert_eq!(file.tensors.len(), tensors.len());
    for (info, (name, ty, ne, data)) in file.tensors.iter().zip(tensors) {
        assert_eq!((&info.name, info.ty, &info.ne), (name, *ty, ne));
        assert_eq!(info.offset % file.alignment, 0);
        assert_eq!(file.tensor_bytes(info), &data[..], "{name}");
    }
}

#[test]
fn round_trip_in_memory() {
    let (meta, tensors) = (sample_metadata(), sample_tensors());
    let image = gguf::to_bytes(meta.clone(), &as_gguf_tensors(&tensors)).unwrap();
    assert_eq!(image.len() % 32, 0, "the data section ends padded to the alignment");
    check_same(&GgufFile::from_bytes(image).unwrap(), &meta, &tensors);
    let norm = GgufFile::from_bytes(support::sample_gguf()).unwrap().tensor_f32("norm.weight").unwrap();
    assert_eq!(norm.shape(), &[3, 4]);
    assert_eq!(norm.to_vec_f32().unwrap()[5], 0.25);
}

#[test]
fn round_trip_through_a_file_with_custom_alignment() {
    let dir = TempDir::new("gguf-write");
    let mut meta = sample_metadata();
    meta.insert(1, ("general.alignment".into(), MetaValue::U32(64)));
    let tensors = sample_tensors();
    let path = dir.path("m.gguf");
    gguf::write_gguf(&path, meta.clone(), &as_gguf_tensors(&tensors)).unwrap();
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.alignment, 64);
    check_same(&file, &meta, &tensors);
    assert_eq!(dir.files(), ["m.gguf"], "no temporary file is left behind");

    // Overwriting replaces the file whole.
    gguf::write_gguf(&path, vec![], &[]).unwrap();
    let empty = GgufFile::open(&path).unwrap();
    assert!(empty.metadata.is_empty() && empty.tensors.is_empty());
}

#[test]
fn streaming_writer_asks_for_each_tensor_in_order() {
    let mut w = GgufWriter::new(vec![("a".into(), MetaValue::U32(1))]).unwrap();
    assert_eq!(w.add_tensor("x", GgmlType::F32, &[3]).unwrap().offset, 0);
    assert_eq!(w.add_tensor("y", GgmlType::Q8_0, &[32]).unwrap().offset, 32);
    let mut asked = vec![];
    let image = w
        .to_vec(|t| {
            asked.push(t.name.clone());
            Ok(Cow::Owned(vec![t.name.as_bytes()[0]; t.n_bytes as usize]))
        })
        .unwrap();
    assert_eq!(asked, ["x", "y"]);
    let file = GgufFile::from_bytes(image).unwrap();
    assert_eq!(file.tensor_bytes(&file.tensors[1]), &[b'y'; 34]);
}

fn err<T>(r: Result<T, ModelError>) -> String {
    r.map(|_| ()).unwrap_err().to_string()
}

#[test]
fn writer_refuses_bad_input() {
    let kv = |k: &str| (k.to_string(), MetaValue::U8(0));
    assert!(err(GgufWriter::new(vec![kv("a"), kv("b"), kv("a")])).contains("twice"));
    let bad_align = vec![("general.alignment".to_string(), MetaValue::U32(24))];
    assert!(err(GgufWriter::new(bad_align)).contains("power of two"));

    let mut w = GgufWriter::new(vec![]).unwrap();
    assert!(err(w.add_tensor("t", GgmlType::F32, &[])).contains("dimensions"));
    assert!(err(w.add_tensor("t", GgmlType::F32, &[1, 1, 1, 1, 1])).contains("dimensions"));
    assert!(err(w.add_tensor("t", GgmlType::Q4_0, &[16])).contains("blocks"));
    assert!(err(w.add_tensor("t", GgmlType::F32, &[u64::MAX, 2])).contains("overflow"));
    w.add_tensor("t", GgmlType::F32, &[2]).unwrap();
    assert!(err(w.add_tensor("t", GgmlType::F32, &[2])).contains("twice"));

    // Wrong data length: an error, the old file kept, no temporary left.
    let dir = TempDir::new("gguf-write-bad");
    let path = dir.path("m.gguf");
    std::fs::write(&path, b"old").unwrap();
    let short = [GgufTensor { name: "t", ty: GgmlType::F32, ne: &[2], data: &[0; 4] }];
    assert!(err(gguf::write_gguf(&path, vec![], &short)).contains("needs 8 bytes"));
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    assert_eq!(dir.files(), ["m.gguf"]);
    assert!(matches!(gguf::write_gguf(dir.path("no/such/dir/m.gguf"), vec![], &[]), Err(ModelError::Io { .. })));
}

/// Parse SmolLM2 and write it back: the same bytes, so the writer matches llama.cpp's layout.
#[test]
fn rewriting_smollm2_is_byte_identical() {
    let Some(path) = lamina_testkit::smollm2() else { return };
    let original = std::fs::read(&path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    let meta: Vec<(String, MetaValue)> = file.metadata_in_order().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let tensors: Vec<GgufTensor> = file
        .tensors
        .iter()
        .map(|t| GgufTensor { name: &t.name, ty: t.ty, ne: &t.ne, data: file.tensor_bytes(t) })
        .collect();
    let image = gguf::to_bytes(meta, &tensors).unwrap();
    assert_eq!(image.len(), original.len());
    let first_diff = image.iter().zip(&original).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "first differing byte");
}
