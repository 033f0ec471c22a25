// matvec.wgsl: batched matrix-vector product for M == 1 (decode):
// y (batch, 1, N) = x (batch, 1, K) @ B (batch, K, N).
// Host: tensor/src/gpu/kernels/matmul.rs (chosen when M == 1). CPU twin: cpu/matmul.rs.
// (common.wgsl is prepended.)
//
// A workgroup computes COLS outputs; each output's K-sum is split into KS slices (one
// invocation each, strided over K), then the KS partials are added in slice order, so the
// result is deterministic. The invocation mapping follows B's contiguous dim:
// K_CONTIG (B = W^T with W (N, K) row-major, the Linear-layer case): neighbouring
// invocations take neighbouring k of one column; otherwise neighbouring columns.
// y is stored as OUT_DT; for a 16-bit OUT_DT the invocation of an even column writes the
// word of columns (j, j + 1) (the host asks for it only when N is even or batch is 1).
//
// Dispatch: grid(ceil(N / COLS)) in x, y; batch in z.

struct MatvecParams {
    n: u32, k: u32, batch: u32, x_off: u32,
    x_cs: u32, b_off: u32, b_rs: u32, b_cs: u32,
    bshape: vec4<u32>, // batch dims, innermost last, padded in front with 1
    x_bs: vec4<u32>,
    b_bs: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: MatvecParams;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<u32>;

override DT_A: u32 = 0u; // dtype of x
override DT_B: u32 = 0u;
override OUT_DT: u32 = 0u;
override COLS: u32 = 64u; // even
override KS: u32 = 4u;
override K_CONTIG: bool = false;
override WG: u32 = COLS * KS;

var<workgroup> part: array<f32, COLS * KS>; // [col][slice]

fn load_x(i: u32) -> f32 {
    return bits_to_f32(DT_A, bits_in_word(DT_A, x[word_of(DT_A, i)], i));
}

fn load_b(i: u32) -> f32 {
    return bits_to_f32(DT_B, bits_in_word(DT_B, b[word_of(DT_B, i)], i));
}

fn column_sum(col: u32) -> f32 {
    var t = 0.0;
    for (var q = 0u; q < KS; q++) {
        t += part[col * KS + q];
    }
    return t;
}

@compute @workgroup_size(WG)
fn matvec(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    var rem = wg.z;
    var xo = p.x_off;
    var bo = p.b_off;
    for (var d = 3; d >= 0; d--) {
        let idx = rem % p.bshape[d];
        rem = rem / p.bshape[d];
        xo += idx * p.x_bs[d];
        bo += idx * p.b_bs[d];
    }
    var col: u32;
    var slice: u32;
    if K_CONTIG {
        slice = li % KS;
        col = li / KS;
    } else {
        col = li % COLS;
        slice = li / COLS;
    }
    let j = (wg.x + wg.y * nwg.x) * COLS + col;
    var s = 0.0;
    if j < p.n {
        for (var q = slice; q < p.k; q += KS) {
            s += load_x(xo + q * p.x_cs) * load_b(bo + q * p.b_rs + j * p.b_cs);
        }
    }
    part[col * KS + slice] = s;
    workgroupBarrier();
    if slice != 0u || j >= p.n {
        return;
    }
    let at = wg.z * p.n + j;
    if is_half(OUT_DT) {
        if (col & 1u) == 0u {
            var hi = 0u;
            if j + 1u < p.n {
                hi = f32_to_bits(OUT_DT, column_sum(col + 1u));
            }
            y[at >> 1u] = pack_bits(OUT_DT, f32_to_bits(OUT_DT, column_sum(col)), hi);
        }
    } else {
        y[at] = bitcast<u32>(column_sum(col));
    }
}
