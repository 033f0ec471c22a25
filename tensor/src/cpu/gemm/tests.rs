//! sgemm against a naive f64 triple loop, over odd shapes, strided/transposed/broadcast
//! views, alpha/beta variants and every isa level the CPU runs; plus bitwise thread-count independence.

use super::{pin_kernel, sgemm, MatRef};
use crate::cpu::isa::{avx512_split_fma, levels_to_test, Isa};

/// One way `sgemm` can run here: a level, and whether the AVX-512 tile is pinned in place of
/// the level's choice (on Zen 4 the AVX-512 level picks the AVX2 tile; the AVX-512 tile is
/// tested anyway).
#[derive(Clone, Copy, Debug)]
struct Path {
    isa: Isa,
    avx512_tile: bool,
}

impl Path {
    #[allow(clippy::too_many_arguments)]
    fn sgemm(
        self,
        m: usize,
        n: usize,
        k: usize,
        alpha: f32,
        a: MatRef,
        b: MatRef,
        beta: f32,
        c: &mut [f32],
        ldc: usize,
    ) {
        pin_kernel(self.avx512_tile, || sgemm(self.isa, m, n, k, alpha, a, b, beta, c, ldc));
    }
}

/// Every level this CPU runs (the others are reported as skipped), plus the pinned AVX-512
/// tile where the level does not pick it.
fn paths() -> Vec<Path> {
    let mut v: Vec<Path> = levels_to_test("sgemm").into_iter().map(|isa| Path { isa, avx512_tile: false }).collect();
    if Isa::Avx512.supported() && avx512_split_fma() {
        v.push(Path { isa: Isa::Avx512, avx512_tile: true });
    }
    v
}

/// Deterministic values in [-1, 1).
fn fill(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// How a `rows x cols` operand is laid out in memory.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    ColMajor,
    /// Every row is the same (row stride 0).
    BroadcastRows,
    /// Every column is the same (column stride 0).
    BroadcastCols,
    /// Padded rows, column stride 2, nonzero offset.
    Strided,
}

const LAYOUTS: [Layout; 5] =
    [Layout::RowMajor, Layout::ColMajor, Layout::BroadcastRows, Layout::BroadcastCols, Layout::Strided];

/// (data, offset, row_stride, col_stride) for a `rows x cols` operand.
fn operand(l: Layout, rows: usize, cols: usize, seed: u64) -> (Vec<f32>, usize, usize, usize) {
    let (off, rs, cs) = match l {
        Layout::RowMajor => (0, cols, 1),
        Layout::ColMajor => (0, 1, rows),
        Layout::BroadcastRows => (0, 0, 1),
        Layout::BroadcastCols => (0, 1, 0),
        Layout::Strided => (3, 2 * cols + 5, 2),
    };
    let len = off + rows.saturating_sub(1) * rs + cols.saturating_sub(1) * cs + 1;
    (fill(len, seed), off, rs, cs)
}

#[allow(clippy::too_many_arguments)]
fn check(p: Path, m: usize, n: usize, k: usize, la: Layout, lb: Layout, alpha: f32, beta: f32, ldc: usize) {
    let (ad, ao, ars, acs) = operand(la, m, k, 1 + (m * 31 + k) as u64);
    let (bd, bo, brs, bcs) = operand(lb, k, n, 2 + (k * 17 + n) as u64);
    let a = MatRef { data: &ad, offset: ao, row_stride: ars, col_stride: acs };
    let b = MatRef { data: &bd, offset: bo, row_stride: brs, col_stride: bcs };
    let clen = if m == 0 { 0 } else { (m - 1) * ldc + n };
    let c0 = if beta == 0.0 { vec![f32::NAN; clen] } else { fill(clen, 7) };
    let mut c = c0.clone();
    p.sgemm(m, n, k, alpha, a, b, beta, &mut c, ldc);

    for i in 0..m {
        for j in 0..n {
            let (mut dot, mut mag) = (0.0f64, 0.0f64);
            for p in 0..k {
                let x = a.at(i, p) as f64 * b.at(p, j) as f64;
                dot += x;
                mag += x.abs();
            }
            let old = c0[i * ldc + j] as f64;
            let (want, bound) = if beta == 0.0 {
                (alpha as f64 * dot, 1e-5 * (alpha.abs() as f64 * mag) + 1e-30)
            } else {
                let w = alpha as f64 * dot + beta as f64 * old;
                (w, 1e-5 * (alpha.abs() as f64 * mag + (beta as f64 * old).abs()) + 1e-30)
            };
            let got = c[i * ldc + j] as f64;
            assert!(
                (got - want).abs() <= bound,
                "{p:?} m{m} n{n} k{k} {la:?}x{lb:?} a{alpha} b{beta} at ({i},{j}): got {got}, want {want}"
            );
        }
        // Padding between rows (ldc > n) must be untouched.
        if i + 1 < m {
            for j in n..ldc {
                assert_eq!(c[i * ldc + j].to_bits(), c0[i * ldc + j].to_bits(), "padding clobbered");
            }
        }
    }
}

#[test]
fn odd_shapes_all_layouts() {
    let dims = [1, 2, 5, 7, 13, 17, 33];
    for p in paths() {
        for &m in &dims {
            for &n in &dims {
                for &k in &[1, 3, 16, 31] {
                    let (la, lb) = (LAYOUTS[(m + k) % 5], LAYOUTS[(n * 3 + k) % 5]);
                    check(p, m, n, k, la, lb, 1.0, 0.0, n);
                }
            }
        }
    }
}

#[test]
fn packed_path_every_layout_pair() {
    // Large enough for the packed path, crossing MR/NR/KC/MC boundaries.
    for p in paths() {
        for la in LAYOUTS {
            for lb in LAYOUTS {
                check(p, 37, 45, 300, la, lb, 1.0, 0.0, 45);
                check(p, 151, 19, 40, la, lb, 1.0, 0.0, 21);
            }
        }
    }
}

#[test]
fn alpha_beta_variants() {
    for p in paths() {
        for &(alpha, beta) in &[(1.0, 0.0), (2.5, 0.0), (1.0, 1.0), (-0.5, 0.75), (0.0, 0.5), (0.0, 0.0)] {
            for &(m, n, k) in &[(3, 4, 5), (50, 70, 600), (7, 33, 257)] {
                check(p, m, n, k, Layout::RowMajor, Layout::RowMajor, alpha, beta, n + 3);
            }
        }
    }
}

#[test]
fn larger_shapes() {
    for p in paths() {
        check(p, 300, 200, 520, Layout::RowMajor, Layout::RowMajor, 1.0, 0.0, 200);
        check(p, 290, 130, 100, Layout::Strided, Layout::ColMajor, 1.5, 0.5, 131);
        // n beyond one NC block; m = 1 (a GEMV-shaped product).
        check(p, 3, 4133, 5, Layout::RowMajor, Layout::ColMajor, 1.0, 0.0, 4133);
        check(p, 1, 1000, 300, Layout::RowMajor, Layout::RowMajor, 1.0, 0.0, 1000);
        for lb in LAYOUTS {
            check(p, 1, 700, 400, Layout::RowMajor, lb, 0.5, 0.25, 700);
            check(p, 1, 37, 50, Layout::Strided, lb, 1.0, 0.0, 37);
        }
        check(p, 1000, 1, 300, Layout::RowMajor, Layout::RowMajor, 1.0, 0.0, 1);
    }
}

#[test]
fn degenerate_sizes() {
    for p in paths() {
        // k == 0: C = beta * C; with beta == 0 NaN garbage becomes zeros.
        check(p, 4, 5, 0, Layout::RowMajor, Layout::RowMajor, 1.0, 0.0, 5);
        check(p, 4, 5, 0, Layout::RowMajor, Layout::RowMajor, 1.0, 0.5, 6);
        check(p, 0, 5, 3, Layout::RowMajor, Layout::RowMajor, 1.0, 0.0, 5);
        check(p, 4, 0, 3, Layout::RowMajor, Layout::RowMajor, 1.0, 0.0, 0);
        let mut c: Vec<f32> = vec![];
        let e = MatRef { data: &[], offset: 0, row_stride: 0, col_stride: 0 };
        p.sgemm(0, 0, 0, 1.0, e, e, 0.0, &mut c, 0);
    }
}

#[test]
fn isas_agree() {
    // Not bitwise (FMA vs separate multiply-add), but within the same error bound: covered by
    // `check`; here compare directly on one big product as a smoke test.
    let (m, n, k) = (129, 131, 517);
    let (a, b) = (fill(m * k, 3), fill(k * n, 4));
    let mut out = Vec::new();
    for p in paths() {
        let mut c = vec![0.0; m * n];
        let (av, bv) = (
            MatRef { data: &a, offset: 0, row_stride: k, col_stride: 1 },
            MatRef { data: &b, offset: 0, row_stride: n, col_stride: 1 },
        );
        p.sgemm(m, n, k, 1.0, av, bv, 0.0, &mut c, n);
        out.push(c);
    }
    for c in &out[1..] {
        for (x, y) in c.iter().zip(&out[0]) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }
}

#[test]
fn independent_of_thread_count() {
    for (p, (m, n, k)) in
        paths().into_iter().flat_map(|i| [(i, (203, 157, 611)), (i, (1, 1500, 300)), (i, (301, 20, 300))])
    {
        let (a, b) = (fill(m * k, 5), fill(k * n, 6));
        let mut results = Vec::new();
        for threads in [1, 2, 3, 4] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = fill(m * n, 9);
            pool.install(|| {
                let av = MatRef { data: &a, offset: 0, row_stride: k, col_stride: 1 };
                let bv = MatRef { data: &b, offset: 0, row_stride: 1, col_stride: k };
                p.sgemm(m, n, k, 0.7, av, bv, 0.3, &mut c, n);
            });
            results.push(c);
        }
        for r in &results[1..] {
            assert!(r.iter().zip(&results[0]).all(|(x, y)| x.to_bits() == y.to_bits()), "{p:?}");
        }
    }
}

#[test]
#[should_panic(expected = "exceeds")]
fn out_of_bounds_view_panics() {
    let d = vec![0.0f32; 10];
    let a = MatRef { data: &d, offset: 0, row_stride: 4, col_stride: 1 };
    let mut c = vec![0.0f32; 9];
    sgemm(Isa::Portable, 3, 3, 4, 1.0, a, a, 0.0, &mut c, 3);
}
