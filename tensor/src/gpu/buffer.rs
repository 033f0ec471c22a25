//! A caching buffer pool. Creating wgpu buffers is slow (driver allocation, zeroing), and a
//! training step allocates the same sizes every iteration, so freed buffers are kept in
//! size buckets and handed out again.
//!
//! Bucket sizes: at least 256 bytes, then four classes per power of two (1, 1.25, 1.5, 1.75
//! times 2^k), so a buffer wastes at most 25% and a bucket serves nearby sizes.
//!
//! Reuse is safe without tracking GPU use: all work goes through one queue in order, so a
//! dispatch recorded after a buffer was reused runs after the dispatches that read it
//! before. The one out-of-order path, `Queue::write_buffer` (which lands before the
//! pending batch), is always preceded by a flush (`GpuDevice::flush`).

use crate::error::{invalid, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What a pooled buffer is for; each kind has its own buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BufferKind {
    /// Tensor data: STORAGE | COPY_SRC | COPY_DST.
    Storage,
    /// Per-dispatch parameters: UNIFORM | COPY_DST.
    Uniform,
    /// Host readback staging: MAP_READ | COPY_DST.
    Readback,
}

impl BufferKind {
    fn usage(self) -> wgpu::BufferUsages {
        use wgpu::BufferUsages as U;
        match self {
            BufferKind::Storage => U::STORAGE | U::COPY_SRC | U::COPY_DST,
            BufferKind::Uniform => U::UNIFORM | U::COPY_DST,
            BufferKind::Readback => U::MAP_READ | U::COPY_DST,
        }
    }
}

/// Round a byte size up to its bucket.
pub(crate) fn bucket_size(bytes: u64) -> u64 {
    let b = bytes.max(256);
    let k = 63 - b.leading_zeros(); // 2^k <= b < 2^(k+1)
    let step = 1u64 << (k - 2); // quarter of 2^k
    b.div_ceil(step) * step
}

/// Idle buffers above this many bytes are released instead of pooled
/// (`LAMINA_GPU_POOL_MIB` overrides; default 1 GiB).
fn pool_cap() -> u64 {
    std::env::var("LAMINA_GPU_POOL_MIB").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(1024) << 20
}

pub(crate) struct BufferPool {
    device: wgpu::Device,
    idle: Mutex<Idle>,
    cap: u64,
}

#[derive(Default)]
struct Idle {
    buckets: HashMap<(BufferKind, u64), Vec<wgpu::Buffer>>,
    bytes: u64,
}

impl BufferPool {
    pub(crate) fn new(device: wgpu::Device) -> BufferPool {
        BufferPool { device, idle: Mutex::new(Idle::default()), cap: pool_cap() }
    }

    /// A buffer of at least `bytes` bytes (contents unspecified), from the pool if one is idle.
    pub(crate) fn get(self: &Arc<Self>, kind: BufferKind, bytes: u64) -> Result<GpuBuffer> {
        let size = bucket_size(bytes);
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let b = idle.buckets.get_mut(&(kind, size)).and_then(|v| v.pop());
            if b.is_some() {
                idle.bytes -= size;
            }
            b
        };
        let buffer = match reused {
            Some(b) => b,
            None => self.create(kind, size)?,
        };
        Ok(GpuBuffer { buffer: Some(buffer), kind, size, requested: bytes, pool: self.clone() })
    }

    fn create(&self, kind: BufferKind, size: u64) -> Result<wgpu::Buffer> {
        let max = self.device.limits().max_buffer_size;
        if size > max {
            return Err(invalid(
                "gpu",
                format!("a buffer of {size} bytes exceeds the device's max_buffer_size ({max})"),
            ));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: kind.usage(),
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            // The idle buffers may be what is in the way: release them and try once more.
            self.trim();
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let retry = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: kind.usage(),
                mapped_at_creation: false,
            });
            if pollster::block_on(scope.pop()).is_some() {
                return Err(invalid("gpu", format!("out of device memory allocating {size} bytes: {e}")));
            }
            return Ok(retry);
        }
        Ok(buffer)
    }

    fn put(&self, kind: BufferKind, size: u64, buffer: wgpu::Buffer) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.bytes + size > self.cap {
            // Dropped, not destroyed: a pending batch may still reference it, and wgpu
            // frees it only once nothing does.
            drop(idle);
            drop(buffer);
            return;
        }
        idle.bytes += size;
        idle.buckets.entry((kind, size)).or_default().push(buffer);
    }

    /// Release every idle buffer.
    pub(crate) fn trim(&self) {
        let drained: Vec<wgpu::Buffer> = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            idle.bytes = 0;
            idle.buckets.drain().flat_map(|(_, v)| v).collect()
        };
        drop(drained); // wgpu frees each once no pending work references it
    }

    pub(crate) fn idle_bytes(&self) -> u64 {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }
}

/// A pooled wgpu buffer; dropping it returns the buffer to its pool.
pub struct GpuBuffer {
    /// Always `Some` until drop.
    buffer: Option<wgpu::Buffer>,
    kind: BufferKind,
    /// Bucket size in bytes (the real size of the wgpu buffer).
    size: u64,
    /// Bytes the owner asked for (<= size).
    requested: u64,
    pool: Arc<BufferPool>,
}

impl GpuBuffer {
    pub fn raw(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }

    /// Bytes asked for when the buffer was taken from the pool.
    pub fn requested_bytes(&self) -> u64 {
        self.requested
    }

    /// Real size of the underlying buffer (the bucket size).
    pub fn capacity(&self) -> u64 {
        self.size
    }
}

impl std::fmt::Debug for GpuBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuBuffer({:?}, {} of {} bytes)", self.kind, self.requested, self.size)
    }
}

impl Drop for GpuBuffer {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.pool.put(self.kind, self.size, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_buffers_return_to_their_bucket() {
        let Some(dev) = crate::gpu::testing::device() else { return };
        // A private pool, so concurrent tests cannot take the buffer meanwhile.
        let pool = Arc::new(BufferPool::new(dev.device.clone()));
        let a = pool.get(BufferKind::Storage, 1000).unwrap();
        assert_eq!((a.capacity(), pool.idle_bytes()), (1024, 0));
        drop(a);
        assert_eq!(pool.idle_bytes(), 1024);
        let b = pool.get(BufferKind::Storage, 900).unwrap(); // same bucket: reused
        assert_eq!((b.requested_bytes(), pool.idle_bytes()), (900, 0));
        let c = pool.get(BufferKind::Uniform, 900).unwrap(); // other kind: fresh
        drop((b, c));
        assert_eq!(pool.idle_bytes(), 2048);
        pool.trim();
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn buckets_cover_and_waste_under_a_quarter() {
        assert_eq!(bucket_size(0), 256);
        assert_eq!(bucket_size(256), 256);
        assert_eq!(bucket_size(257), 320);
        assert_eq!(bucket_size(1000), 1024);
        assert_eq!(bucket_size(1025), 1280);
        for b in [1u64, 300, 4097, 65_537, 1 << 30, (1 << 30) + 1, 123_456_789] {
            let s = bucket_size(b);
            assert!(s >= b && (b < 256 || (s - b) * 4 <= s), "{b} -> {s}");
            assert_eq!(s, bucket_size(s), "bucket sizes are fixed points");
        }
    }
}
