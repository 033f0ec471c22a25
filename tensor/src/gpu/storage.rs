//! `GpuStorage`: a tensor's elements in a pooled device buffer.
//!
//! Layout in the buffer (what every shader assumes): f32/i32/u32 one little-endian word
//! each; f16/bf16 packed two per u32, element 2k in the low half of word k, an odd count
//! padded with a zero half. Data moves to the host only when asked (`to_cpu`).

use super::buffer::{BufferKind, GpuBuffer};
use super::device::GpuDevice;
use crate::error::{invalid, Result};
use crate::storage::CpuStorage;
use crate::DType;
use half::{bf16, f16};
use std::sync::Arc;

/// Elements on a GPU. Cloning shares the buffer (like `Arc`), it does not copy it.
#[derive(Clone)]
pub struct GpuStorage {
    pub(crate) buffer: Arc<GpuBuffer>,
    dtype: DType,
    /// Elements (not words, not bytes).
    len: usize,
    device: Arc<GpuDevice>,
}

impl std::fmt::Debug for GpuStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuStorage({} x {}, gpu:{})", self.len, self.dtype, self.device.ordinal())
    }
}

/// u32 words holding `len` elements of `dtype`.
pub fn words_for(dtype: DType, len: usize) -> usize {
    match dtype.size_in_bytes() {
        2 => len.div_ceil(2),
        _ => len,
    }
}

impl GpuStorage {
    /// A buffer for `len` elements with unspecified contents (kernels write every word).
    /// Fails cleanly when the tensor exceeds what one storage binding can hold.
    pub fn alloc(device: &Arc<GpuDevice>, dtype: DType, len: usize) -> Result<GpuStorage> {
        let bytes = (words_for(dtype, len) as u64).saturating_mul(4);
        let max = device.summary().max_storage_buffer_binding_size;
        if bytes > max {
            return Err(invalid(
                "gpu",
                format!(
                    "a {dtype} tensor of {len} elements needs {bytes} bytes, over this device's \
                     max_storage_buffer_binding_size of {max} bytes ({})",
                    device.summary().name
                ),
            ));
        }
        let buffer = device.pool.get(BufferKind::Storage, bytes)?;
        Ok(GpuStorage { buffer: Arc::new(buffer), dtype, len, device: device.clone() })
    }

    /// `len` zeros.
    pub fn zeros(device: &Arc<GpuDevice>, dtype: DType, len: usize) -> Result<GpuStorage> {
        let s = GpuStorage::alloc(device, dtype, len)?;
        device.clear_buffer(s.raw(), words_for(dtype, len) as u64 * 4);
        Ok(s)
    }

    /// Upload host elements.
    pub fn from_cpu(cpu: &CpuStorage, device: &Arc<GpuDevice>) -> Result<GpuStorage> {
        let s = GpuStorage::alloc(device, cpu.dtype(), cpu.len())?;
        let mut bytes: Vec<u8> = match cpu {
            CpuStorage::F32(v) => bytemuck::cast_slice(v).to_vec(),
            CpuStorage::I32(v) => bytemuck::cast_slice(v).to_vec(),
            CpuStorage::U32(v) => bytemuck::cast_slice(v).to_vec(),
            CpuStorage::F16(v) => bytemuck::cast_slice(v).to_vec(),
            CpuStorage::BF16(v) => bytemuck::cast_slice(v).to_vec(),
        };
        bytes.resize(words_for(cpu.dtype(), cpu.len()) * 4, 0);
        device.write_buffer(s.raw(), &bytes)?;
        Ok(s)
    }

    /// Download to the host (submits pending work and waits for it).
    pub fn to_cpu(&self) -> Result<CpuStorage> {
        let words = words_for(self.dtype, self.len);
        let bytes = self.device.read_buffer(self.raw(), words as u64 * 4)?;
        let n = self.len;
        Ok(match self.dtype {
            DType::F32 => CpuStorage::F32(bytemuck::pod_collect_to_vec(&bytes)),
            DType::I32 => CpuStorage::I32(bytemuck::pod_collect_to_vec(&bytes)),
            DType::U32 => CpuStorage::U32(bytemuck::pod_collect_to_vec(&bytes)),
            DType::F16 => CpuStorage::F16(bytemuck::pod_collect_to_vec::<u8, f16>(&bytes[..n * 2])),
            DType::BF16 => CpuStorage::BF16(bytemuck::pod_collect_to_vec::<u8, bf16>(&bytes[..n * 2])),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// u32 words the elements occupy.
    pub fn words(&self) -> usize {
        words_for(self.dtype, self.len)
    }

    pub fn device(&self) -> &Arc<GpuDevice> {
        &self.device
    }

    /// The wgpu buffer (for binding in a dispatch).
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.raw()
    }

    /// `Err(DeviceMismatch)`-style error unless `other` lives on the same device.
    pub(crate) fn same_device(&self, op: &'static str, other: &GpuStorage) -> Result<()> {
        if Arc::ptr_eq(&self.device, &other.device) {
            Ok(())
        } else {
            Err(invalid(
                op,
                format!("operands are on gpu:{} and gpu:{}", self.device.ordinal(), other.device.ordinal()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn storage_and_device_are_shareable_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::GpuStorage>();
        shareable::<super::GpuDevice>();
    }
}
