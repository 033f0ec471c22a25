//! Shared helpers for the GPU tests: the one device all tests use, data, comparison.
//!
//! Tests skip (printing why) when no adapter exists, unless `LAMINA_REQUIRE_GPU=1`, which
//! turns a missing adapter into a failure (CI machines that must exercise the GPU).
//! `LAMINA_GPU_ORDINAL` picks the adapter (default 0, the best one).

use super::{GpuDevice, GpuOptions, RowReduce};
use crate::storage::CpuStorage;
use crate::{DType, Layout};
use std::sync::{Arc, OnceLock};

/// The shared test device, or `None` (after printing why) when tests should skip.
pub(crate) fn device() -> Option<Arc<GpuDevice>> {
    static LOGGED: OnceLock<()> = OnceLock::new();
    let d = GpuDevice::get(super::test_ordinal()?).ok()?;
    LOGGED.get_or_init(|| eprintln!("GPU tests run on {} ({})", d.summary(), d.kernel_paths()));
    Some(d)
}

/// The shared test device, then, when it uses subgroup or f16 kernels, a second device on
/// the same adapter opened without those features, so the fallback kernels are tested too
/// (empty when tests should skip).
pub(crate) fn devices() -> Vec<Arc<GpuDevice>> {
    static BASELINE: OnceLock<Option<Arc<GpuDevice>>> = OnceLock::new();
    let Some(dev) = device() else { return vec![] };
    let base = BASELINE.get_or_init(|| {
        let missing: Vec<&str> =
            [("subgroups", dev.row_reduce() == RowReduce::Workgroup), ("shader-f16", !dev.f16_math())]
                .into_iter()
                .filter_map(|(name, lacks)| lacks.then_some(name))
                .collect();
        if !missing.is_empty() {
            let why =
                format!("{} runs without {}: those kernel paths are not tested", dev.summary(), missing.join(" and "));
            crate::skip_or_fail("LAMINA_REQUIRE_GPU_FULL", &why);
        }
        if missing.len() == 2 {
            return None; // the shared device already runs every fallback
        }
        let b = GpuDevice::open_with(dev.ordinal(), GpuOptions::BASELINE).expect("a device without optional features");
        eprintln!("fallback kernels tested on a second device ({})", b.kernel_paths());
        Some(b)
    });
    std::iter::once(dev).chain(base.clone()).collect()
}

/// Deterministic values in [lo, hi) (a small LCG; tests must not depend on `rand`).
pub(crate) fn data(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            lo + (hi - lo) * u
        })
        .collect()
}

/// Values that exercise edge cases: zeros, infinities, NaN, tiny and large magnitudes.
pub(crate) const SPECIALS: [f32; 14] =
    [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-6, -1e-6, 1e-30, -3e-39, 100.0, -100.0, 1.0, -1.0, 0.5];

/// All elements of a storage as f32, in order.
pub(crate) fn values(s: &CpuStorage) -> Vec<f32> {
    s.f32_view(&Layout::contiguous(&[s.len()])).into_owned()
}

pub(crate) fn storage(dtype: DType, v: Vec<f32>) -> CpuStorage {
    CpuStorage::from_f32(dtype, v)
}

/// Assert `gpu` matches `cpu` elementwise: NaN where NaN, equal infinities, and otherwise
/// |g - c| <= tol(i, c). Reports the first few mismatches with their inputs.
pub(crate) fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], tol: impl Fn(usize, f32) -> f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    let mut bad = Vec::new();
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let ok = if c.is_nan() || g.is_nan() {
            c.is_nan() && g.is_nan()
        } else if c.is_infinite() || g.is_infinite() {
            c == g
        } else {
            (g - c).abs() <= tol(i, c)
        };
        if !ok {
            bad.push(format!("[{i}] gpu {g:e} cpu {c:e}"));
        }
    }
    assert!(bad.is_empty(), "{what}: {} of {} differ: {}", bad.len(), gpu.len(), bad[..bad.len().min(8)].join(", "));
}

/// Relative tolerance of one rounding to `dtype` (ulp of the storage format), doubled:
/// the GPU and CPU may round f32 values a few f32-ulps apart to neighbouring values.
pub(crate) fn storage_tol(dtype: DType) -> f32 {
    match dtype {
        DType::F32 => 0.0,
        d => 2.0 * d.epsilon() as f32,
    }
}

/// A (rows, cols) matrix of random `ty` blocks: random quantized bytes (every bit used)
/// and f16 header fields of either sign between 1e-3 and 5e-2, where the format has them.
pub(crate) fn random_qmatrix(ty: crate::quant::GgmlType, rows: usize, cols: usize, seed: u64) -> crate::quant::QMatrix {
    let layout = super::qweights::block_layout(ty).expect("a block format");
    let n_blocks = rows * cols / ty.block_size();
    let bytes = data(n_blocks * ty.type_size(), seed, 0.0, 256.0);
    let mut bytes: Vec<u8> = bytes.iter().map(|&v| v as u8).collect();
    let heads = data(n_blocks * layout.heads_per_block(), seed ^ 0x5eed, -1.0, 1.0);
    let mut heads = heads.into_iter();
    for block in bytes.chunks_exact_mut(ty.type_size()) {
        for at in layout.heads.clone().step_by(2) {
            let u = heads.next().expect("one value per header field");
            let v = u.signum() * (1e-3 + 4.9e-2 * u.abs());
            block[at..at + 2].copy_from_slice(&half::f16::from_f32(v).to_le_bytes());
        }
    }
    crate::quant::QMatrix::new(ty, rows, cols, bytes).expect("whole blocks")
}
