// tiled.wgsl: a tiled matmul that meets the contract (docs/kernels/matmul.md) in f32,
// f16 and bf16.
//
//   lamina kernel check examples/kernels/tiled.wgsl --op matmul
//   lamina kernel bench examples/kernels/tiled.wgsl --op matmul --override WG=8
//
// A workgroup of WG x WG invocations computes a BM x BN = 2 WG x 2 WG tile of C; each
// invocation a 2 x 2 block of it: rows ly and ly + WG, columns 2 lx and 2 lx + 1 (a pair,
// so a 16-bit word of C is written by one invocation, as the contract asks). K is walked
// BK at a time: tiles of A (BM x BK) and B (BK x BN) are staged in workgroup memory, zero
// past the edges (so any M, N, K is right), and each staged value is used 2 WG times.
// A simpler cousin of the engine's shaders/matmul.wgsl (which keeps 4 x 4 per invocation
// and loads along each operand's contiguous dim).

struct MatmulParams {
    m: u32, n: u32, k: u32, batch: u32,
    a_off: u32, a_rs: u32, a_cs: u32, b_off: u32,
    b_rs: u32, b_cs: u32, _p0: u32, _p1: u32,
    bshape: vec4<u32>,
    a_bs: vec4<u32>,
    b_bs: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<u32>;

// Set by the host: the operands' and the output's dtype codes.
override DT_A: u32 = 0u;
override DT_B: u32 = 0u;
override OUT_DT: u32 = 0u;
// Tunable (`--override WG=8 --override BK=32`): invocations per side, K step.
override WG: u32 = 16u;
override BK: u32 = 16u;
// Read by the host for the grid (ceil(N / BN), ceil(M / BM), batch).
override BM: u32 = 2u * WG;
override BN: u32 = 2u * WG;

var<workgroup> tile_a: array<f32, BK * BM>; // [kk][mm]
var<workgroup> tile_b: array<f32, BK * BN>; // [kk][nn]

// Element i of A or B as f32, whatever its dtype (codecs from shaders/common.wgsl).
fn load_a(i: u32) -> f32 {
    return bits_to_f32(DT_A, bits_in_word(DT_A, a[word_of(DT_A, i)], i));
}

fn load_b(i: u32) -> f32 {
    return bits_to_f32(DT_B, bits_in_word(DT_B, b[word_of(DT_B, i)], i));
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

// Stage A's rows row0.. and B's columns col0.. for k0 .. k0 + BK, zeros past the edges.
fn load_tiles(ab: vec2<u32>, row0: u32, col0: u32, k0: u32, li: u32) {
    for (var e = li; e < BM * BK; e += WG * WG) {
        let mm = e / BK;
        let kk = e % BK;
        var v = 0.0;
        if row0 + mm < p.m && k0 + kk < p.k {
            v = load_a(ab.x + (row0 + mm) * p.a_rs + (k0 + kk) * p.a_cs);
        }
        tile_a[kk * BM + mm] = v;
    }
    for (var e = li; e < BK * BN; e += WG * WG) {
        let kk = e / BN;
        let nn = e % BN;
        var v = 0.0;
        if col0 + nn < p.n && k0 + kk < p.k {
            v = load_b(ab.y + (k0 + kk) * p.b_rs + (col0 + nn) * p.b_cs);
        }
        tile_b[kk * BN + nn] = v;
    }
}

@compute @workgroup_size(WG, WG, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let ab = batch_offsets(wg.z);
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<array<f32, 2>, 2>; // [row i][column j], zero to start
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        load_tiles(ab, row0, col0, k0, li);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let b0 = tile_b[kk * BN + 2u * lid.x];
            let b1 = tile_b[kk * BN + 2u * lid.x + 1u];
            for (var i = 0u; i < 2u; i++) {
                let av = tile_a[kk * BM + lid.y + i * WG];
                acc[i][0] += av * b0;
                acc[i][1] += av * b1;
            }
        }
        workgroupBarrier();
    }
    let col = col0 + 2u * lid.x;
    for (var i = 0u; i < 2u; i++) {
        let row = row0 + lid.y + i * WG;
        if row >= p.m || col >= p.n {
            continue;
        }
        let at = (wg.z * p.m + row) * p.n + col; // even whenever OUT_DT is 16-bit
        if is_half(OUT_DT) {
            c[at >> 1u] = pack_bits(OUT_DT, f32_to_bits(OUT_DT, acc[i][0]), f32_to_bits(OUT_DT, acc[i][1]));
        } else {
            c[at] = bitcast<u32>(acc[i][0]);
            if col + 1u < p.n {
                c[at + 1u] = bitcast<u32>(acc[i][1]);
            }
        }
    }
}
