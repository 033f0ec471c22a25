// matmul.wgsl: batched tiled matmul, C (batch, M, N) = A (batch, M, K) @ B (batch, K, N).
// Host: tensor/src/gpu/kernels/matmul.rs. CPU twin: tensor/src/cpu/matmul.rs.
// (common.wgsl is prepended: DT_* codes, codecs, linear_id.)
//
// A and B are read through their strides (a transposed operand needs no copy) and their
// batch dims through per-dim batch strides (0 = broadcast). C is contiguous, stored as
// OUT_DT (f32, or the inputs' 16-bit dtype rounded to nearest even when N is even, so each
// word of C belongs to one invocation; otherwise the host stores f32 and casts).
//
// A workgroup computes a BM x BN tile of C, each invocation a TM x TN block of it in
// registers: rows ly + i * WG_Y, column pairs 2 lx + jp * 2 WG_X (+0, +1), interleaved so
// neighbouring invocations touch neighbouring workgroup words. Tiles of A (BM x BK) and
// B (BK x BN) are staged in workgroup memory, zero-filled past the edges, so any M, N, K
// is correct. The tile-load mapping follows each operand's contiguous dim (A_K_CONTIG,
// B_N_CONTIG) so neighbouring invocations load neighbouring addresses.
//
// Dispatch: (ceil(N / BN), ceil(M / BM), batch).

struct MatmulParams {
    m: u32, n: u32, k: u32, batch: u32,
    a_off: u32, a_rs: u32, a_cs: u32, b_off: u32,
    b_rs: u32, b_cs: u32, _p0: u32, _p1: u32,
    bshape: vec4<u32>, // batch dims, innermost last, padded in front with 1
    a_bs: vec4<u32>,   // A's element stride per batch dim
    b_bs: vec4<u32>,   // B's element stride per batch dim
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<u32>;

override DT_A: u32 = 0u;
override DT_B: u32 = 0u;
override OUT_DT: u32 = 0u;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;
override A_K_CONTIG: bool = true;
override B_N_CONTIG: bool = true;

const TM: u32 = 4u;
const TN: u32 = 4u; // two column pairs
override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN;

var<workgroup> tile_a: array<f32, BK * BM>; // [kk][mm]
var<workgroup> tile_b: array<f32, BK * BN>; // [kk][nn]

fn load_a(i: u32) -> f32 {
    return bits_to_f32(DT_A, bits_in_word(DT_A, a[word_of(DT_A, i)], i));
}

fn load_b(i: u32) -> f32 {
    return bits_to_f32(DT_B, bits_in_word(DT_B, b[word_of(DT_B, i)], i));
}

// Column (within the tile) of an invocation's j-th accumulator.
fn tile_col(lx: u32, j: u32) -> u32 {
    return (j / 2u) * 2u * WG_X + 2u * lx + (j % 2u);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // Storage offsets of this batch entry's A and B.
    var rem = wg.z;
    var ao = p.a_off;
    var bo = p.b_off;
    for (var d = 3; d >= 0; d--) {
        let idx = rem % p.bshape[d];
        rem = rem / p.bshape[d];
        ao += idx * p.a_bs[d];
        bo += idx * p.b_bs[d];
    }
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    let nthreads = WG_X * WG_Y;

    var acc: array<array<f32, TN>, TM>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        for (var e = li; e < BM * BK; e += nthreads) {
            var mm: u32;
            var kk: u32;
            if A_K_CONTIG {
                kk = e % BK;
                mm = e / BK;
            } else {
                mm = e % BM;
                kk = e / BM;
            }
            let gm = row0 + mm;
            let gk = k0 + kk;
            var v = 0.0;
            if gm < p.m && gk < p.k {
                v = load_a(ao + gm * p.a_rs + gk * p.a_cs);
            }
            tile_a[kk * BM + mm] = v;
        }
        for (var e = li; e < BK * BN; e += nthreads) {
            var nn: u32;
            var kk: u32;
            if B_N_CONTIG {
                nn = e % BN;
                kk = e / BN;
            } else {
                kk = e % BK;
                nn = e / BK;
            }
            let gn = col0 + nn;
            let gk = k0 + kk;
            var v = 0.0;
            if gn < p.n && gk < p.k {
                v = load_b(bo + gk * p.b_rs + gn * p.b_cs);
            }
            tile_b[kk * BN + nn] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            var ar: array<f32, TM>;
            var br: array<f32, TN>;
            for (var i = 0u; i < TM; i++) {
                ar[i] = tile_a[kk * BM + lid.y + i * WG_Y];
            }
            for (var j = 0u; j < TN; j++) {
                br[j] = tile_b[kk * BN + tile_col(lid.x, j)];
            }
            for (var i = 0u; i < TM; i++) {
                for (var j = 0u; j < TN; j++) {
                    acc[i][j] += ar[i] * br[j];
                }
            }
        }
        workgroupBarrier();
    }

    let cbase = wg.z * p.m * p.n;
    for (var i = 0u; i < TM; i++) {
        let r = row0 + lid.y + i * WG_Y;
        if r >= p.m {
            continue;
        }
        for (var j = 0u; j < TN; j += 2u) {
            let col = col0 + tile_col(lid.x, j);
            if col >= p.n {
                continue;
            }
            let at = cbase + r * p.n + col; // even when OUT_DT is 16-bit (N even)
            if is_half(OUT_DT) {
                c[at >> 1u] = pack_bits(OUT_DT, f32_to_bits(OUT_DT, acc[i][j]), f32_to_bits(OUT_DT, acc[i][j + 1u]));
            } else {
                c[at] = bitcast<u32>(acc[i][j]);
                if col + 1u < p.n {
                    c[at + 1u] = bitcast<u32>(acc[i][j + 1u]);
                }
            }
        }
    }
}
