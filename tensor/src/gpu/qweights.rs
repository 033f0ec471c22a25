//! Quantized weights on a GPU: a `QMatrix`'s blocks re-laid for 4-byte loads, uploaded
//! once per device and kept with the matrix (its clones share the copy).
//!
//! WGSL reads storage as u32 words, and ggml blocks are 18-210 bytes, most not a multiple
//! of 4. Each block is therefore split: its f16 header fields (d, and the minimum m or
//! dmin where the format has one) go to `heads`, two f16 per word, and the rest of the
//! block, always a whole number of words, goes unchanged to `quants`. Nothing is widened,
//! so the GPU copy takes the file's own bits per weight (Q4_0 4.5, Q4_1 5, Q5_0 5.5,
//! Q5_1 6, Q8_0 8.5, Q4_K 4.5, Q5_K 5.5, Q6_K 6.5625). `shaders/qmatmul.wgsl` documents how each
//! format then decodes. Float matrices (F32/F16/BF16) are uploaded dequantized to f32.

use super::device::GpuDevice;
use super::GpuStorage;
use crate::error::{invalid, Result};
use crate::quant::{GgmlType, QMatrix};
use crate::storage::CpuStorage;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// How a block format is split for the GPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GpuBlockLayout {
    /// Elements per block.
    pub block_size: usize,
    /// The bytes of a ggml block that hold its f16 header fields.
    pub heads: Range<usize>,
    /// u32 words of quantized data per block (the block's other bytes).
    pub quant_words: usize,
}

impl GpuBlockLayout {
    /// f16 header fields per block.
    pub fn heads_per_block(&self) -> usize {
        self.heads.len() / 2
    }
}

/// The GPU layout of a block format, or `None` for formats the GPU kernels do not read
/// as blocks (the float types, uploaded dequantized).
pub(crate) fn block_layout(ty: GgmlType) -> Option<GpuBlockLayout> {
    use GgmlType::*;
    let heads = match ty {
        Q4_0 | Q5_0 | Q8_0 => 0..2,      // d
        Q4_1 | Q5_1 | Q4K | Q5K => 0..4, // d, m (K-quants: d, dmin)
        Q6K => 208..210,                 // d comes last
        _ => return None,
    };
    let ts = ty.type_size();
    debug_assert!((ts - heads.len()).is_multiple_of(4), "{ty}: the quantized bytes are whole words");
    Some(GpuBlockLayout { block_size: ty.block_size(), quant_words: (ts - heads.len()) / 4, heads })
}

/// Split ggml blocks (`bytes`, whole blocks of `ty`) into (quant words, header words).
pub(crate) fn relayout(ty: GgmlType, layout: &GpuBlockLayout, bytes: &[u8]) -> (Vec<u32>, Vec<u32>) {
    let ts = ty.type_size();
    let blocks = bytes.len() / ts;
    let mut quants = Vec::with_capacity(blocks * layout.quant_words);
    let mut head_bytes = Vec::with_capacity(blocks * layout.heads.len() + 2);
    for block in bytes.chunks_exact(ts) {
        head_bytes.extend_from_slice(&block[layout.heads.clone()]);
        let (before, after) = (&block[..layout.heads.start], &block[layout.heads.end..]);
        for part in [before, after] {
            quants.extend(part.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])));
        }
    }
    head_bytes.resize(head_bytes.len().next_multiple_of(4), 0);
    let heads = head_bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect();
    (quants, heads)
}

/// A `QMatrix` on one GPU.
pub struct GpuQMatrix {
    pub(crate) ty: GgmlType,
    pub(crate) rows: usize,
    pub(crate) cols: usize,
    pub(crate) weights: GpuWeights,
}

pub(crate) enum GpuWeights {
    /// Block formats, split as `block_layout` says.
    Blocks { layout: GpuBlockLayout, quants: GpuStorage, heads: GpuStorage },
    /// Float formats: the (rows, cols) matrix as f32.
    Float(GpuStorage),
}

impl GpuQMatrix {
    /// Re-lay and upload `w` to `device`. Errors when a buffer would exceed the device's
    /// storage binding limit (splitting a matrix across bindings is not supported).
    fn upload(w: &QMatrix, device: &Arc<GpuDevice>) -> Result<GpuQMatrix> {
        let (ty, rows, cols) = (w.ggml_type(), w.rows(), w.cols());
        let max = device.summary().max_storage_buffer_binding_size;
        let too_big = |what: &str, bytes: u64| -> Result<()> {
            if bytes <= max {
                return Ok(());
            }
            Err(invalid(
                "QMatrix::to_device",
                format!(
                    "a {rows}x{cols} {ty} matrix needs {bytes} bytes of {what} in one GPU buffer, over \
                     this device's max_storage_buffer_binding_size of {max} bytes ({}); splitting a \
                     matrix across buffers is not supported",
                    device.summary().name
                ),
            ))
        };
        let weights = match block_layout(ty) {
            Some(layout) => {
                too_big("quantized blocks", w.n_bytes() as u64)?;
                let (quants, heads) = relayout(ty, &layout, w.data());
                let quants = GpuStorage::from_cpu(&CpuStorage::U32(quants), device)?;
                let heads = GpuStorage::from_cpu(&CpuStorage::U32(heads), device)?;
                GpuWeights::Blocks { layout, quants, heads }
            }
            None => {
                too_big("f32 weights", (rows as u64).saturating_mul(cols as u64).saturating_mul(4))?;
                let t = w.dequantize()?;
                let v = t.to_vec_f32()?;
                GpuWeights::Float(GpuStorage::from_cpu(&CpuStorage::F32(v), device)?)
            }
        };
        Ok(GpuQMatrix { ty, rows, cols, weights })
    }

    pub(crate) fn device(&self) -> &Arc<GpuDevice> {
        match &self.weights {
            GpuWeights::Blocks { quants, .. } => quants.device(),
            GpuWeights::Float(s) => s.device(),
        }
    }

    /// Bytes the weights take in device memory (as requested; the pool may round up).
    pub fn bytes(&self) -> u64 {
        match &self.weights {
            GpuWeights::Blocks { quants, heads, .. } => 4 * (quants.words() + heads.words()) as u64,
            GpuWeights::Float(s) => 4 * s.words() as u64,
        }
    }

    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }

    /// (rows, cols).
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }
}

/// The GPU copies of one `QMatrix`, one per device it has been used on. Shared by the
/// matrix's clones, so a weight is uploaded once however many layers hold it.
#[derive(Default)]
pub(crate) struct GpuCopies(Mutex<Vec<Arc<GpuQMatrix>>>);

impl GpuCopies {
    /// The copy of `w` on `device`, uploading it on first use. The lock is held during
    /// the upload so two threads never upload the same matrix twice.
    pub(crate) fn get(&self, w: &QMatrix, device: &Arc<GpuDevice>) -> Result<Arc<GpuQMatrix>> {
        let mut copies = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = copies.iter().find(|c| Arc::ptr_eq(c.device(), device)) {
            return Ok(c.clone());
        }
        let c = Arc::new(GpuQMatrix::upload(w, device)?);
        copies.push(c.clone());
        Ok(c)
    }

    /// The copy on the device with this ordinal, if one was made.
    pub(crate) fn find(&self, ordinal: usize) -> Option<Arc<GpuQMatrix>> {
        let copies = self.0.lock().unwrap_or_else(|e| e.into_inner());
        copies.iter().find(|c| c.device().ordinal() == ordinal).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_keep_every_byte_and_split_on_words() {
        use GgmlType::*;
        for ty in [Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4K, Q5K, Q6K] {
            let l = block_layout(ty).unwrap();
            assert_eq!(l.heads.len() + 4 * l.quant_words, ty.type_size(), "{ty}");
        }
        assert_eq!(block_layout(Q6K).unwrap().heads_per_block(), 1);
        assert_eq!(block_layout(Q4K).unwrap().heads_per_block(), 2);
        assert!(block_layout(F16).is_none());
    }

    #[test]
    fn relayout_splits_headers_from_quants() {
        // Two Q4_0 blocks: header bytes 0..2, quant bytes 2..18, with recognisable values.
        let bytes: Vec<u8> = (0..36u8).collect();
        let l = block_layout(GgmlType::Q4_0).unwrap();
        let (q, h) = relayout(GgmlType::Q4_0, &l, &bytes);
        assert_eq!(q.len(), 8);
        assert_eq!(q[0], u32::from_le_bytes([2, 3, 4, 5]));
        assert_eq!(q[4], u32::from_le_bytes([20, 21, 22, 23]));
        assert_eq!(h, vec![u32::from_le_bytes([0, 1, 18, 19])]);
        // Q6_K: its d (bytes 208..210) is the header, bytes 0..208 the quants.
        let bytes: Vec<u8> = (0..210).map(|i| i as u8).collect();
        let l = block_layout(GgmlType::Q6K).unwrap();
        let (q, h) = relayout(GgmlType::Q6K, &l, &bytes);
        assert_eq!((q.len(), q[51]), (52, u32::from_le_bytes([204, 205, 206, 207])));
        assert_eq!(h, vec![u32::from_le_bytes([208, 209, 0, 0])]);
    }
}
