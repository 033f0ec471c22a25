// matmul_f16.wgsl: batched matmul of f16 operands computing in f16, for adapters with
// `shader-f16`: C (batch, M, N) = A (batch, M, K) @ B (batch, K, N).
// Host: tensor/src/gpu/kernels/matmul.rs (f16 inputs on a device with SHADER_F16; others
// run matmul.wgsl, which decodes f16 to f32 and computes in f32). CPU twin: cpu/matmul.rs.
// (common.wgsl is prepended after the `enable` line.)
enable f16;
//
// Same tiling, parameters and bindings as matmul.wgsl (read its header): a workgroup
// computes a BM x BN tile of C, each invocation TM rows x two column pairs. What differs:
// - the tiles in workgroup memory hold f16 (half the bytes of matmul.wgsl's f32 tiles),
//   B's as column pairs (vec2<f16>), so one load feeds two columns;
// - products and the sum over one K tile (BK terms) are f16 arithmetic on vec2<f16>, the
//   packed operations GPUs run at twice the f32 rate; each tile's partial sums are then
//   added into f32 accumulators, so the f16 rounding error stays bounded by about
//   (BK + 1) 2^-11 sum_k |a||b| whatever K is, where an all-f16 sum would grow with K;
// - a partial sum must stay within f16's range (|x| < 65504) or it becomes inf: this path
//   is for activations and weights of ordinary magnitude, as f16 inference is.
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
// A and B are the same packed words as everywhere else, read as f16 pairs.
@group(0) @binding(1) var<storage, read> a: array<vec2<f16>>;
@group(0) @binding(2) var<storage, read> b: array<vec2<f16>>;
@group(0) @binding(3) var<storage, read_write> c: array<u32>;

override OUT_DT: u32 = 1u; // f16, or f32 when the host casts afterwards
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;
override A_K_CONTIG: bool = true;
override B_N_CONTIG: bool = true;

const TM: u32 = 4u;
const TN: u32 = 4u; // two column pairs
override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN;

var<workgroup> tile_a: array<f16, BK * BM>;            // [kk][mm]
var<workgroup> tile_b: array<vec2<f16>, BK * BN / 2u>; // [kk][column pair]

// Element i of a packed f16 buffer (two per word, element 2k in the low half).
fn load_a(i: u32) -> f16 {
    return a[i >> 1u][i & 1u];
}

fn load_b(i: u32) -> f16 {
    return b[i >> 1u][i & 1u];
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
        var v = f16(0.0);
        if gm < p.m && gk < p.k {
            v = load_a(ab.x + gm * p.a_rs + gk * p.a_cs);
        }
        tile_a[kk * BM + mm] = v;
    }
    let pairs = BN / 2u;
    for (var e = li; e < BK * pairs; e += nthreads) {
        var q: u32;
        var kk: u32;
        if B_N_CONTIG {
            q = e % pairs;
            kk = e / pairs;
        } else {
            kk = e % BK;
            q = e / BK;
        }
        let gn = col0 + 2u * q;
        let gk = k0 + kk;
        var v = vec2<f16>(0.0);
        if gk < p.k {
            let at = ab.y + gk * p.b_rs + gn * p.b_cs;
            if gn < p.n {
                v.x = load_b(at);
            }
            if gn + 1u < p.n {
                v.y = load_b(at + p.b_cs);
            }
        }
        tile_b[kk * pairs + q] = v;
    }
}

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

// acc += the staged tiles' product for this invocation's block: f16 over the tile, then
// one f32 addition per accumulator.
fn accumulate(acc: ptr<function, array<array<vec2<f32>, 2>, TM>>, lid: vec3<u32>) {
    let pairs = BN / 2u;
    var part: array<array<vec2<f16>, 2>, TM>;
    for (var kk = 0u; kk < BK; kk++) {
        var br: array<vec2<f16>, 2>;
        for (var jp = 0u; jp < 2u; jp++) {
            br[jp] = tile_b[kk * pairs + lid.x + jp * WG_X];
        }
        for (var i = 0u; i < TM; i++) {
            let ai = vec2<f16>(tile_a[kk * BM + lid.y + i * WG_Y]);
            for (var jp = 0u; jp < 2u; jp++) {
                part[i][jp] = fma(ai, br[jp], part[i][jp]);
            }
        }
    }
    for (var i = 0u; i < TM; i++) {
        for (var jp = 0u; jp < 2u; jp++) {
            (*acc)[i][jp] += vec2<f32>(part[i][jp]);
        }
    }
}

fn store(acc: array<array<vec2<f32>, 2>, TM>, z: u32, row0: u32, col0: u32, lid: vec3<u32>) {
    let cbase = z * p.m * p.n;
    for (var i = 0u; i < TM; i++) {
        let r = row0 + lid.y + i * WG_Y;
        if r >= p.m {
            continue;
        }
        for (var jp = 0u; jp < 2u; jp++) {
            let col = col0 + 2u * (lid.x + jp * WG_X);
            if col >= p.n {
                continue;
            }
            let v = acc[i][jp];
            let at = cbase + r * p.n + col; // even when OUT_DT is 16-bit (N even)
            if is_half(OUT_DT) {
                c[at >> 1u] = pack_bits(OUT_DT, f32_to_bits(OUT_DT, v.x), f32_to_bits(OUT_DT, v.y));
            } else {
                c[at] = bitcast<u32>(v.x);
                if col + 1u < p.n {
                    c[at + 1u] = bitcast<u32>(v.y);
                }
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_f16(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let ab = batch_offsets(wg.z);
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<array<vec2<f32>, 2>, TM>;
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        load_tiles(ab, row0, col0, k0, li);
        workgroupBarrier();
        accumulate(&acc, lid);
        workgroupBarrier();
    }
    store(acc, wg.z, row0, col0, lid);
}
