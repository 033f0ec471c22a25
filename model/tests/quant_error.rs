//! Rounding error of every quantizer, as relative RMSE (`rms(x - dequant(quant(x))) / rms(x)`)
//! on Gaussian rows and on real SmolLM2 weights, against a budget per format: a quantizer
//! that rounds badly (a wrong scale search, a lost fifth bit) fails here even where the
//! bytes still decode. The budgets sit 10-20% above the values measured (printed with --nocapture).
//!
//! SmolLM2's only copy here is Q4_1 (Q8_0 embedding), so its "real" rows are those
//! dequantized: requantizing the Q4_1 matrices to Q4_1 is nearly exact, which is why the
//! real-row budgets use the Q8_0 embedding (finer than every target but Q8_0 itself).

use lamina_model::gguf::GgufFile;
use lamina_tensor::quant::{dequantize, quantize_row, GgmlType};
use lamina_tensor::{DType, Tensor};

/// Relative RMSE of quantizing `x` (rows of `cols`) to `ty` and back.
fn relative_rmse(ty: GgmlType, x: &[f32], cols: usize) -> f64 {
    let row_bytes = ty.row_bytes(cols as u64).unwrap() as usize;
    let mut blocks = vec![0u8; x.len() / cols * row_bytes];
    for (b, r) in blocks.chunks_mut(row_bytes).zip(x.chunks(cols)) {
        quantize_row(ty, r, b).unwrap();
    }
    let y = dequantize(ty, &blocks, x.len()).unwrap();
    let err: f64 = x.iter().zip(&y).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
    let norm: f64 = x.iter().map(|a| (*a as f64).powi(2)).sum();
    (err / norm).sqrt()
}

/// Each format's budget: (type, Gaussian rows, SmolLM2 embedding rows).
const BUDGETS: [(GgmlType, f64, f64); 8] = [
    (GgmlType::Q8_0, 0.0060, 0.0010), // the embedding is Q8_0 already: requantizing it is exact
    (GgmlType::Q6K, 0.020, 0.025),
    (GgmlType::Q5_1, 0.042, 0.049),
    (GgmlType::Q5_0, 0.047, 0.062),
    (GgmlType::Q5K, 0.040, 0.047),
    (GgmlType::Q4_1, 0.086, 0.100),
    (GgmlType::Q4_0, 0.095, 0.125),
    (GgmlType::Q4K, 0.078, 0.093),
];

fn check(what: &str, x: &[f32], cols: usize, budget_of: impl Fn(&(GgmlType, f64, f64)) -> f64) -> Vec<(GgmlType, f64)> {
    let mut got = Vec::new();
    for b in &BUDGETS {
        let e = relative_rmse(b.0, x, cols);
        eprintln!("{what}: {} relative RMSE {e:.5} (budget {})", b.0, budget_of(b));
        assert!(e < budget_of(b), "{what}: {} relative RMSE {e} over its budget {}", b.0, budget_of(b));
        got.push((b.0, e));
    }
    got
}

fn err_of(v: &[(GgmlType, f64)], ty: GgmlType) -> f64 {
    v.iter().find(|(t, _)| *t == ty).unwrap().1
}

#[test]
fn gaussian_rows_within_each_formats_budget() {
    let cols = 1024;
    let x = Tensor::randn(&[96, cols], 0.0, 1.0, 7, DType::F32).unwrap().to_vec_f32().unwrap();
    let e = check("gaussian", &x, cols, |b| b.1);
    // More bits, less error; and the K-quants beat the legacy formats of the same width.
    assert!(err_of(&e, GgmlType::Q6K) < err_of(&e, GgmlType::Q5K));
    assert!(err_of(&e, GgmlType::Q5K) < err_of(&e, GgmlType::Q4K));
    assert!(err_of(&e, GgmlType::Q4K) < err_of(&e, GgmlType::Q4_1));
    assert!(err_of(&e, GgmlType::Q5K) < err_of(&e, GgmlType::Q5_1));
}

#[test]
fn smollm2_rows_within_each_formats_budget() {
    let Some(path) = lamina_testkit::smollm2() else { return };
    let f = GgufFile::open(path).unwrap();
    // 256 embedding rows spread over the vocabulary, first 512 of 576 columns (K-quant
    // rows must be whole super-blocks of 256).
    let embd = f.tensor_f32("token_embd.weight").unwrap().to_vec_f32().unwrap();
    let (dim, cols) = (576, 512);
    let x: Vec<f32> = (0..256).flat_map(|r| embd[r * 191 * dim..r * 191 * dim + cols].to_vec()).collect();
    let e = check("smollm2 token_embd", &x, cols, |b| b.2);
    assert!(err_of(&e, GgmlType::Q6K) < err_of(&e, GgmlType::Q5K));
    assert!(err_of(&e, GgmlType::Q5K) < err_of(&e, GgmlType::Q5_1));
    assert!(err_of(&e, GgmlType::Q4K) < err_of(&e, GgmlType::Q4_1));
    // The Q4_1 matrices: only reported (their values already sit on a 4-bit grid).
    let down = f.tensor_f32("blk.10.ffn_down.weight").unwrap().to_vec_f32().unwrap();
    for ty in [GgmlType::Q4K, GgmlType::Q5K, GgmlType::Q6K] {
        eprintln!("smollm2 blk.10.ffn_down (from Q4_1): {ty} relative RMSE {:.5}", relative_rmse(ty, &down, 1536));
    }
}
