//! Strided view -> contiguous copy, and dtype casts. Shader: `shaders/copy.wgsl`.
//! CPU twins: `CpuStorage::copy_contiguous` and `CpuStorage::cast` (same conversions).

use super::{check_view, launch};
use crate::error::Result;
use crate::gpu::pipeline::{dtype_code, KernelKey, Shader};
use crate::gpu::storage::words_for;
use crate::gpu::{GpuStorage, StridedParams};
use crate::{DType, Layout};

pub static SHADER: Shader = Shader { name: "copy", source: include_str!("../../../../shaders/copy.wgsl") };

const WG: u32 = 256;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CopyKey {
    pub src: DType,
    pub dst: DType,
}

impl KernelKey for CopyKey {
    fn shader(&self) -> &'static Shader {
        &SHADER
    }
    fn entry(&self) -> &'static str {
        "copy"
    }
    fn constants(&self) -> Vec<(&'static str, f64)> {
        vec![("SRC_DT", dtype_code(self.src)), ("DST_DT", dtype_code(self.dst)), ("WG", WG as f64)]
    }
    fn all() -> Vec<Self> {
        DType::ALL.into_iter().flat_map(|src| DType::ALL.map(|dst| CopyKey { src, dst })).collect()
    }
}

/// The elements of the view `l`, contiguous, same dtype.
pub fn copy_contiguous(s: &GpuStorage, l: &Layout) -> Result<GpuStorage> {
    cast(s, l, s.dtype())
}

/// The elements of the view `l` converted to `dtype` (contiguous result).
pub fn cast(s: &GpuStorage, l: &Layout, dtype: DType) -> Result<GpuStorage> {
    check_view("cast", s.len(), l)?;
    let n = l.numel();
    let out = GpuStorage::alloc(s.device(), dtype, n)?;
    // A contiguous same-dtype view starting on a word boundary is a plain buffer copy.
    let start_bytes = l.offset() * dtype.size_in_bytes();
    if dtype == s.dtype() && l.is_contiguous() && start_bytes.is_multiple_of(4) {
        let bytes = words_for(dtype, n) as u64 * 4;
        if bytes > 0 {
            s.device().copy_buffer(s.raw(), start_bytes as u64, out.raw(), 0, bytes);
        }
        return Ok(out);
    }
    let params = StridedParams::new("cast", &[l])?;
    let key = CopyKey { src: s.dtype(), dst: dtype };
    launch(s.device(), key, &[out.raw(), s.raw()], params.bytes(), out.words(), WG)?;
    Ok(out)
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
