//! The quantized kernels against f64 products with the dequantized weights, at every ISA
//! level the CPU runs (AVX-512 with and without VNNI); activation quantization
//! bit-identical across levels; every SIMD level against portable.
//!
//! Tolerance: activations are rounded to 8 bits, so outputs are compared by normalised
//! mean squared error, `sum (y - ref)^2 / sum ref^2 < 5e-4` (test-backend-ops' bound). The
//! levels compute the same integer sums and differ only in f32 summation order:
//! `|simd - portable| <= 1e-5 * sum_i |w_i x_i|` per output.

use super::act::{quantize_group_portable, Q8Acts, Q8Group, QK};
use super::{qmatmul_n, qmatmul_t};
use crate::cpu::isa::{detected, levels_to_test, Isa};
use crate::quant::{GgmlType, QMatrix};
use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};

/// Every level this CPU runs (the others are reported as skipped).
fn isas() -> Vec<Isa> {
    levels_to_test("quantized matmul")
}

/// Deterministic values in [-1, 1), with a few larger outliers as real activations have.
fn fill(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let v = (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0;
            if i % 97 == 5 {
                v * 8.0
            } else {
                v
            }
        })
        .collect()
}

const INT_TYPES: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];
const FLOAT_TYPES: [GgmlType; 3] = [GgmlType::F32, GgmlType::F16, GgmlType::BF16];

/// A (rows, cols) matrix of type `ty`. For the K-quants, odd seeds give random bytes with
/// sane (small, finite) f16 scales written over the scale fields: every code and 6-bit
/// scale occurs, which the quantizer alone would seldom produce (Q6_K's -32, say).
fn weights(ty: GgmlType, rows: usize, cols: usize, seed: u64) -> QMatrix {
    let w = fill(rows * cols, seed);
    match ty {
        GgmlType::Q4K | GgmlType::Q5K | GgmlType::Q6K if seed % 2 == 1 => {
            let n = rows * cols / 256 * ty.type_size();
            let mut b: Vec<u8> = fill(n, seed ^ 0x55).iter().map(|v| (v * 127.0 + 128.0) as u8).collect();
            let scale_at: &[usize] = if ty == GgmlType::Q6K { &[208] } else { &[0, 2] };
            for (k, blk) in b.chunks_exact_mut(ty.type_size()).enumerate() {
                for &at in scale_at {
                    let v = half::f16::from_f32(0.001 + 0.0005 * (k % 7) as f32);
                    blk[at..at + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
            QMatrix::new(ty, rows, cols, b).unwrap()
        }
        _ => QMatrix::from_tensor(&crate::Tensor::from_vec(w, &[rows, cols]).unwrap(), ty).unwrap(),
    }
}

/// (y, sum |w x|, sum (w x)^2) per output, in f64, from the dequantized weights and the exact x.
fn reference(w: &QMatrix, x: &[f32], m: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let wd = w.dequantize().unwrap().to_vec_f32().unwrap();
    let (rows, cols) = (w.rows(), w.cols());
    let (mut y, mut mag, mut sq) = (vec![0f64; m * rows], vec![0f64; m * rows], vec![0f64; m * rows]);
    for j in 0..m {
        for i in 0..rows {
            let (mut s, mut a, mut q) = (0f64, 0f64, 0f64);
            for c in 0..cols {
                let p = wd[i * cols + c] as f64 * x[j * cols + c] as f64;
                s += p;
                a += p.abs();
                q += p * p;
            }
            y[j * rows + i] = s;
            mag[j * rows + i] = a;
            sq[j * rows + i] = q;
        }
    }
    (y, mag, sq)
}

fn nmse(got: &[f32], want: &[f64]) -> f64 {
    let err: f64 = got.iter().zip(want).map(|(&g, &w)| (g as f64 - w).powi(2)).sum();
    let norm: f64 = want.iter().map(|w| w * w).sum();
    if norm == 0.0 {
        err
    } else {
        err / norm
    }
}

/// Checks `qmatmul_t` on every isa against the f64 reference, and the isas against each other.
fn check(ty: GgmlType, rows: usize, cols: usize, m: usize, seed: u64) {
    let w = weights(ty, rows, cols, seed);
    let x = fill(m * cols, seed + 1);
    let (want, mag, sq) = reference(&w, &x, m);
    let outs: Vec<Vec<f32>> = isas().into_iter().map(|isa| qmatmul_t(isa, &w, &x, m).unwrap()).collect();
    for (isa, y) in isas().into_iter().zip(&outs) {
        assert_eq!(y.len(), m * rows);
        // Against the outputs' expected square (the sum of the squared products, which
        // the 8-bit activation error scales with) when that is larger than their actual
        // square: with one or two outputs, cancellation can leave y near zero by chance
        // (a Q4_K row of 1536 with m 2 measured nmse 6e-4 against y, flaking the bound).
        let e = nmse(y, &want) * (want.iter().map(|v| v * v).sum::<f64>() / sq.iter().sum::<f64>()).min(1.0);
        // Float weights are not rounded at all: only f32 summation error remains.
        let bound = if ty.block_size() == 1 { 1e-10 } else { 5e-4 };
        assert!(e < bound, "{ty} {isa:?} rows {rows} cols {cols} m {m}: nmse {e}");
    }
    // Every SIMD level against the portable path (the last level).
    let (portable, simd) = outs.split_last().unwrap();
    for (isa, y) in isas().into_iter().zip(simd) {
        for (k, ((&p, &a), &mag)) in portable.iter().zip(y).zip(&mag).enumerate() {
            assert!((p - a).abs() as f64 <= 1e-5 * mag + 1e-30, "{ty} output {k}: portable {p} vs {isa} {a}");
        }
    }
}

/// Turns VNNI / `sdot` off (see `use_dot_instructions`), for the test below.
pub(super) static AVOID_DOT_INSTRUCTIONS: AtomicBool = AtomicBool::new(false);

/// The plain AVX-512 / NEON kernels, which CPUs without VNNI / dotprod run.
#[test]
fn without_dot_instructions_matches_the_reference() {
    let level = if cfg!(target_arch = "aarch64") { Isa::Neon } else { Isa::Avx512 };
    if !crate::cpu::isa::can_test(level, "quantized matmul without VNNI / sdot") {
        return;
    }
    // Other tests running meanwhile take this path too: both paths are correct, so that
    // only changes which one they cover.
    AVOID_DOT_INSTRUCTIONS.store(true, Ordering::Relaxed);
    for ty in INT_TYPES {
        let cols = if ty.block_size() == 256 { 512 } else { 96 };
        for &(rows, m) in &[(7, 1), (33, 2), (9, 5)] {
            check(ty, rows, cols, m, (rows * 7 + m) as u64);
        }
    }
    AVOID_DOT_INSTRUCTIONS.store(false, Ordering::Relaxed);
}

#[test]
fn every_type_matches_the_f64_reference() {
    for ty in INT_TYPES.into_iter().chain(FLOAT_TYPES) {
        let cols = if ty.block_size() == 256 { 512 } else { 96 };
        for &(rows, m) in &[(1, 1), (7, 1), (33, 2), (5, 3), (17, 4), (9, 5), (40, 9)] {
            check(ty, rows, cols, m, (rows * 31 + m) as u64);
        }
    }
}

#[test]
fn empty_shapes() {
    for ty in [GgmlType::Q4_1, GgmlType::F16] {
        let w = weights(ty, 4, 64, 1);
        assert!(qmatmul_t(Isa::Portable, &w, &[], 0).unwrap().is_empty());
        assert!(qmatmul_n(Isa::Portable, &w, &[], 0).unwrap().is_empty());
        let none = QMatrix::new(ty, 0, 64, Vec::new()).unwrap();
        assert!(qmatmul_t(detected(), &none, &fill(128, 2), 2).unwrap().is_empty());
        assert_eq!(qmatmul_n(detected(), &none, &[], 2).unwrap(), vec![0.0; 128]);
    }
}

#[test]
fn smollm2_shapes() {
    // The projections and head of SmolLM2-135M (Q4_1, Q8_0), decode and prefill-sized m.
    check(GgmlType::Q4_1, 192, 576, 64, 11);
    check(GgmlType::Q4_1, 96, 1536, 37, 12);
    check(GgmlType::Q8_0, 260, 576, 64, 13);
    check(GgmlType::Q8_0, 260, 576, 1, 14);
}

#[test]
fn large_shapes_cross_task_and_slab_boundaries() {
    // 300 Q8_0 rows of 2048 = 652 KiB: several tasks and 128 KiB slabs; m = 6 is a full
    // tile and a partial one.
    check(GgmlType::Q8_0, 300, 2048, 6, 3);
    check(GgmlType::Q4_1, 1000, 576, 1, 4);
    check(GgmlType::Q4K, 130, 1024, 5, 5);
    check(GgmlType::Q5K, 130, 1024, 5, 6);
}

#[test]
fn activation_quantization_is_identical_on_every_isa() {
    let mut groups: Vec<Vec<f32>> =
        (0..64).map(|k| fill(QK, k).iter().map(|v| v * (k as f32 + 0.1)).collect()).collect();
    groups.push(vec![0.0; QK]);
    groups.push((0..QK).map(|i| if i == 3 { 1e-30 } else { 0.0 }).collect());
    groups.push((0..QK).map(|i| if i == 31 { 127.0 } else { i as f32 + 0.5 }).collect()); // d = 1: exact ties
    let mut specials = fill(QK, 99);
    specials[7] = f32::NAN;
    groups.push(specials.clone());
    specials[7] = f32::INFINITY;
    groups.push(specials);
    let x: Vec<f32> = groups.concat();
    let rows = groups.len();
    for isa in isas() {
        let a = Q8Acts::quantize(isa, &x, rows, QK, false);
        for (j, g) in groups.iter().enumerate() {
            let mut q = Q8Group::default();
            let (d, s) = quantize_group_portable(g.as_slice().try_into().unwrap(), &mut q);
            let r = a.row(j);
            assert_eq!(q.0, r.qs[0].0, "{isa}: group {j}");
            assert_eq!((d.to_bits(), s.to_bits()), (r.d[0].to_bits(), r.s[0].to_bits()), "{isa}: group {j}: d, s");
        }
    }
    let a = Q8Acts::quantize(Isa::Portable, &x, rows, QK, false);
    // Rounding: |x - d q| <= d / 2, and NaN reaches the scale.
    let r = a.row(0);
    for (i, &v) in groups[0].iter().enumerate() {
        assert!((v - r.d[0] * r.qs[0].0[i] as f32).abs() <= r.d[0] * 0.5 + 1e-6);
    }
    assert!(a.row(rows - 2).d[0].is_nan());
}

#[test]
fn nan_activations_give_nan_outputs() {
    let w = weights(GgmlType::Q4_1, 3, 64, 1);
    let mut x = fill(64, 2);
    x[40] = f32::NAN;
    for isa in isas() {
        assert!(qmatmul_t(isa, &w, &x, 1).unwrap().iter().all(|v| v.is_nan()), "{isa:?}");
    }
}

#[test]
fn transposed_product_matches_the_reference() {
    // qmatmul_n: y (m, cols) = g (m, rows) W, exact up to f32 summation.
    for ty in [GgmlType::Q4_1, GgmlType::Q5K, GgmlType::Q6K, GgmlType::F16] {
        let cols = if ty.block_size() == 256 { 256 } else { 96 };
        for &(rows, m) in &[(1, 1), (5, 3), (300, 2), (70, 17)] {
            let w = weights(ty, rows, cols, rows as u64);
            let wd = w.dequantize().unwrap().to_vec_f32().unwrap();
            let g = fill(m * rows, 7);
            for isa in isas() {
                let y = qmatmul_n(isa, &w, &g, m).unwrap();
                for j in 0..m {
                    for c in 0..cols {
                        let (mut s, mut a) = (0f64, 0f64);
                        for i in 0..rows {
                            let p = g[j * rows + i] as f64 * wd[i * cols + c] as f64;
                            s += p;
                            a += p.abs();
                        }
                        let got = y[j * cols + c] as f64;
                        assert!((got - s).abs() <= 1e-5 * a + 1e-30, "{ty} {isa:?} ({j},{c}): {got} vs {s}");
                    }
                }
            }
        }
    }
}

/// A random product: type, shape and seed.
#[derive(Debug, Clone)]
struct Problem {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    m: usize,
    seed: u64,
}

fn problem() -> impl Strategy<Value = Problem> {
    let ty = prop::sample::select(INT_TYPES.to_vec());
    (ty, 1usize..=70, 1usize..=64, 0usize..=9, any::<u64>()).prop_map(|(ty, rows, blocks, m, seed)| {
        // cols = 32..=2048 in whole blocks (K-quants: 256..=2048).
        let cols = if ty.block_size() == 256 { 256 * blocks.div_ceil(8) } else { 32 * blocks };
        Problem { ty, rows, cols, m, seed }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_problems_match_the_reference(p in problem()) {
        check(p.ty, p.rows, p.cols, p.m, p.seed);
    }
}
