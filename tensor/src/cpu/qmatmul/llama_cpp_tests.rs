//! The 8-bit activations and the Q4_1 / Q8_0 dot products against llama.cpp's reference
//! kernels (`quantize_row_q8_1_ref`, `ggml_vec_dot_q4_1_q8_1_generic`,
//! `ggml_vec_dot_q8_0_q8_0_generic`) on the same inputs, at every ISA level this CPU runs.
//! Golden values: tests/fixtures/q8/llama_cpp_q8.txt, made by
//! scripts/reference/q8_activation_reference.py through ctypes on llama.cpp's libraries.
//!
//! Two documented differences from the reference, both kept on purpose:
//! - ties: the reference rounds x / d with C's `roundf` (ties away from zero); Lamina rounds
//!   ties to even, as llama.cpp's own x86 `quantize_row_q8_1` does (`_MM_ROUND_NEAREST`).
//!   Off a tie the codes must be equal.
//! - scales: the reference stores d and s = d * sum(q) as fp16; Lamina keeps them in f32.
//!   So Lamina's d and s rounded to fp16 must equal the reference's bit for bit, and the dot
//!   products agree within the fp16 rounding of the activation scale: 2^-11 of each
//!   group's magnitude.

use super::act::{Q8Acts, QK};
use super::portable::decode;
use super::qmatmul_t;
use crate::cpu::isa::levels_to_test;
use crate::quant::{GgmlType, QMatrix};
use half::f16;

const FIXTURE: &str = include_str!("../../../../tests/fixtures/q8/llama_cpp_q8.txt");

struct Golden {
    cols: usize,
    x: Vec<Vec<f32>>,
    /// (row, group, d fp16 bits, s fp16 bits, codes)
    q8_1: Vec<(usize, usize, u16, u16, Vec<i8>)>,
    /// (type, weight row bytes)
    w: Vec<(GgmlType, Vec<u8>)>,
    /// (type, weight row, activation row, dot)
    dot: Vec<(GgmlType, usize, usize, f32)>,
}

fn f32_hex(s: &str) -> f32 {
    f32::from_bits(u32::from_str_radix(s, 16).unwrap())
}

fn ggml_type(s: &str) -> GgmlType {
    match s {
        "q4_1" => GgmlType::Q4_1,
        "q8_0" => GgmlType::Q8_0,
        _ => panic!("fixture: unknown type {s}"),
    }
}

fn golden() -> Golden {
    let mut g = Golden { cols: 0, x: vec![], q8_1: vec![], w: vec![], dot: vec![] };
    for line in FIXTURE.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| f[i].parse::<usize>().unwrap();
        match f[0] {
            "cols" => g.cols = n(1),
            "x" => g.x.push(f[2..].iter().map(|v| f32_hex(v)).collect()),
            "q8_1" => {
                let hex16 = |i: usize| u16::from_str_radix(f[i], 16).unwrap();
                let codes = f[5..].iter().map(|v| v.parse().unwrap()).collect();
                g.q8_1.push((n(1), n(2), hex16(3), hex16(4), codes));
            }
            "w" => {
                let bytes = (0..f[3].len()).step_by(2).map(|i| u8::from_str_radix(&f[3][i..i + 2], 16).unwrap());
                g.w.push((ggml_type(f[1]), bytes.collect()));
            }
            "dot" => g.dot.push((ggml_type(f[1]), n(2), n(3), f32_hex(f[4]))),
            _ => panic!("fixture: unknown record {}", f[0]),
        }
    }
    g
}

#[test]
fn activation_groups_match_llama_cpp_quantize_row_q8_1_ref() {
    let g = golden();
    let x: Vec<f32> = g.x.concat();
    let mut ties = 0;
    for isa in levels_to_test("activation quantization against llama.cpp") {
        let a = Q8Acts::quantize(isa, &x, g.x.len(), g.cols, false);
        for (row, group, d, s, codes) in &g.q8_1 {
            let r = a.row(*row);
            let at = format!("{isa}: row {row} group {group}");
            assert_eq!(f16::from_f32(r.d[*group]).to_bits(), *d, "{at}: d");
            assert_eq!(f16::from_f32(r.s[*group]).to_bits(), *s, "{at}: s = d * sum(q)");
            let xs = &g.x[*row][group * QK..(group + 1) * QK];
            for (i, (&got, &want)) in r.qs[*group].0.iter().zip(codes).enumerate() {
                let v = xs[i] * (1.0 / r.d[*group]);
                if got != want && v.fract().abs() == 0.5 {
                    // A tie: llama.cpp's reference rounds away from zero, Lamina to even.
                    assert_eq!(got as f32, v.round_ties_even(), "{at}: element {i}");
                    ties += 1;
                } else {
                    assert_eq!(got, want, "{at}: element {i} ({})", xs[i]);
                }
            }
        }
    }
    assert!(ties > 0, "the fixture's tie group rounds differently in the reference");
}

/// For the product of weight row `i` and activation row `j`: the size of its terms, sum
/// over groups of |d_a d_w sum_i |q_w q_a|| + |m s|, and how far the codes that round the
/// other way at a tie (see above) move it, sum of w_i d (ours - reference).
fn magnitude_and_tie_shift(g: &Golden, w: &QMatrix, i: usize, a: &Q8Acts, j: usize) -> (f32, f32) {
    let r = a.row(j);
    let (mut magnitude, mut tie_shift) = (0f32, 0f32);
    for k in 0..g.cols / QK {
        let wg = decode(w.ggml_type(), w.row(i), k);
        let isum: i32 = wg.q.iter().zip(&r.qs[k].0).map(|(&a, &b)| (a as i32 * b as i32).abs()).sum();
        magnitude += (r.d[k] * wg.d[0] * isum as f32).abs() + (wg.m * r.s[k]).abs();
        let reference = &g.q8_1.iter().find(|q| (q.0, q.1) == (j, k)).unwrap().4;
        for ((&qw, &ours), &theirs) in wg.q.iter().zip(&r.qs[k].0).zip(reference) {
            tie_shift += (wg.d[0] * qw as f32 + wg.m) * r.d[k] * (ours as i32 - theirs as i32) as f32;
        }
    }
    (magnitude, tie_shift)
}

#[test]
fn dot_products_match_llama_cpp_vec_dot() {
    let g = golden();
    let x: Vec<f32> = g.x.concat();
    for ty in [GgmlType::Q4_1, GgmlType::Q8_0] {
        let rows: Vec<u8> = g.w.iter().filter(|(t, _)| *t == ty).flat_map(|(_, b)| b.clone()).collect();
        let w = QMatrix::new(ty, rows.len() / (g.cols / QK * ty.type_size()), g.cols, rows).unwrap();
        for isa in levels_to_test("quantized dot products against llama.cpp") {
            let a = Q8Acts::quantize(isa, &x, g.x.len(), g.cols, false);
            let y = qmatmul_t(isa, &w, &x, g.x.len()).unwrap();
            for &(_, i, j, want) in g.dot.iter().filter(|d| d.0 == ty) {
                // The reference's fp16 activation scale moves each group's term by up to
                // 2^-11 of its size; the f32 sums add a few ulps of it.
                let (magnitude, tie_shift) = magnitude_and_tie_shift(&g, &w, i, &a, j);
                let got = y[j * w.rows() + i];
                assert!(
                    (got - (want + tie_shift)).abs() <= magnitude * (1.0 / 2048.0 + 1e-6),
                    "{ty} {isa}: w row {i} . x row {j} = {got}, llama.cpp {want} + ties {tie_shift} (magnitude {magnitude})"
                );
            }
        }
    }
}
