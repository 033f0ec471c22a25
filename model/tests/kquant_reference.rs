//! The K-quant quantizers against blocks made by llama.cpp itself
//! (`tests/fixtures/kquant/kquant.gguf`, written by `scripts/reference/kquant_reference.py`
//! with ggml's `ggml_quantize_chunk`, which the script checks equals `llama_model_quantize`):
//! every byte of every block must match, and Q5_K must decode to ggml's floats bit for bit.

use lamina_model::fixtures;
use lamina_model::gguf::GgufFile;
use lamina_tensor::quant::{dequantize, quantize_row, GgmlType};

fn fixture() -> GgufFile {
    GgufFile::open(fixtures::repo_root().join("tests/fixtures/kquant/kquant.gguf")).unwrap()
}

fn f32s(f: &GgufFile, name: &str) -> Vec<f32> {
    f.tensor_f32(name).unwrap().to_vec_f32().unwrap()
}

#[test]
fn quantized_blocks_equal_llama_cpps_byte_for_byte() {
    let f = fixture();
    let (rows, cols) = (f.get_u64("fixture.rows").unwrap() as usize, f.get_u64("fixture.cols").unwrap() as usize);
    let x = f32s(&f, "input");
    assert_eq!(x.len(), rows * cols);
    for (name, ty) in [("q4_k", GgmlType::Q4K), ("q5_k", GgmlType::Q5K), ("q6_k", GgmlType::Q6K)] {
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

#[test]
fn q5_k_decodes_as_ggml_does() {
    let f = fixture();
    let info = f.tensor_info("q5_k").unwrap();
    let got = dequantize(GgmlType::Q5K, f.tensor_bytes(info), info.n_elements() as usize).unwrap();
    let want = f32s(&f, "q5_k.dequant");
    assert_eq!(got.len(), want.len());
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "element {i}: {a} vs ggml {b}");
    }
}
