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
// B_N_CONTIG) so neighbouring invocations load neighbouring addresses; `matmul_vec4`
// loads four elements at a time along it (f32 operands whose layouts keep every vec4
// whole and aligned: the host checks).
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

// ---- scalar path (any dtype, any strides) ----

fn load_a(i: u32) -> f32 {
    return bits_to_f32(DT_A, bits_in_word(DT_A, a[word_of(DT_A, i)], i));
}

fn load_b(i: u32) -> f32 {
    return bits_to_f32(DT_B, bits_in_word(DT_B, b[word_of(DT_B, i)], i));
}

// Stage the A tile (rows row0.., k k0..) and B tile (k k0.., columns col0..), zeros past
// the edges; `ab` holds this batch entry's storage offsets of A and B.
fn load_tiles(ab: vec2<u32>, row0: u32, col0: u32, k0: u32, li: u32) {
    let nthreads = WG_X * WG_Y;
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
            v = load_a(ab.x + gm * p.a_rs + gk * p.a_cs);
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
            v = load_b(ab.y + gk * p.b_rs + gn * p.b_cs);
        }
        tile_b[kk * BN + nn] = v;
    }
}

// ---- vec4 path (f32; each operand's contiguous dim, its other stride, its offset and
// batch strides all multiples of 4, so every vec4 is whole and aligned) ----

@group(0) @binding(1) var<storage, read> a4: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<u32>>;

fn load_tiles_vec4(ab: vec2<u32>, row0: u32, col0: u32, k0: u32, li: u32) {
    let nthreads = WG_X * WG_Y;
    for (var e = li; e < BM * BK / 4u; e += nthreads) {
        // Four consecutive elements along A's contiguous dim.
        var mm: u32;
        var kk: u32;
        var step: vec2<u32>; // (m, k) step between the four
        if A_K_CONTIG {
            kk = (e % (BK / 4u)) * 4u;
            mm = e / (BK / 4u);
            step = vec2<u32>(0u, 1u);
        } else {
            mm = (e % (BM / 4u)) * 4u;
            kk = e / (BM / 4u);
            step = vec2<u32>(1u, 0u);
        }
        let gm = row0 + mm;
        let gk = k0 + kk;
        var v = vec4<f32>(0.0);
        if gm < p.m && gk < p.k {
            v = bitcast<vec4<f32>>(a4[(ab.x + gm * p.a_rs + gk * p.a_cs) / 4u]);
        }
        for (var c = 0u; c < 4u; c++) {
            tile_a[(kk + c * step.y) * BM + mm + c * step.x] = v[c];
        }
    }
    for (var e = li; e < BK * BN / 4u; e += nthreads) {
        var nn: u32;
        var kk: u32;
        var step: vec2<u32>; // (k, n) step between the four
        if B_N_CONTIG {
            nn = (e % (BN / 4u)) * 4u;
            kk = e / (BN / 4u);
            step = vec2<u32>(0u, 1u);
        } else {
            kk = (e % (BK / 4u)) * 4u;
            nn = e / (BK / 4u);
            step = vec2<u32>(1u, 0u);
        }
        let gn = col0 + nn;
        let gk = k0 + kk;
        var v = vec4<f32>(0.0);
        if gn < p.n && gk < p.k {
            v = bitcast<vec4<f32>>(b4[(ab.y + gk * p.b_rs + gn * p.b_cs) / 4u]);
        }
        for (var c = 0u; c < 4u; c++) {
            tile_b[(kk + c * step.x) * BN + nn + c * step.y] = v[c];
        }
    }
}

// ---- shared by both entry points ----

// Storage offsets of batch entry z's A and B.
fn batch_offsets(z: u32) -> vec2<u32> {
    var rem = z;
    var ab = vec2<u32>(p.a_off, p.b_off);
    for (var d = 3; d >= 0; d--) {
        let idx = rem % p.bshape[d];
        rem = rem / p.bshape[d];
        ab += idx * vec2<u32>(p.a_bs[d], p.b_bs[d]);
    }
    return ab;
}

// Column (within the tile) of an invocation's j-th accumulator.
fn tile_col(lx: u32, j: u32) -> u32 {
    return (j / 2u) * 2u * WG_X + 2u * lx + (j % 2u);
}

// acc += the staged tiles' product for this invocation's block.
fn accumulate(acc: ptr<function, array<array<f32, TN>, TM>>, lid: vec3<u32>) {
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
                (*acc)[i][j] += ar[i] * br[j];
            }
        }
    }
}

fn store(acc: array<array<f32, TN>, TM>, z: u32, row0: u32, col0: u32, lid: vec3<u32>) {
    let cbase = z * p.m * p.n;
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

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let ab = batch_offsets(wg.z);
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<array<f32, TN>, TM>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        load_tiles(ab, row0, col0, k0, li);
        workgroupBarrier();
        accumulate(&acc, lid);
        workgroupBarrier();
    }
    store(acc, wg.z, row0, col0, lid);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let ab = batch_offsets(wg.z);
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<array<f32, TN>, TM>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        load_tiles_vec4(ab, row0, col0, k0, li);
        workgroupBarrier();
        accumulate(&acc, lid);
        workgroupBarrier();
    }
    store(acc, wg.z, row0, col0, lid);
}
