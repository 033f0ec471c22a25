//! A researcher's own GEMM micro-kernel, run by the engine's packed, blocked driver
//! (`driver.rs`) in place of the ISA level's own, so it goes through the same conformance
//! rows, property tests and benchmarks as the built-in kernels (`examples/custom_gemm.rs`).
//!
//! A micro-kernel computes one MR x NR register tile of C from one packed A panel and one
//! packed B panel (`pack.rs`); the driver does everything else (blocking for the caches,
//! threads, packing through any strides, alpha/beta, edge tiles, batches). Writing one:
//!
//! ```ignore
//! struct Mine;
//! impl GemmMicroKernel<4, 16> for Mine {
//!     const NAME: &'static str = "mine 4x16";
//!     fn tile(kc: usize, a: &[f32], b: &[f32], acc: &mut [[f32; 16]; 4]) { /* ... */ }
//! }
//! lamina_tensor::cpu::gemm::set_custom_kernel(Some(CustomKernel::new::<4, 16, Mine>()?));
//! ```
//!
//! While one is registered, every product `sgemm` computes in this process runs it: every
//! f32/f16/bf16 matmul on the CPU, the two products inside attention, the float products
//! quantized matmul makes with dequantized weight slabs, and the products the engine would
//! otherwise give to its unpacked small-product and single-row paths (`small.rs`), so a
//! check of small shapes checks the researcher's code.

use super::driver::{store_tile, Kernel};
use super::pack::{pack_a, pack_b};
use crate::error::{invalid, Result};
use std::sync::RwLock;

/// An MR x NR register-tile GEMM micro-kernel.
///
/// `tile(kc, a, b, acc)` must set `acc[i][j] = sum over p < kc of a[p * MR + i] * b[p * NR + j]`
/// (overwriting `acc`), where
/// - `a` is a packed A panel, `kc * MR` floats: step p holds rows 0..MR of column p of this
///   tile's rows of A, alpha already folded in; rows past the matrix's edge are zero;
/// - `b` is a packed B panel, `kc * NR` floats: step p holds columns 0..NR of row p of this
///   tile's columns of B; columns past the edge are zero.
///
/// The driver adds `beta * C` and stores the tile, so a kernel only accumulates. It may use
/// any instruction set it checks for at run time (`is_x86_feature_detected!`) and any
/// summation order; `kernel check`'s tolerances are the built-in kernels'.
pub trait GemmMicroKernel<const MR: usize, const NR: usize>: 'static {
    /// Shown in messages and benchmark labels.
    const NAME: &'static str;
    /// Depth of a k block: a KC x NR B panel should stay in L1d next to an A panel.
    const KC: usize = 256;
    fn tile(kc: usize, a: &[f32], b: &[f32], acc: &mut [[f32; NR]; MR]);
}

/// A checked micro-kernel, ready to register.
#[derive(Clone, Copy)]
pub struct CustomKernel {
    name: &'static str,
    kernel: Kernel,
}

impl std::fmt::Debug for CustomKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomKernel({}, {}x{}, kc {})", self.name, self.kernel.mr, self.kernel.nr, self.kernel.kc)
    }
}

/// Rows of A packed at a time, rounded up to a multiple of MR: about 72 KiB of A at KC 256, in L2.
const MC_ROWS: usize = 72;

impl CustomKernel {
    /// Wraps `K`, checking its tile against what the driver supports.
    pub fn new<const MR: usize, const NR: usize, K: GemmMicroKernel<MR, NR>>() -> Result<CustomKernel> {
        let bad = |why: String| Err(invalid("gemm", format!("micro-kernel {}: {why}", K::NAME)));
        if MR == 0 || NR == 0 || K::KC == 0 {
            return bad(format!("MR {MR}, NR {NR} and KC {} must be at least 1", K::KC));
        }
        if MR * NR > super::driver::MAX_TILE {
            return bad(format!("an {MR}x{NR} tile exceeds the driver's {} floats", super::driver::MAX_TILE));
        }
        if !super::driver::NC.is_multiple_of(NR) {
            return bad(format!("NR {NR} must divide the driver's column block NC = {}", super::driver::NC));
        }
        let kernel = Kernel {
            mr: MR,
            nr: NR,
            kc: K::KC,
            mc: MC_ROWS.div_ceil(MR) * MR,
            f: trampoline::<MR, NR, K>,
            pack_a: pack_a::<MR>,
            pack_b: pack_b::<NR>,
        };
        Ok(CustomKernel { name: K::NAME, kernel })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

/// The driver's raw micro-kernel calling convention around `K::tile`'s safe one: the C tile
/// is copied into a register-tile array and back (2 MR x NR copies per KC-deep block: under
/// 1% of the tile's KC x MR x NR multiply-adds).
///
/// # Safety
/// As the driver's `MicroKernel`: `a` valid for `kc * MR` reads, `b` for `kc * NR`, `c` for
/// rows `0..MR`, columns `0..NR` with row stride `ldc`, exclusively ours.
unsafe fn trampoline<const MR: usize, const NR: usize, K: GemmMicroKernel<MR, NR>>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    beta: f32,
    load_c: bool,
) {
    // SAFETY: lengths as promised by the caller.
    let (a, b) = unsafe { (std::slice::from_raw_parts(a, kc * MR), std::slice::from_raw_parts(b, kc * NR)) };
    let mut acc = [[0.0f32; NR]; MR];
    K::tile(kc, a, b, &mut acc);
    // SAFETY: the tile is valid and exclusively ours, as promised.
    unsafe { store_tile(&acc, c, ldc, beta, load_c) }
}

static REGISTERED: RwLock<Option<CustomKernel>> = RwLock::new(None);

/// Run every later CPU matmul in this process with `kernel`, or with the engine's own
/// kernels again (`None`). Returns the kernel it replaces.
pub fn set_custom_kernel(kernel: Option<CustomKernel>) -> Option<CustomKernel> {
    std::mem::replace(&mut *REGISTERED.write().unwrap_or_else(|e| e.into_inner()), kernel)
}

/// The registered micro-kernel, if any.
pub fn custom_kernel() -> Option<CustomKernel> {
    *REGISTERED.read().unwrap_or_else(|e| e.into_inner())
}

/// The registered kernel's driver form (for `sgemm`).
pub(super) fn registered() -> Option<Kernel> {
    custom_kernel().map(|k| k.kernel)
}
