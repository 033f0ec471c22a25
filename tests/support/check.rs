//! Shared by the conformance table and the property tests: the tolerance of each op, and
//! running one problem on one backend against its reference.

use crate::{compare_on_scale, Backend, InputLayout, Problem, RefTensor, Tol};
use lamina_tensor::{DType, OpName};
use std::panic::{catch_unwind, AssertUnwindSafe};

// ---- tolerances -------------------------------------------------------------------------

/// The tolerance of each op, as k unit roundoffs u of the result's dtype (f32 6.0e-8,
/// f16 4.9e-4, bf16 3.9e-3): max|err| <= k u max|ref| and NMSE <= (k u)^2. The reference
/// sees the same quantised inputs as the engine, so k counts only the op's own error.
/// f16/bf16 kernels compute in f32 and round once on store, so for them k is 1 rounding
/// plus slack for the f32 error and the f64->f32->half double rounding: 2, or 3 where the
/// engine rounds to the half type twice. Changing a value needs a reason, written here.
pub fn tolerance(op: OpName, out: DType) -> Tol {
    tolerance_on(Backend::Cpu(lamina_tensor::cpu::isa::Isa::Portable), op, out)
}

/// The tolerance of `op` on `backend`. The GPU's transcendental functions are WGSL
/// builtins or short polynomials that are not correctly rounded (WGSL allows exp/log
/// errors of several ulp, and `pow` is exp2(e log2 x)); measured on lavapipe: sigmoid
/// 4.1u, powf 6.2u (f32). Those ops get k = 8 (sigmoid, silu, exp, log, tanh) and 12
/// (powf) on the GPU. Half-precision outputs are dominated by the store rounding, as on
/// the CPU.
pub fn tolerance_on(backend: Backend, op: OpName, out: DType) -> Tol {
    use OpName::*;
    if op == MatmulQt {
        return matmul_qt_tolerance(backend, out);
    }
    // f16 matmuls on a GPU with shader-f16 multiply and sum each 16-term K tile in f16
    // (shaders/matmul_f16.wgsl): about sqrt(16) f16 roundings of the tile sums on top of the
    // store's, measured at most 2.9u of max|ref| on lavapipe (K <= 300 here); k = 8.
    if let (Backend::Gpu(n), Matmul, DType::F16) = (backend, op, out) {
        if lamina_tensor::gpu::GpuDevice::get(n).is_ok_and(|d| d.f16_math()) {
            return Tol::ulps(8.0, out);
        }
    }
    if let (Backend::Gpu(_), DType::F32) = (backend, out) {
        match op {
            Exp | Log | Tanh | Sigmoid | Silu => return Tol::ulps(8.0, out),
            Powf => return Tol::ulps(12.0, out),
            _ => {}
        }
    }
    tolerance_cpu(op, out)
}

fn tolerance_cpu(op: OpName, out: DType) -> Tol {
    use OpName::*;
    let (k_f32, k_half): (f64, f64) = match op {
        // The result is an input element, a constant, or its negation / absolute value:
        // nothing is rounded, so any difference is a bug.
        Neg | Abs | Relu | Clamp | Maximum | Minimum | Max | Min | Cmp | Where | MaskedFill | Cast | Reshape
        | Permute | Narrow | BroadcastTo | Contiguous | Concat | Embedding | IndexSelect | Gather => return Tol::EXACT,
        // One correctly rounded IEEE operation.
        Add | Sub | Mul | Div | Square | Sqrt | Recip => (1.0, 2.0),
        // Two f32 roundings (1/sqrt; x*mul then +add) — the output can be smaller than the
        // intermediate, so 3.
        Rsqrt | Affine => (3.0, 2.0),
        // libm powf (scalar on every path): within an ulp, plus the f32 output rounding.
        Powf => (2.0, 2.0),
        // SIMD polynomial exp/log/tanh/sigmoid are within 1.8e-7 (3u) of f64 (measured in
        // cpu/simd/math.rs, at every SIMD level); the portable path uses libm.
        Exp | Log | Tanh | Sigmoid => (4.0, 2.0),
        // x * sigmoid(x): the 3u sigmoid, times x, rounded.
        Silu => (6.0, 2.0),
        // A cubic, tanh/erf and three multiplies; the engine documents its two GELU paths
        // within 1e-6 * max(1, |x|) of each other, and both measure within 2u of f64.
        GeluTanh | GeluErf => (8.0, 2.0),
        // Blocked pairwise sums: error ~ log2(n) u sum|x|, measured against sum|x|
        // (Problem::error_scale); the largest rows here are 5005 and 1500 long.
        Sum => (32.0, 2.0),
        // The sum, rounded to the dtype, then scaled by 1/n and rounded again.
        Mean => (32.0, 3.0),
        // Dot products of up to 300 terms (FMA, blocked): like Sum, against |A| |B|.
        Matmul => (32.0, 2.0),
        MatmulQt => return matmul_qt_tolerance(Backend::Cpu(lamina_tensor::cpu::isa::Isa::Portable), out),
        // Max, exp (3u), a sum in f64, one scale (or a log and a subtract).
        Softmax | LogSoftmax => (8.0, 2.0),
        // Mean and variance of the row (f32 within blocks), rsqrt, then 3 roundings for
        // (x - mean) * rstd * w + b. LayerNorm rounds the mean to f32 before x - mean, so
        // its error also grows like u |mean| / std: the cases keep |mean| / std <= ~12
        // (at 1000 +- 1.5 it measures 290u: conditioning, not a kernel bug).
        LayerNorm | RmsNorm => (8.0, 2.0),
        // Always an f32 result (max in f32, sum of exps and logsumexp in f64).
        CrossEntropy => (4.0, 4.0),
        // dest + the sources sent to it (up to ~5 repeats here), summed in f32 in order.
        IndexAdd | ScatterAdd => (4.0, 2.0),
        // x_a cos - x_b sin: two products and a difference, no FMA.
        Rope => (4.0, 2.0),
        // Scores (dot, FMA), softmax (3u exp), a weighted sum of up to 65 value rows.
        Attention => (16.0, 2.0),
        // The kept value is x * (1/(1-p)): the scale is rounded to the dtype (it is a mask
        // tensor of that dtype), then the product is rounded: 2 roundings + the f32 scale.
        Dropout => (4.0, 3.0),
    };
    let k = if out == DType::F32 { k_f32 } else { k_half };
    Tol::ulps(k, out)
}

/// `matmul_qt` against x @ dequantize(W)^T, with errors measured against |x| |W|^T
/// (`Problem::error_scale`). The weights are exact on every backend (the blocks decode to
/// the reference's values); the activations are not:
/// - CPU: x is rounded to 8 bits per group of 32 (llama.cpp's Q8 scheme), up to
///   max|x_group| / 254 per element: about 0.5% rms of the result for N(0, 1) inputs.
///   NMSE <= 5e-4 is test-backend-ops' bound for quantized mul_mat; the max error gets
///   5e-2 of the scale (measured worst 1.2%; a decoding bug is off by O(1)).
/// - GPU: x stays f32, so only f32 summation remains: the tiles add up to 768 terms (the
///   property tests' largest K) one after another, 64 u (measured worst 10 u over this
///   table, 35 u in the property tests); half-precision outputs: their one rounding.
fn matmul_qt_tolerance(backend: Backend, out: DType) -> Tol {
    match (backend, out) {
        (Backend::Cpu(_), _) => Tol { nmse: 5e-4, max_rel: 5e-2 },
        (Backend::Gpu(_), DType::F32) => Tol::ulps(64.0, out),
        (Backend::Gpu(_), _) => Tol::ulps(2.0, out),
    }
}

// ---- running it ------------------------------------------------------------------------

/// One case on one backend/dtype/layout: Ok(comparison), or Err(reason) when it could not
/// be compared (an error, a panic, a wrong shape or dtype).
pub fn run_one(
    backend: Backend,
    p: &Problem,
    xs: &[RefTensor],
    expected: &RefTensor,
    dt: DType,
    layout: InputLayout,
) -> Result<crate::Comparison, String> {
    let actual = run_values(backend, p, xs, expected, dt, layout)?;
    Ok(judge(p, xs, dt, &actual, expected).0)
}

/// The engine's result for one case on one backend/dtype/layout (in f64), or Err(reason)
/// when it cannot be compared with `expected` (an error, a panic, a wrong shape or dtype).
pub fn run_values(
    backend: Backend,
    p: &Problem,
    xs: &[RefTensor],
    expected: &RefTensor,
    dt: DType,
    layout: InputLayout,
) -> Result<RefTensor, String> {
    let result = catch_unwind(AssertUnwindSafe(|| -> lamina_tensor::Result<_> {
        let inputs: Vec<_> = p
            .engine_inputs(xs, dt, layout)?
            .into_iter()
            .map(|t| backend.upload(t))
            .collect::<lamina_tensor::Result<_>>()?;
        let out = p.run(&inputs)?;
        Ok((out.shape().to_vec(), out.dtype(), RefTensor::from_tensor(&out)?))
    }));
    let (shape, dtype, actual) = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return Err(format!("error: {e}")),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Err(format!("panic: {msg}"));
        }
    };
    if shape != expected.shape {
        return Err(format!("shape {shape:?}, expected {:?}", expected.shape));
    }
    if dtype != p.out_dtype(dt) {
        return Err(format!("dtype {dtype}, expected {}", p.out_dtype(dt)));
    }
    Ok(actual)
}

/// `actual` (the engine's result for `p` in `dt`) against `expected` (its reference):
/// the comparison, and the values it was compared with (the reference, with +-inf where it
/// rounds past the output dtype's range).
pub fn judge(
    p: &Problem,
    xs: &[RefTensor],
    dt: DType,
    actual: &RefTensor,
    expected: &RefTensor,
) -> (crate::Comparison, Vec<f64>) {
    let dtype = p.out_dtype(dt);
    let expected = overflowed_to_inf(&expected.data, dtype);
    let scale = p.error_scale(xs, dt).map_or_else(|| expected.clone(), |s| s.data);
    // Below the dtype's smallest normal number the stored values are u * smallest_normal
    // apart, so relative accuracy ends there (an f16 GELU tail of 2e-7 is a subnormal).
    let floor = smallest_normal(dtype);
    let scale: Vec<f64> = scale.iter().map(|s| s.abs().max(floor)).collect();
    (compare_on_scale(&actual.data, &expected, &scale), expected)
}

fn smallest_normal(dtype: DType) -> f64 {
    match dtype {
        DType::F32 | DType::BF16 => 2f64.powi(-126),
        DType::F16 => 2f64.powi(-14),
        DType::I32 | DType::U32 => 0.0,
    }
}

/// The exact result where it fits the output dtype, and +-inf where it rounds past the
/// dtype's largest finite value: an engine that stores inf there (f16 1/x for a tiny x)
/// is correctly rounded, not wrong.
fn overflowed_to_inf(expected: &[f64], out: DType) -> Vec<f64> {
    expected
        .iter()
        .map(|&e| {
            let stored = crate::reference::round_to(out, e);
            if stored.is_infinite() {
                stored
            } else {
                e
            }
        })
        .collect()
}
