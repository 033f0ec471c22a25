// qmatmul.wgsl: products with a quantized weight W (rows, cols) whose ggml blocks are
// dequantized inside the shader; activations and sums stay f32 (no 8-bit activations).
//   qmatvec:   y (M, rows) = x (M, cols) W^T  one workgroup per NR weight rows (decode)
//   qmatmul_t: y (M, rows) = x (M, cols) W^T  workgroup-memory tiles (prefill)
//   qmatmul_n: y (M, cols) = g (M, rows) W    tiles; the gradient of qmatmul_t to x
//   qdequant:  y (rows, cols) = W             (checks, and float copies)
// Host: tensor/src/gpu/kernels/qmatmul.rs; upload and re-layout: tensor/src/gpu/qweights.rs.
// CPU twin: tensor/src/cpu/qmatmul/ (which rounds x to 8 bits; this does not).
// (common.wgsl is prepended.)
//
// Weight layout. A ggml block (18 to 210 bytes, mostly not a multiple of 4) is split at
// upload into its f16 header fields, which go to `hd` (NH f16 per block, two per word,
// the first in the low half), and the rest of the block, a whole number of words, which
// goes unchanged to `qs` (QW words per block). Blocks follow each other row by row, so
// block `row * bpr + j` holds elements j*BS .. (j+1)*BS of weight row `row`. The GPU copy
// is exactly as large as the file's blocks.
//
//   format  BS   hd (f16)   qs words (little-endian bytes of the ggml block after/before hd)
//   Q4_0    32   d          4: byte j = element j (low nibble), element j+16 (high)
//   Q4_1    32   d, m       4: as Q4_0
//   Q5_0    32   d          5: u32 of fifth bits (bit e = element e), then as Q4_0
//   Q5_1    32   d, m       5: as Q5_0
//   Q8_0    32   d          8: element e = signed byte e
//   Q4_K   256   d, dmin   35: 12 bytes of 6-bit (scale, min) pairs, then 128 bytes of
//                              nibbles: 32-byte chunk c holds sub-blocks 2c (low), 2c+1 (high)
//   Q6_K   256   d         52: ql (128 bytes of low nibbles), qh (64 bytes of 2-bit highs),
//                              16 signed 8-bit scales of 16-element sub-blocks
//
// Every kernel reads weights through `dequant4(b, e)`: elements e..e+3 (e a multiple of
// 4) of block b, as f32, computed with the same operations (and so the same f32 values)
// as `quant::dequantize_row` on the host.

struct QParams {
    m: u32,     // rows of x and y
    rows: u32,  // weight rows (qmatmul_t's output features)
    cols: u32,  // weight columns, a whole number of blocks
    bpr: u32,   // blocks per weight row (cols / BS)
    x_off: u32, // x's first element (a multiple of 4 for qmatvec)
    _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<uniform> p: QParams;
@group(0) @binding(1) var<storage, read> qs: array<u32>;
@group(0) @binding(2) var<storage, read> hd: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>; // the same x, for qmatvec

// Formats (gpu::kernels::qmatmul::format_code), and the layout the host chose for FMT.
const Q4_0: u32 = 0u;
const Q4_1: u32 = 1u;
const Q5_0: u32 = 2u;
const Q5_1: u32 = 3u;
const Q8_0: u32 = 4u;
const Q4_K: u32 = 5u;
const Q6_K: u32 = 6u;
override FMT: u32 = 0u;
override BS: u32 = 32u; // elements per block
override QW: u32 = 4u;  // words of qs per block
override NH: u32 = 1u;  // f16 header fields per block

// ---- decoding ----

// f16 header field h of block b (common.wgsl's exact decoder, not unpack2x16float,
// which some adapters lack).
fn head(b: u32, h: u32) -> f32 {
    let i = b * NH + h;
    return f16_to_f32((hd[i / 2u] >> ((i & 1u) * 16u)) & 0xffffu);
}

// The four bytes of a word, byte 0 first.
fn bytes4(w: u32) -> vec4<u32> {
    return (vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
}

// The low (shift 0) or high (shift 4) nibbles of a word's four bytes.
fn nibbles4(w: u32, shift: u32) -> vec4<u32> {
    return (bytes4(w) >> vec4<u32>(shift)) & vec4<u32>(0xfu);
}

// Byte i of block b's qs words.
fn qs_byte(b: u32, i: u32) -> u32 {
    return (qs[b * QW + i / 4u] >> ((i & 3u) * 8u)) & 0xffu;
}

// Q4_0: w = (q - 8) d. Q4_1: w = q d + m.
fn dequant4_q4(b: u32, e: u32) -> vec4<f32> {
    let q = vec4<f32>(nibbles4(qs[b * QW + (e & 15u) / 4u], (e / 16u) * 4u));
    if FMT == Q4_0 {
        return (q - 8.0) * head(b, 0u);
    }
    return q * head(b, 0u) + head(b, 1u);
}

// Q5_0: w = (q - 16) d. Q5_1: w = q d + m. q = nibble | fifth bit << 4.
fn dequant4_q5(b: u32, e: u32) -> vec4<f32> {
    let qh = qs[b * QW];
    let lo = nibbles4(qs[b * QW + 1u + (e & 15u) / 4u], (e / 16u) * 4u);
    let hi = (vec4<u32>(qh) >> (vec4<u32>(e) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
    let q = vec4<f32>(lo | (hi << vec4<u32>(4u)));
    if FMT == Q5_0 {
        return (q - 16.0) * head(b, 0u);
    }
    return q * head(b, 0u) + head(b, 1u);
}

// Q8_0: w = q d, q a signed byte (sign-extended by an arithmetic shift).
fn dequant4_q8(b: u32, e: u32) -> vec4<f32> {
    let w = qs[b * QW + e / 4u];
    let q = bitcast<vec4<i32>>(vec4<u32>(w) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
    return vec4<f32>(q) * head(b, 0u);
}

// Q4_K: sub-block j = e / 32 has a 6-bit scale sc and min mn (ggml's get_scale_min_k4);
// w = (d sc) q - dmin mn.
fn dequant4_q4k(b: u32, e: u32) -> vec4<f32> {
    let j = e / 32u;
    var sc: u32;
    var mn: u32;
    if j < 4u {
        sc = qs_byte(b, j) & 63u;
        mn = qs_byte(b, j + 4u) & 63u;
    } else {
        sc = (qs_byte(b, j + 4u) & 0xfu) | ((qs_byte(b, j - 4u) >> 6u) << 4u);
        mn = (qs_byte(b, j + 4u) >> 4u) | ((qs_byte(b, j) >> 6u) << 4u);
    }
    // After the 3 words of scales: chunk j / 2 (8 words), low nibbles for even j.
    let q = vec4<f32>(nibbles4(qs[b * QW + 3u + (j / 2u) * 8u + (e & 31u) / 4u], (j & 1u) * 4u));
    return (head(b, 0u) * f32(sc)) * q - head(b, 1u) * f32(mn);
}

// Q6_K: element e = 128 h + 32 t + l (half h, quarter t) has its low 4 bits in the low
// (t < 2) or high nibble of ql[64 h + 32 (t % 2) + l], its high 2 bits at 2t of
// qh[32 h + l], and the scale sc[8 h + 2 t + l / 16]; w = (d sc) (q - 32).
fn dequant4_q6k(b: u32, e: u32) -> vec4<f32> {
    let h = e / 128u;
    let t = (e / 32u) & 3u;
    let l = e & 31u;
    let lo = nibbles4(qs[b * QW + (64u * h + 32u * (t & 1u) + l) / 4u], (t / 2u) * 4u);
    let hi = (bytes4(qs[b * QW + 32u + (32u * h + l) / 4u]) >> vec4<u32>(2u * t)) & vec4<u32>(3u);
    let q = vec4<f32>(vec4<i32>(lo | (hi << vec4<u32>(4u))) - vec4<i32>(32));
    let sc = f32(bitcast<i32>(qs_byte(b, 192u + 8u * h + 2u * t + l / 16u) << 24u) >> 24u);
    return (head(b, 0u) * sc) * q;
}

// Elements e..e+3 of block b (e a multiple of 4). FMT is a pipeline constant: the
// compiler keeps one branch.
fn dequant4(b: u32, e: u32) -> vec4<f32> {
    if FMT == Q4_0 || FMT == Q4_1 {
        return dequant4_q4(b, e);
    } else if FMT == Q5_0 || FMT == Q5_1 {
        return dequant4_q5(b, e);
    } else if FMT == Q8_0 {
        return dequant4_q8(b, e);
    } else if FMT == Q4_K {
        return dequant4_q4k(b, e);
    }
    return dequant4_q6k(b, e);
}

// Weight elements (row, c..c+3), c a multiple of 4.
fn weights4(row: u32, c: u32) -> vec4<f32> {
    return dequant4(row * p.bpr + c / BS, c % BS);
}

// ---- qdequant: one invocation per 4 elements. Dispatch: grid(ceil(rows * cols / 4 / WG)) ----

override WG: u32 = 64u; // qdequant and qmatvec: invocations per workgroup (a power of two)

@compute @workgroup_size(WG)
fn qdequant(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) li: u32) {
    let i = (wg.x + wg.y * nwg.x) * WG + li; // index of the vec4
    if i >= p.rows * (p.cols / 4u) {
        return;
    }
    let row = i / (p.cols / 4u);
    let c = 4u * (i % (p.cols / 4u));
    let v = weights4(row, c);
    for (var t = 0u; t < 4u; t++) {
        y[row * p.cols + c + t] = v[t];
    }
}

// ---- qmatvec ----
//
// A workgroup computes NR outputs (weight rows row0..row0+NR) of one x row (wg.z): its WG
// invocations walk the x row four elements at a time, invocation li taking vec4s li,
// li + WG, ..., and each loaded x vec4 meets the NR weight rows. The partial sums are then
// added in a fixed tree, so the result does not depend on timing.
// Dispatch: grid(ceil(rows / NR)) in x, y; M in z.

const NR: u32 = 4u;
var<workgroup> part: array<f32, NR * WG>; // [row][invocation]

@compute @workgroup_size(WG)
fn qmatvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let row0 = (wg.x + wg.y * nwg.x) * NR;
    let x0 = (p.x_off + wg.z * p.cols) / 4u;
    var acc: array<f32, NR>;
    if row0 < p.rows {
        for (var u = li; u < p.cols / 4u; u += WG) {
            let xv = x4[x0 + u];
            for (var r = 0u; r < NR; r++) {
                // Rows past the end repeat the last one; their sums are never stored.
                acc[r] += dot(weights4(min(row0 + r, p.rows - 1u), 4u * u), xv);
            }
        }
    }
    for (var r = 0u; r < NR; r++) {
        part[r * WG + li] = acc[r];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if li < s {
            for (var r = 0u; r < NR; r++) {
                part[r * WG + li] += part[r * WG + li + s];
            }
        }
        workgroupBarrier();
    }
    if li < NR && row0 + li < p.rows {
        y[wg.z * p.rows + row0 + li] = part[li * WG];
    }
}

// ---- qmatmul_t / qmatmul_n: C (M, P) = X (M, R) B (R, P) in tiles ----
//
// B is W^T (qmatmul_t: P = rows, R = cols) or W (qmatmul_n: P = cols, R = rows), never
// materialised: each K step dequantizes the B tile (BK x BN) into workgroup memory next
// to the X tile (BK x BM), zeros past the edges. BK = 32 stays inside one block of every
// format. An invocation then accumulates a TM x TN block of C in registers, as in
// matmul.wgsl: rows ly + i WG_Y, column pairs 2 lx + jp 2 WG_X (+0, +1).
// Dispatch: (ceil(P / BN), ceil(M / BM), 1).

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const BK: u32 = 32u;
override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN;

var<workgroup> tile_x: array<f32, BK * BM>; // [kk][mm]
var<workgroup> tile_b: array<f32, BK * BN>; // [kk][nn]

// X rows row0.., columns k0.. (X is (M, r_len) from x_off, row-major).
fn load_x_tile(row0: u32, k0: u32, r_len: u32, li: u32) {
    for (var e = li; e < BM * BK; e += WG_X * WG_Y) {
        let kk = e % BK;
        let mm = e / BK;
        var v = 0.0;
        if row0 + mm < p.m && k0 + kk < r_len {
            v = x[p.x_off + (row0 + mm) * r_len + k0 + kk];
        }
        tile_x[kk * BM + mm] = v;
    }
}

// B = W^T: B[k][n] = W[n][k] for weight rows col0.., columns k0.. (four k per load).
fn load_wt_tile(col0: u32, k0: u32, li: u32) {
    for (var e = li; e < BN * BK / 4u; e += WG_X * WG_Y) {
        let kq = 4u * (e % (BK / 4u));
        let nn = e / (BK / 4u);
        var v = vec4<f32>(0.0);
        if col0 + nn < p.rows {
            v = weights4(col0 + nn, k0 + kq);
        }
        for (var t = 0u; t < 4u; t++) {
            tile_b[(kq + t) * BN + nn] = v[t];
        }
    }
}

// B = W: B[r][c] = W[r][c] for weight rows r0.., columns col0.. (four columns per load).
fn load_w_tile(col0: u32, r0: u32, li: u32) {
    for (var e = li; e < BK * BN / 4u; e += WG_X * WG_Y) {
        let cq = 4u * (e % (BN / 4u));
        let rr = e / (BN / 4u);
        var v = vec4<f32>(0.0);
        if r0 + rr < p.rows && col0 + cq < p.cols {
            v = weights4(r0 + rr, col0 + cq);
        }
        for (var t = 0u; t < 4u; t++) {
            tile_b[rr * BN + cq + t] = v[t];
        }
    }
}

// Column (within the tile) of an invocation's j-th accumulator.
fn tile_col(lx: u32, j: u32) -> u32 {
    return (j / 2u) * 2u * WG_X + 2u * lx + (j % 2u);
}

fn accumulate(acc: ptr<function, array<array<f32, TN>, TM>>, lid: vec3<u32>) {
    for (var kk = 0u; kk < BK; kk++) {
        var xr: array<f32, TM>;
        var br: array<f32, TN>;
        for (var i = 0u; i < TM; i++) {
            xr[i] = tile_x[kk * BM + lid.y + i * WG_Y];
        }
        for (var j = 0u; j < TN; j++) {
            br[j] = tile_b[kk * BN + tile_col(lid.x, j)];
        }
        for (var i = 0u; i < TM; i++) {
            for (var j = 0u; j < TN; j++) {
                (*acc)[i][j] += xr[i] * br[j];
            }
        }
    }
}

// C (M, n_out) row-major.
fn store(acc: array<array<f32, TN>, TM>, row0: u32, col0: u32, n_out: u32, lid: vec3<u32>) {
    for (var i = 0u; i < TM; i++) {
        let r = row0 + lid.y + i * WG_Y;
        for (var j = 0u; j < TN; j++) {
            let c = col0 + tile_col(lid.x, j);
            if r < p.m && c < n_out {
                y[r * n_out + c] = acc[i][j];
            }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn qmatmul_t(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<array<f32, TN>, TM>;
    for (var k0 = 0u; k0 < p.cols; k0 += BK) {
        load_x_tile(row0, k0, p.cols, li);
        load_wt_tile(col0, k0, li);
        workgroupBarrier();
        accumulate(&acc, lid);
        workgroupBarrier();
    }
    store(acc, row0, col0, p.rows, lid);
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn qmatmul_n(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
             @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    var acc: array<array<f32, TN>, TM>;
    for (var r0 = 0u; r0 < p.rows; r0 += BK) {
        load_x_tile(row0, r0, p.rows, li);
        load_w_tile(col0, r0, li);
        workgroupBarrier();
        accumulate(&acc, lid);
        workgroupBarrier();
    }
    store(acc, row0, col0, p.cols, lid);
}
