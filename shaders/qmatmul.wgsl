// qmatmul.wgsl: products with a quantized weight W (rows, cols) whose ggml blocks are
// dequantized inside the shader; activations and sums stay f32 (no 8-bit activations).
//   qmatvec:   y (M, rows) = x (M, cols) W^T  a few x rows (decode, M <= 8)
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
//   format  BS   hd (f16)   qs words (the block's other bytes, in order)
//   Q4_0    32   d          4: byte j = element j (low nibble), element j+16 (high)
//   Q4_1    32   d, m       4: as Q4_0
//   Q5_0    32   d          5: u32 of fifth bits (bit e = element e), then as Q4_0
//   Q5_1    32   d, m       5: as Q5_0
//   Q8_0    32   d          8: element e = signed byte e
//   Q4_K   256   d, dmin   35: 12 bytes of 6-bit (scale, min) pairs, then 128 bytes of
//                              nibbles: 32-byte chunk c holds sub-blocks 2c (low), 2c+1 (high)
//   Q5_K   256   d, dmin   43: as Q4_K with 32 bytes of fifth bits between (bit j of byte l:
//                              element l of sub-block j)
//   Q6_K   256   d         52: ql (128 bytes of low nibbles), qh (64 bytes of 2-bit highs),
//                              16 signed 8-bit scales of 16-element sub-blocks
//
// Every kernel reads weights through `group_of` and `dequant4` (below), which compute
// the same f32 values as `quant::dequantize_row` on the host.

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
const Q5_K: u32 = 6u;
const Q6_K: u32 = 7u;
override FMT: u32 = 0u;
override BS: u32 = 32u; // elements per block
override QW: u32 = 4u;  // words of qs per block
override NH: u32 = 1u;  // f16 header fields per block

// ---- decoding ----
//
// Every format decodes per 32-element group (a K-quant block holds 8 groups) in two
// steps: `group_of` reads what the whole group shares (its scales, its minimum, Q5's
// fifth bits), then `dequant4` turns four of its quantized elements into f32 with that:
// w[i] = s[i / 16] q[i] + m in every format, as the CPU's portable twin
// (cpu/qmatmul/portable.rs) also decodes. The f32 operations are those of
// `quant::dequantize_row`, so the values are the host's, bit for bit.

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

// What the 32 elements of group g of block b share.
struct Group {
    b: u32,
    g: u32,
    s: vec2<f32>, // scale of elements 0..16 and 16..32 (different only in Q6_K)
    m: f32,       // Q4_1/Q5_1: the minimum (added); Q4_K/Q5_K: dmin * min (subtracted)
    qh: u32,      // Q5_0/Q5_1: the fifth bits, bit e for element e
}

fn group_of(b: u32, g: u32) -> Group {
    var r = Group(b, g, vec2<f32>(0.0), 0.0, 0u);
    if FMT == Q4_K || FMT == Q5_K {
        // Sub-block g's 6-bit scale and min (ggml's get_scale_min_k4).
        var sc: u32;
        var mn: u32;
        if g < 4u {
            sc = qs_byte(b, g) & 63u;
            mn = qs_byte(b, g + 4u) & 63u;
        } else {
            sc = (qs_byte(b, g + 4u) & 0xfu) | ((qs_byte(b, g - 4u) >> 6u) << 4u);
            mn = (qs_byte(b, g + 4u) >> 4u) | ((qs_byte(b, g) >> 6u) << 4u);
        }
        r.s = vec2<f32>(head(b, 0u) * f32(sc));
        r.m = head(b, 1u) * f32(mn);
    } else if FMT == Q6_K {
        // Group g is quarter g % 4 of half g / 4; its 16-element halves have signed 8-bit
        // scales sc[8 h + 2 t] and sc[8 h + 2 t + 1] (after the 192 bytes of ql and qh).
        let at = 192u + 8u * (g / 4u) + 2u * (g % 4u);
        let sc = vec2<i32>(bitcast<i32>(qs_byte(b, at) << 24u), bitcast<i32>(qs_byte(b, at + 1u) << 24u)) >> vec2<u32>(24u);
        r.s = head(b, 0u) * vec2<f32>(sc);
    } else {
        r.s = vec2<f32>(head(b, 0u));
        if FMT == Q4_1 || FMT == Q5_1 {
            r.m = head(b, 1u);
        }
        if FMT == Q5_0 || FMT == Q5_1 {
            r.qh = qs[b * QW];
        }
    }
    return r;
}

// Elements 4i..4i+3 (i < 8) of the group. FMT is a pipeline constant: the compiler keeps
// one branch.
fn dequant4(gr: Group, i: u32) -> vec4<f32> {
    let e = 4u * i;
    let w = gr.b * QW; // the block's first qs word
    if FMT == Q4_0 || FMT == Q4_1 {
        // Byte j holds element j (low nibble) and j + 16 (high). Q4_0: (q - 8) d; Q4_1: q d + m.
        let q = vec4<f32>(nibbles4(qs[w + (e & 15u) / 4u], (e / 16u) * 4u));
        if FMT == Q4_0 {
            return (q - 8.0) * gr.s.x;
        }
        return q * gr.s.x + gr.m;
    } else if FMT == Q5_0 || FMT == Q5_1 {
        // The Q4 nibbles (after the qh word) plus a fifth bit. Q5_0: (q - 16) d; Q5_1: q d + m.
        let lo = nibbles4(qs[w + 1u + (e & 15u) / 4u], (e / 16u) * 4u);
        let hi = (vec4<u32>(gr.qh) >> (vec4<u32>(e) + vec4<u32>(0u, 1u, 2u, 3u))) & vec4<u32>(1u);
        let q = vec4<f32>(lo | (hi << vec4<u32>(4u)));
        if FMT == Q5_0 {
            return (q - 16.0) * gr.s.x;
        }
        return q * gr.s.x + gr.m;
    } else if FMT == Q8_0 {
        // Signed bytes, sign-extended by an arithmetic shift: q d.
        let q = bitcast<vec4<i32>>(vec4<u32>(qs[w + i]) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
        return vec4<f32>(q) * gr.s.x;
    } else if FMT == Q4_K {
        // After the 3 words of scales, 32-byte chunk g / 2 holds group g in its low (g
        // even) or high nibbles: (d sc) q - dmin mn.
        let q = vec4<f32>(nibbles4(qs[w + 3u + (gr.g / 2u) * 8u + i], (gr.g & 1u) * 4u));
        return gr.s.x * q - gr.m;
    } else if FMT == Q5_K {
        // As Q4_K with the nibbles after 8 words of fifth bits: bit g of byte e is element
        // e's fifth bit.
        let lo = nibbles4(qs[w + 11u + (gr.g / 2u) * 8u + i], (gr.g & 1u) * 4u);
        let hi = (bytes4(qs[w + 3u + i]) >> vec4<u32>(gr.g)) & vec4<u32>(1u);
        return gr.s.x * vec4<f32>(lo | (hi << vec4<u32>(4u))) - gr.m;
    }
    // Q6_K: element e of quarter t of half h has its low 4 bits in the low (t < 2) or high
    // nibble of ql[64 h + 32 (t % 2) + e], its high 2 bits at 2t of qh[32 h + e] (byte
    // 128 + 32 h + e): (d sc) (q - 32).
    let h = gr.g / 4u;
    let t = gr.g % 4u;
    let lo = nibbles4(qs[w + (64u * h + 32u * (t & 1u) + e) / 4u], (t / 2u) * 4u);
    let hi = (bytes4(qs[w + (128u + 32u * h + e) / 4u]) >> vec4<u32>(2u * t)) & vec4<u32>(3u);
    let q = vec4<f32>(vec4<i32>(lo | (hi << vec4<u32>(4u))) - vec4<i32>(32));
    return select(gr.s.x, gr.s.y, e >= 16u) * q;
}

// Weight elements (row, c..c+3), c a multiple of 4.
fn weights4(row: u32, c: u32) -> vec4<f32> {
    let e = c % BS;
    return dequant4(group_of(row * p.bpr + c / BS, e / 32u), (e % 32u) / 4u);
}

// ---- qdequant: one invocation per 4 elements. Dispatch: grid(ceil(rows * cols / 4 / WG)) ----

override WG: u32 = 64u; // qdequant and qmatvec: invocations per workgroup (a power of two, >= NR)

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
// A workgroup computes NR outputs (weight rows) for MC rows of x (wg.z * MC..): decode
// (M = 1) takes MC = 1, a few rows at once (M <= 8) MC = 4, so each weight is decoded once
// for MC dot products. The TPR = WG / NR invocations of one output take its 32-element
// groups round-robin: each reads a group's scales once, decodes its 32 weights (eight
// vec4s) and dots them with the x rows. The TPR partial sums of an output are then added
// in a fixed tree, so results do not depend on timing.
// Dispatch: grid(ceil(rows / NR)) in x, y; ceil(M / MC) in z.

const NR: u32 = 8u;
const MAX_MC: u32 = 4u;
override MC: u32 = 1u; // x rows per workgroup, <= MAX_MC
var<workgroup> part: array<f32, MC * WG>; // [x row][output][lane]

@compute @workgroup_size(WG)
fn qmatvec(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
    let tpr = WG / NR;
    let lane = li % tpr;
    let row = (wg.x + wg.y * nwg.x) * NR + li / tpr;
    let bpg = BS / 32u; // groups per block
    // x's rows for this workgroup, in vec4s; rows past M repeat the last (never stored).
    var xs: array<u32, MAX_MC>;
    for (var c = 0u; c < MC; c++) {
        xs[c] = (p.x_off + min(wg.z * MC + c, p.m - 1u) * p.cols) / 4u;
    }
    var acc: array<f32, MAX_MC>;
    if row < p.rows {
        for (var gi = lane; gi < p.cols / 32u; gi += tpr) {
            let gr = group_of(row * p.bpr + gi / bpg, gi % bpg);
            for (var i = 0u; i < 8u; i++) {
                let w = dequant4(gr, i);
                for (var c = 0u; c < MC; c++) {
                    acc[c] += dot(w, x4[xs[c] + 8u * gi + i]);
                }
            }
        }
    }
    for (var c = 0u; c < MC; c++) {
        part[c * WG + li] = acc[c];
    }
    workgroupBarrier();
    for (var s = tpr / 2u; s > 0u; s /= 2u) {
        if lane < s {
            for (var c = 0u; c < MC; c++) {
                part[c * WG + li] += part[c * WG + li + s];
            }
        }
        workgroupBarrier();
    }
    if lane == 0u && row < p.rows {
        for (var c = 0u; c < MC; c++) {
            let m = wg.z * MC + c;
            if m < p.m {
                y[m * p.rows + row] = part[c * WG + li];
            }
        }
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
