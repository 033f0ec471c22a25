//! The buffers behind tensors: one closed enum, one variant per backend (candle's design).
//! Adding a backend adds a variant here and the compiler lists every place to extend.

use crate::error::{invalid, Result};
use crate::gpu::{GpuDevice, GpuStorage};
use crate::{DType, Device, Element, Layout};
use half::{bf16, f16};
use std::borrow::Cow;

/// A vector of `n` copies of `v`, failing cleanly instead of aborting when `n` is absurd
/// (hostile shapes must give an error, never an out-of-memory abort).
pub(crate) fn filled<T: Clone>(n: usize, v: T) -> Result<Vec<T>> {
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| invalid("alloc", format!("cannot allocate {n} elements of {} bytes", std::mem::size_of::<T>())))?;
    out.resize(n, v);
    Ok(out)
}

#[derive(Clone, Debug)]
pub enum Storage {
    Cpu(CpuStorage),
    Gpu(GpuStorage),
}

/// Host memory, one variant per dtype.
#[derive(Clone, Debug)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F16(Vec<f16>),
    BF16(Vec<bf16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
}

impl Storage {
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(s) => Device::Gpu(s.device().ordinal()),
        }
    }
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
            Storage::Gpu(s) => s.dtype(),
        }
    }

    /// Elements in the buffer (not the tensor's view of it).
    pub fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            Storage::Gpu(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as host memory: borrowed on the CPU, read back from a GPU (this waits
    /// for the GPU's queued work).
    pub fn to_cpu(&self) -> Result<Cow<'_, CpuStorage>> {
        match self {
            Storage::Cpu(s) => Ok(Cow::Borrowed(s)),
            Storage::Gpu(s) => Ok(Cow::Owned(s.to_cpu()?)),
        }
    }

    /// The elements under `layout`, contiguous, on `device`.
    pub fn to_device(&self, layout: &Layout, device: Device) -> Result<Storage> {
        match (self.copy_contiguous(layout)?, device) {
            (Storage::Cpu(s), Device::Cpu) => Ok(Storage::Cpu(s)),
            (Storage::Gpu(s), Device::Cpu) => Ok(Storage::Cpu(s.to_cpu()?)),
            (Storage::Cpu(s), Device::Gpu(n)) => Ok(Storage::Gpu(GpuStorage::from_cpu(&s, &GpuDevice::get(n)?)?)),
            (Storage::Gpu(s), Device::Gpu(n)) if s.device().ordinal() == n => Ok(Storage::Gpu(s)),
            (Storage::Gpu(s), Device::Gpu(n)) => {
                Ok(Storage::Gpu(GpuStorage::from_cpu(&s.to_cpu()?, &GpuDevice::get(n)?)?))
            }
        }
    }

    /// Copy `chunks` runs of `run` elements from contiguous `src` into this buffer, run i
    /// landing at element `first + i * stride`. Same dtype and device (checked by the caller).
    pub(crate) fn write_runs(
        &mut self,
        src: &Storage,
        chunks: usize,
        run: usize,
        first: usize,
        stride: usize,
    ) -> Result<()> {
        match (self, src) {
            (Storage::Cpu(dst), Storage::Cpu(src)) => {
                fn copy<T: Copy>(d: &mut [T], s: &[T], run: usize, first: usize, stride: usize) {
                    for (i, part) in s.chunks_exact(run.max(1)).enumerate() {
                        let at = first + i * stride;
                        d[at..at + run].copy_from_slice(part);
                    }
                }
                match (dst, src) {
                    (CpuStorage::F32(d), CpuStorage::F32(s)) => copy(d, s, run, first, stride),
                    (CpuStorage::F16(d), CpuStorage::F16(s)) => copy(d, s, run, first, stride),
                    (CpuStorage::BF16(d), CpuStorage::BF16(s)) => copy(d, s, run, first, stride),
                    (CpuStorage::I32(d), CpuStorage::I32(s)) => copy(d, s, run, first, stride),
                    (CpuStorage::U32(d), CpuStorage::U32(s)) => copy(d, s, run, first, stride),
                    _ => return Err(invalid("write_at", "dtype mismatch")),
                }
            }
            (Storage::Gpu(dst), Storage::Gpu(src)) => {
                let size = dst.dtype().size_in_bytes();
                let (run_b, first_b, stride_b) = (run * size, first * size, stride * size);
                // Buffer copies move whole 4-byte words.
                if !(run_b.is_multiple_of(4) && first_b.is_multiple_of(4) && stride_b.is_multiple_of(4)) {
                    return Err(invalid("write_at", "a GPU write of 16-bit elements must cover whole 4-byte words"));
                }
                for i in 0..chunks {
                    if run_b > 0 {
                        dst.device().copy_buffer(
                            src.raw(),
                            (i * run_b) as u64,
                            dst.raw(),
                            (first_b + i * stride_b) as u64,
                            run_b as u64,
                        );
                    }
                }
            }
            _ => return Err(invalid("write_at", "source and destination are on different devices")),
        }
        Ok(())
    }

    /// Ids under `layout` as host integers (index kernels take their ids on the host).
    pub fn i64_values(&self, layout: &Layout) -> Result<Vec<i64>> {
        Ok(self.to_cpu()?.i64_values(layout))
    }
}

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F16(_) => DType::F16,
            CpuStorage::BF16(_) => DType::BF16,
            CpuStorage::I32(_) => DType::I32,
            CpuStorage::U32(_) => DType::U32,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F16(v) => v.len(),
            CpuStorage::BF16(v) => v.len(),
            CpuStorage::I32(v) => v.len(),
            CpuStorage::U32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` zeros, or an error (not an abort) when the allocation cannot be made.
    pub fn zeros(dtype: DType, n: usize) -> Result<CpuStorage> {
        Ok(match dtype {
            DType::F32 => CpuStorage::F32(filled(n, 0.0)?),
            DType::F16 => CpuStorage::F16(filled(n, f16::ZERO)?),
            DType::BF16 => CpuStorage::BF16(filled(n, bf16::ZERO)?),
            DType::I32 => CpuStorage::I32(filled(n, 0)?),
            DType::U32 => CpuStorage::U32(filled(n, 0)?),
        })
    }

    /// `n` copies of `value` stored as `dtype`, or an error when the allocation fails.
    pub fn full(dtype: DType, n: usize, value: f32) -> Result<CpuStorage> {
        Ok(match dtype {
            DType::F32 => CpuStorage::F32(filled(n, value)?),
            DType::F16 => CpuStorage::F16(filled(n, f16::from_f32(value))?),
            DType::BF16 => CpuStorage::BF16(filled(n, bf16::from_f32(value))?),
            DType::I32 => CpuStorage::I32(filled(n, value as i32)?),
            DType::U32 => CpuStorage::U32(filled(n, value as u32)?),
        })
    }

    /// Store f32 values in `dtype`, rounding to nearest (saturating for integers).
    pub fn from_f32(dtype: DType, v: Vec<f32>) -> CpuStorage {
        match dtype {
            DType::F32 => CpuStorage::F32(v),
            DType::F16 => CpuStorage::F16(v.iter().map(|&x| f16::from_f32(x)).collect()),
            DType::BF16 => CpuStorage::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect()),
            DType::I32 => CpuStorage::I32(v.iter().map(|&x| x as i32).collect()),
            DType::U32 => CpuStorage::U32(v.iter().map(|&x| x as u32).collect()),
        }
    }

    pub fn from_vec<T: Element>(v: Vec<T>) -> CpuStorage {
        // Each arm is a no-op cast through Any: T is statically one of the five types.
        let any: Box<dyn std::any::Any> = Box::new(v);
        match T::DTYPE {
            DType::F32 => CpuStorage::F32(*any.downcast().unwrap()),
            DType::F16 => CpuStorage::F16(*any.downcast().unwrap()),
            DType::BF16 => CpuStorage::BF16(*any.downcast().unwrap()),
            DType::I32 => CpuStorage::I32(*any.downcast().unwrap()),
            DType::U32 => CpuStorage::U32(*any.downcast().unwrap()),
        }
    }

    /// The elements under `layout` as f32 in row-major order: borrowed when the storage is
    /// f32 and the layout contiguous (the common fast path), converted otherwise.
    pub fn f32_view(&self, layout: &Layout) -> Cow<'_, [f32]> {
        if let CpuStorage::F32(v) = self {
            if layout.is_contiguous() {
                let start = layout.offset();
                return Cow::Borrowed(&v[start..start + layout.numel()]);
            }
        }
        Cow::Owned(self.gather_f32(layout))
    }

    fn gather_f32(&self, layout: &Layout) -> Vec<f32> {
        fn go<T: Element>(v: &[T], layout: &Layout) -> Vec<f32> {
            let mut out = Vec::with_capacity(layout.numel());
            layout.for_each_row(|start, n, stride| {
                if stride == 1 {
                    out.extend(v[start..start + n].iter().map(|x| x.to_f32()));
                } else {
                    out.extend((0..n).map(|i| v[start + i * stride].to_f32()));
                }
            });
            out
        }
        match self {
            CpuStorage::F32(v) => go(v, layout),
            CpuStorage::F16(v) => go(v, layout),
            CpuStorage::BF16(v) => go(v, layout),
            CpuStorage::I32(v) => go(v, layout),
            CpuStorage::U32(v) => go(v, layout),
        }
    }

    /// The elements under `layout` as i64, for index tensors.
    pub fn i64_values(&self, layout: &Layout) -> Vec<i64> {
        fn go<T: Copy>(v: &[T], layout: &Layout, f: impl Fn(T) -> i64) -> Vec<i64> {
            layout.offsets().map(|o| f(v[o])).collect()
        }
        match self {
            CpuStorage::I32(v) => go(v, layout, |x| x as i64),
            CpuStorage::U32(v) => go(v, layout, |x| x as i64),
            CpuStorage::F32(v) => go(v, layout, |x| x as i64),
            CpuStorage::F16(v) => go(v, layout, |x| x.to_f32() as i64),
            CpuStorage::BF16(v) => go(v, layout, |x| x.to_f32() as i64),
        }
    }

    /// Copy the elements under `layout` into a new contiguous storage of the same dtype.
    pub fn copy_contiguous(&self, layout: &Layout) -> CpuStorage {
        fn go<T: Copy>(v: &[T], layout: &Layout) -> Vec<T> {
            let mut out = Vec::with_capacity(layout.numel());
            layout.for_each_row(|start, n, stride| {
                if stride == 1 {
                    out.extend_from_slice(&v[start..start + n]);
                } else {
                    out.extend((0..n).map(|i| v[start + i * stride]));
                }
            });
            out
        }
        match self {
            CpuStorage::F32(v) => CpuStorage::F32(go(v, layout)),
            CpuStorage::F16(v) => CpuStorage::F16(go(v, layout)),
            CpuStorage::BF16(v) => CpuStorage::BF16(go(v, layout)),
            CpuStorage::I32(v) => CpuStorage::I32(go(v, layout)),
            CpuStorage::U32(v) => CpuStorage::U32(go(v, layout)),
        }
    }

    /// Convert the elements under `layout` to another dtype (contiguous result).
    pub fn cast(&self, layout: &Layout, dtype: DType) -> CpuStorage {
        fn ints<T: Copy>(v: &[T], layout: &Layout, f: impl Fn(T) -> i64) -> Vec<i64> {
            layout.offsets().map(|o| f(v[o])).collect()
        }
        // Integer to integer goes through i64 to stay exact; everything else through f32
        // (f16/bf16/f32 are all exactly representable in f32).
        let int_src = match self {
            CpuStorage::I32(v) => Some(ints(v, layout, |x| x as i64)),
            CpuStorage::U32(v) => Some(ints(v, layout, |x| x as i64)),
            _ => None,
        };
        match (int_src, dtype) {
            (Some(v), DType::I32) => CpuStorage::I32(v.into_iter().map(|x| x as i32).collect()),
            (Some(v), DType::U32) => CpuStorage::U32(v.into_iter().map(|x| x as u32).collect()),
            (Some(v), _) => CpuStorage::from_f32(dtype, v.into_iter().map(|x| x as f32).collect()),
            (None, _) => CpuStorage::from_f32(dtype, self.gather_f32(layout)),
        }
    }

    pub fn as_f32_slice(&self) -> Option<&[f32]> {
        match self {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_f32_slice_mut(&mut self) -> Option<&mut Vec<f32>> {
        match self {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }

    /// Elements under `layout` as a typed Vec (row-major), if `T` matches the dtype.
    pub fn to_vec<T: Element>(&self, layout: &Layout) -> Option<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return None;
        }
        let contiguous = self.copy_contiguous(layout);
        let any: Box<dyn std::any::Any> = match contiguous {
            CpuStorage::F32(v) => Box::new(v),
            CpuStorage::F16(v) => Box::new(v),
            CpuStorage::BF16(v) => Box::new(v),
            CpuStorage::I32(v) => Box::new(v),
            CpuStorage::U32(v) => Box::new(v),
        };
        any.downcast::<Vec<T>>().ok().map(|b| *b)
    }
}
