//! The quantizers against blocks made by llama.cpp itself: the K-quants
//! (`tests/fixtures/kquant/kquant.gguf`, from `scripts/reference/kquant_reference.py`) and
//! the 32-element formats (`legacy.gguf`, from `legacy_quant_reference.py`), both written
//! with ggml's `ggml_quantize_chunk`, which the scripts check equals llama.cpp's model
//! quantizer: every byte of every block must match, and the blocks must decode to ggml's
//! floats bit for bit (Q5_K and every 32-element format).

use lamina_model::gguf::GgufFile;
use lamina_tensor::quant::{dequantize, quantize_row, GgmlType};

fn fixture() -> GgufFile {
    GgufFile::open(lamina_testkit::fixture("kquant/kquant.gguf")).unwrap()
}

fn legacy_fixture() -> GgufFile {
    GgufFile::open(lamina_testkit::fixture("kquant/legacy.gguf")).unwrap()
}

const LEGACY: [(&str, GgmlType); 5] = [
    ("q4_0", GgmlType::Q4_0),
    ("q4_1", GgmlType::Q4_1),
    ("q5_0", GgmlType::Q5_0),
    ("q5_1", GgmlType::Q5_1),
    ("q8_0", GgmlType::Q8_0),
];

fn f32s(f: &GgufFile, name: &str) -> Vec<f32> {
    f.tensor_f32(name).unwrap().to_vec_f32().unwrap()
}

/// Every row of `f`'s `input` quantized to each `(name, type)` against the blocks stored
/// under `name`, byte for byte.
fn assert_blocks_match(f: &GgufFile, types: &[(&str, GgmlType)]) {
    let (rows, cols) = (f.get_u64("fixture.rows").unwrap() as usize, f.get_u64("fixture.cols").unwrap() as usize);
    let x = f32s(f, "input");
    assert_eq!(x.len(), rows * cols);
    for &(name, ty) in types {
        let info = f.tensor_info(name).unwrap();
        assert_eq!(info.ty, ty);
        let want = f.tensor_bytes(info);
        let row_bytes = ty.row_bytes(cols as u64).unwrap() as usize;
        let mut mismatched = Vec::new();
        for (r, (x, want)) in x.chunks(cols).zip(want.chunks(row_bytes)).enumerate() {
            let mut got = vec![0u8; row_bytes];
            quantize_row(ty, x, &mut got).unwrap();
            if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
                let (block, byte) = (at / ty.type_size(), at % ty.type_size());
                mismatched.push(format!("row {r} block {block} byte {byte}: {} vs llama.cpp {}", got[at], want[at]));
            }
        }
        assert!(mismatched.is_empty(), "{ty}: {} of {rows} rows differ:\n{}", mismatched.len(), mismatched.join("\n"));
    }
}

/// The blocks stored under `name` decode to ggml's floats (`NAME.dequant`), bit for bit.
fn assert_decodes_as_ggml(f: &GgufFile, name: &str, ty: GgmlType) {
    let info = f.tensor_info(name).unwrap();
    let got = dequantize(ty, f.tensor_bytes(info), info.n_elements() as usize).unwrap();
    let want = f32s(f, &format!("{name}.dequant"));
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "{ty} element {i}: {a} vs ggml {b}");
    }
}

#[test]
fn quantized_blocks_equal_llama_cpps_byte_for_byte() {
    assert_blocks_match(&fixture(), &[("q4_k", GgmlType::Q4K), ("q5_k", GgmlType::Q5K), ("q6_k", GgmlType::Q6K)]);
}

#[test]
fn legacy_blocks_equal_llama_cpps_byte_for_byte() {
    assert_blocks_match(&legacy_fixture(), &LEGACY);
}

#[test]
fn legacy_blocks_decode_as_ggml_does() {
    let f = legacy_fixture();
    for (name, ty) in LEGACY {
        assert_decodes_as_ggml(&f, name, ty);
    }
}

#[test]
fn q5_k_decodes_as_ggml_does() {
    assert_decodes_as_ggml(&fixture(), "q5_k", GgmlType::Q5K);
}
