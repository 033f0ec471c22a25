//! The two row orders of the q and k projections. Hugging Face checkpoints rotate pairs
//! (x[i], x[i + d/2]) of each head (split halves); GGUF files store the same weights with
//! each head's rows permuted so that llama.cpp's rotation of pairs (x[2i], x[2i+1])
//! gives the same result (convert_hf_to_gguf.py's `permute`). Any (rows = heads * hd, ...)
//! tensor on the output side of q or k, such as a LoRA B matrix, moves between the orders
//! with these.

use crate::error::{ModelError, Result};
use lamina_tensor::Tensor;

fn check(w: &Tensor, heads: usize) -> Result<(usize, usize, usize)> {
    let (rows, cols) = match w.shape() {
        [r, c] => (*r, *c),
        s => return Err(ModelError::Invalid(format!("a q/k row permutation needs a matrix, got shape {s:?}"))),
    };
    if heads == 0 || !rows.is_multiple_of(heads) || !(rows / heads).is_multiple_of(2) {
        return Err(ModelError::Invalid(format!("{rows} rows do not split into {heads} heads of even size")));
    }
    Ok((rows, cols, rows / heads))
}

/// HF (head, half, j) -> GGUF (head, j, half).
pub fn gguf_rows_from_hf(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols, hd) = check(w, heads)?;
    Ok(w.reshape(&[heads, 2, hd / 2, cols])?.permute(&[0, 2, 1, 3])?.contiguous()?.reshape(&[rows, cols])?)
}

/// GGUF (head, j, half) -> HF (head, half, j).
pub fn hf_rows_from_gguf(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols, hd) = check(w, heads)?;
    Ok(w.reshape(&[heads, hd / 2, 2, cols])?.permute(&[0, 2, 1, 3])?.contiguous()?.reshape(&[rows, cols])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_inverse_and_match_the_converter() {
        // 2 heads of 4 rows, 1 column: HF rows [h0: a0 a1 | b0 b1, h1: ...] -> GGUF [a0 b0 a1 b1, ...].
        let hf = Tensor::from_vec((0..8).map(|i| i as f32).collect::<Vec<_>>(), &[8, 1]).unwrap();
        let gguf = gguf_rows_from_hf(&hf, 2).unwrap();
        assert_eq!(gguf.to_vec::<f32>().unwrap(), vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        assert_eq!(hf_rows_from_gguf(&gguf, 2).unwrap().to_vec::<f32>().unwrap(), hf.to_vec::<f32>().unwrap());
        assert!(gguf_rows_from_hf(&hf, 3).is_err());
    }
}
