//! Host code of the GPU kernels: one file per op family, named like its shader in
//! `shaders/`. `gpu/backend.rs` maps the backend interface onto these functions.
//!
//! Adding a family: create `kernels/NAME.rs` and `shaders/NAME.wgsl`, add a `pub mod NAME;`
//! line and any `pub use` below, your key types to `all_variants()` (the naga test validates
//! every variant) and your uniform struct to `uniform_layouts()` (the naga test compares it
//! with the WGSL declaration). The pattern, in short (see `elementwise.rs`):
//!
//! ```ignore
//! pub static SHADER: Shader = Shader { name: "norm", source: include_str!("../../../../shaders/norm.wgsl") };
//! #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
//! pub struct NormKey { pub dtype: DType }
//! impl KernelKey for NormKey { /* shader(), entry(), constants(), all() */ }
//! // in the kernel: let out = GpuStorage::alloc(dev, dtype, n)?;
//! //                launch(dev, NormKey { dtype }, &[out.raw(), x.raw()], params.bytes(), invocations, WG)?;
//! ```

/// A uniform struct's layout as Rust lays it out: `uniform_layout!(Type { fields })`, or
/// `uniform_layout!(Type as "WgslName" { fields })` when the WGSL struct is named otherwise.
/// Padding fields (`_pad`) are left out, as the test leaves out WGSL's (`_p0`...).
#[cfg(test)]
macro_rules! uniform_layout {
    ($ty:ty as $wgsl:expr, { $($f:ident),* $(,)? }) => {
        $crate::gpu::kernels::UniformLayout {
            wgsl: $wgsl,
            size: std::mem::size_of::<$ty>(),
            fields: vec![$((stringify!($f), std::mem::offset_of!($ty, $f))),*],
        }
    };
    ($ty:ident { $($f:ident),* $(,)? }) => {
        uniform_layout!($ty as stringify!($ty), { $($f),* })
    };
}

// ---- families owned by the GPU infrastructure ----
pub mod copy;
pub mod elementwise;
pub mod reduce;

// ---- other families: add `pub mod NAME;` lines here ----
pub mod attention;
pub mod cross_entropy;
pub mod index;
pub mod matmul;
pub mod norm;
pub mod optim;
pub mod qmatmul;
pub mod rope;

pub use copy::{cast, copy_contiguous};
pub use elementwise::{binary, cmp, unary, where_cond};
pub use reduce::reduce;

// ---- other families: add `pub use NAME::...;` lines here ----
pub use attention::attention;
pub use cross_entropy::{cross_entropy, cross_entropy_backward};
pub use index::{concat, gather, index_add, index_select, scatter_add};
pub use matmul::matmul;
pub use norm::{layer_norm, layer_norm_backward, rms_norm, rms_norm_backward, softmax_last, softmax_last_backward};
pub use optim::adamw_step;
pub use qmatmul::{qmatmul_n, qmatmul_t};
pub use rope::rope;

use super::device::GpuDevice;
use super::pipeline::{variants, KernelKey, Variant};
use crate::error::{Error, Result};
use crate::{DType, Layout};

/// Every shader variant the pipeline cache can generate (validated by the naga test).
pub fn all_variants() -> Vec<Variant> {
    let mut v = Vec::new();
    v.extend(variants::<elementwise::UnaryKey>());
    v.extend(variants::<elementwise::BinaryKey>());
    v.extend(variants::<elementwise::CmpKey>());
    v.extend(variants::<elementwise::WhereKey>());
    v.extend(variants::<reduce::ReduceKey>());
    v.extend(variants::<copy::CopyKey>());
    // ---- other families: add `v.extend(variants::<NAME::Key>());` lines here ----
    v.extend(variants::<matmul::MatmulKey>());
    v.extend(variants::<matmul::MatvecKey>());
    v.extend(variants::<attention::AttentionKey>());
    v.extend(variants::<norm::NormKey>());
    v.extend(variants::<cross_entropy::CrossEntropyKey>());
    v.extend(variants::<rope::RopeKey>());
    v.extend(variants::<index::IndexKey>());
    v.extend(variants::<optim::AdamWKey>());
    v.extend(variants::<qmatmul::QMatmulKey>());
    v
}

/// A uniform struct's size and field offsets on the Rust side (`uniform_layout!`).
#[cfg(test)]
pub(crate) struct UniformLayout {
    pub wgsl: &'static str,
    pub size: usize,
    pub fields: Vec<(&'static str, usize)>,
}

/// Every uniform struct the kernels upload; the naga test compares each with its WGSL
/// declaration and fails on a uniform it does not find here.
#[cfg(test)]
pub(crate) fn uniform_layouts() -> Vec<UniformLayout> {
    use crate::gpu::StridedParams;
    let mut v = vec![uniform_layout!(StridedParams as "Strided", { n, rank, s0, s1, base, dims })];
    v.extend(reduce::uniform_layouts());
    v.extend(matmul::uniform_layouts());
    v.extend(attention::uniform_layouts());
    v.extend(norm::uniform_layouts());
    v.extend(cross_entropy::uniform_layouts());
    v.extend(rope::uniform_layouts());
    v.extend(index::uniform_layouts());
    v.extend(optim::uniform_layouts());
    v.extend(qmatmul::uniform_layouts());
    v
}

/// Compile (or fetch) `key`'s pipeline and record `invocations` invocations of it in
/// workgroups of `wg`. `buffers` bind to 1, 2, ... and `params` to 0.
pub(crate) fn launch<K: KernelKey>(
    dev: &GpuDevice,
    key: K,
    buffers: &[&wgpu::Buffer],
    params: &[u8],
    invocations: usize,
    wg: u32,
) -> Result<()> {
    if invocations == 0 {
        return Ok(());
    }
    let pipeline = dev.pipeline(key)?;
    let groups = invocations.div_ceil(wg as usize) as u64;
    dev.dispatch(&pipeline, buffers, params, dev.grid(groups)?)
}

pub(crate) fn float_only(op: &'static str, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::UnsupportedDType { op, dtype })
    }
}

/// The layout must stay inside the storage (a shader would read out of bounds otherwise).
pub(crate) fn check_view(op: &'static str, len: usize, l: &Layout) -> Result<()> {
    if l.storage_extent() > len {
        let (shape, strides, offset) = (l.shape(), l.strides(), l.offset());
        let msg = format!("view {shape:?} (strides {strides:?}, offset {offset}) reaches past {len} elements");
        return Err(crate::error::invalid(op, msg));
    }
    Ok(())
}

#[cfg(test)]
mod validate;
