//! `QMatrix`: a frozen 2-D weight kept in its ggml block format, for `Tensor::matmul_qt`.
//!
//! Shape (rows, cols) = (output features, input features). Each row is `cols / block_size`
//! whole blocks and rows follow each other with no padding: exactly the bytes of a GGUF
//! weight with `ne = [cols, rows]`, so a loaded file is used without conversion.

use super::{dequantize_row, quantize_row, GgmlType};
use crate::error::{invalid, Error, Result};
use crate::gpu::qweights::{GpuCopies, GpuQMatrix};
use crate::gpu::GpuDevice;
use crate::storage::filled;
use crate::{Device, Tensor};
use rayon::prelude::*;
use std::sync::Arc;

/// A quantized (rows, cols) matrix in ggml's row-major block layout. Clone is O(1).
///
/// The blocks live in host memory; a product with a GPU tensor uploads them to that GPU
/// once (re-laid for word loads, still quantized: `gpu/qweights.rs`) and keeps the copy
/// for the matrix and its clones.
#[derive(Clone)]
pub struct QMatrix {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    data: Blocks,
    gpu: Arc<GpuCopies>,
}

/// Bytes a caller shares with the matrix (a memory-mapped model file).
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Where the blocks live: a buffer of the matrix's own, or a range of a shared one, so a
/// memory-mapped GGUF file is multiplied in place without a copy.
#[derive(Clone)]
enum Blocks {
    Owned(Arc<[u8]>),
    Shared { owner: SharedBytes, start: usize, len: usize },
}

impl std::ops::Deref for Blocks {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Blocks::Owned(b) => b,
            Blocks::Shared { owner, start, len } => &(**owner).as_ref()[*start..*start + *len],
        }
    }
}

impl std::fmt::Debug for QMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "QMatrix({}, {}x{}, {} bytes)", self.ty, self.rows, self.cols, self.data.len())
    }
}

impl QMatrix {
    /// Wrap `bytes` (GGUF layout, `rows` rows of `cols` elements of type `ty`). Errors when
    /// `ty` cannot be dequantized by this build, when `cols` is not a whole number of
    /// blocks, or when the byte count is not `rows * row_bytes(cols)`.
    pub fn new(ty: GgmlType, rows: usize, cols: usize, bytes: impl Into<Arc<[u8]>>) -> Result<QMatrix> {
        Self::with_blocks(ty, rows, cols, Blocks::Owned(bytes.into()))
    }

    /// A matrix over `owner[range]` without copying it (the weights of a memory-mapped
    /// file); `owner` stays alive as long as the matrix (or a clone) does.
    pub fn from_shared(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        owner: SharedBytes,
        range: std::ops::Range<usize>,
    ) -> Result<QMatrix> {
        if range.start > range.end || range.end > (*owner).as_ref().len() {
            return Err(invalid("QMatrix::from_shared", format!("range {range:?} is outside the shared bytes")));
        }
        Self::with_blocks(ty, rows, cols, Blocks::Shared { owner, start: range.start, len: range.len() })
    }

    fn with_blocks(ty: GgmlType, rows: usize, cols: usize, data: Blocks) -> Result<QMatrix> {
        let row_bytes = check_type_and_cols("QMatrix::new", ty, cols)?;
        let want = row_bytes.checked_mul(rows).ok_or_else(|| invalid("QMatrix::new", "size overflows"))?;
        if data.len() != want {
            return Err(invalid(
                "QMatrix::new",
                format!("a {rows}x{cols} {ty} matrix takes {want} bytes ({row_bytes} per row), got {}", data.len()),
            ));
        }
        Ok(QMatrix { ty, rows, cols, data, gpu: Arc::default() })
    }

    /// Quantize a 2-D float tensor (rows, cols) to `ty`, rows in parallel, rounding as
    /// ggml's reference quantizers do.
    pub fn from_tensor(t: &Tensor, ty: GgmlType) -> Result<QMatrix> {
        const OP: &str = "QMatrix::from_tensor";
        t.check_float(OP)?;
        if t.rank() != 2 {
            return Err(invalid(OP, format!("expected a 2-D (rows, cols) tensor, got shape {:?}", t.shape())));
        }
        let (rows, cols) = (t.shape()[0], t.shape()[1]);
        let row_bytes = check_type_and_cols(OP, ty, cols)?;
        let x = t.to_vec_f32()?; // (rows, cols), row-major whatever t's strides were
        let mut data = filled(rows * row_bytes, 0u8)?;
        if rows > 0 && row_bytes > 0 {
            crate::cpu::parallel::install(|| {
                data.par_chunks_mut(row_bytes).zip(x.par_chunks(cols)).try_for_each(|(b, r)| quantize_row(ty, r, b))
            })?;
        }
        QMatrix::new(ty, rows, cols, data)
    }

    /// The f32 (rows, cols) matrix the blocks encode.
    pub fn dequantize(&self) -> Result<Tensor> {
        let n = self.rows.checked_mul(self.cols).ok_or_else(|| invalid("QMatrix::dequantize", "size overflows"))?;
        let v = super::dequantize(self.ty, &self.data, n)?;
        Tensor::from_vec(v, &[self.rows, self.cols])
    }

    /// Row `i` as f32 into `out` (length `cols`).
    pub fn dequantize_row_into(&self, i: usize, out: &mut [f32]) -> Result<()> {
        if i >= self.rows {
            return Err(Error::IndexOutOfRange {
                op: "QMatrix::dequantize_row_into",
                index: i as i64,
                size: self.rows,
            });
        }
        dequantize_row(self.ty, self.row(i), out)
    }

    /// This matrix with its blocks also on `device` (uploaded now, unless they already
    /// are), so the first product there does not pay for the upload. The host blocks stay:
    /// the CPU kernels and embedding lookups read them. A no-op for the CPU.
    pub fn to_device(&self, device: Device) -> Result<QMatrix> {
        if let Device::Gpu(n) = device {
            self.gpu_copy(&GpuDevice::get(n)?)?;
        }
        Ok(self.clone())
    }

    /// The copy of the blocks on `device`, uploaded on first use.
    pub(crate) fn gpu_copy(&self, device: &Arc<GpuDevice>) -> Result<Arc<GpuQMatrix>> {
        self.gpu.get(self, device)
    }

    /// Bytes the matrix takes on GPU `ordinal`, or `None` when it has not been uploaded
    /// there. Block formats take their file size (`n_bytes`), rounded up to a word.
    pub fn gpu_bytes(&self, ordinal: usize) -> Option<u64> {
        self.gpu.find(ordinal).map(|c| c.bytes())
    }

    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// (rows, cols).
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// The raw block bytes, GGUF layout.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Bytes one row takes.
    pub fn row_bytes(&self) -> usize {
        self.data.len().checked_div(self.rows).unwrap_or(0)
    }

    /// Bytes of the whole matrix (what one matrix-vector product streams).
    pub fn n_bytes(&self) -> usize {
        self.data.len()
    }

    /// The block bytes of row `i`.
    pub(crate) fn row(&self, i: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.data[i * rb..(i + 1) * rb]
    }
}

/// Checks that `ty` is a weight type the kernels read and `cols` a whole number of its
/// blocks; returns the bytes per row.
fn check_type_and_cols(op: &'static str, ty: GgmlType, cols: usize) -> Result<usize> {
    if !ty.can_dequantize() {
        return Err(invalid(op, format!("type {ty} cannot be read by this build")));
    }
    match ty.row_bytes(cols as u64) {
        Some(b) => usize::try_from(b).map_err(|_| invalid(op, "row size overflows")),
        None => {
            Err(invalid(op, format!("{cols} columns are not a whole number of {ty} blocks of {}", ty.block_size())))
        }
    }
}
