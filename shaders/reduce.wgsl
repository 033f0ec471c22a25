// reduce.wgsl: sum / max / min over a set of axes.
// Host: tensor/src/gpu/kernels/reduce.rs. CPU twin: tensor/src/cpu/reduce.rs.
// (common.wgsl is prepended: DT_* codes, codecs, NaN helpers, linear_id.)
//
// The host moves the reduced axes last (a view), so output r reduces "row" r: the row's
// start comes from r over the kept dims, its elements from j over the reduced dims
// (both simplified on the host; a contiguous row is one dim of stride 1).
//
// Two strategies, chosen by the host per call:
// - reduce_tree:   one workgroup per output word; its threads stride over the row (reads
//                  coalesced when the row is contiguous), then wg_sum / wg_max / wg_min
//                  (subgroup or workgroup-memory reductions, as the host composed).
// - reduce_serial: one invocation per output word, looping over the row; for short rows,
//                  or rows strided across memory where neighbouring outputs are adjacent.
// An output word holds two rows for f16/bf16, reduced one after the other.
// max/min propagate NaN (as the CPU); an empty row gives the identity (0, -inf, +inf).

override DT: u32 = 0u; // input and output dtype (a float dtype)
override OP: u32 = 0u; // REDUCE_SUM, REDUCE_MAX or REDUCE_MIN
override WG: u32 = 256u; // workgroup size: a power of two, at most 256

struct ReduceParams {
    rows: u32,      // outputs
    row_len: u32,   // elements reduced into each output
    kept_rank: u32,
    red_rank: u32,
    base: vec4<u32>, // .x: offset of element 0
    // dims[d] = (kept stride, kept size, reduced stride, reduced size), outermost first.
    dims: array<vec4<u32>, 8>,
}

@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<u32>;

fn load_x(i: u32) -> f32 {
    return bits_to_f32(DT, bits_in_word(DT, x[word_of(DT, i)], i));
}

// An unknown OP gives NaN (an error value), never another reduction.
fn identity() -> f32 {
    switch OP {
        case REDUCE_SUM: { return 0.0; }
        case REDUCE_MAX: { return neg_inf_f32(); }
        case REDUCE_MIN: { return inf_f32(); }
        default: { return nan_f32(); }
    }
}

fn combine(acc: f32, v: f32) -> f32 {
    switch OP {
        case REDUCE_SUM: { return acc + v; }
        case REDUCE_MAX: {
            if is_nan(acc) || is_nan(v) {
                return nan_f32();
            }
            return max(acc, v);
        }
        case REDUCE_MIN: {
            if is_nan(acc) || is_nan(v) {
                return nan_f32();
            }
            return min(acc, v);
        }
        default: { return nan_f32(); }
    }
}

// Storage index of row r's first element.
fn row_start(r: u32) -> u32 {
    var rem = r;
    var off = p.base.x;
    for (var d = p.kept_rank; d > 0u; d--) {
        let dim = p.dims[d - 1u];
        off += (rem % dim.y) * dim.x;
        rem /= dim.y;
    }
    return off;
}

// Offset of element j within a row.
fn in_row(j: u32) -> u32 {
    var rem = j;
    var off = 0u;
    for (var d = p.red_rank; d > 0u; d--) {
        let dim = p.dims[d - 1u];
        off += (rem % dim.w) * dim.z;
        rem /= dim.w;
    }
    return off;
}

@compute @workgroup_size(WG)
fn reduce_tree(lane: Lane, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let lid = lane.index;
    let w = wid.x + wid.y * nwg.x; // output word: the same for the whole workgroup
    let epw = elems_per_word(DT);
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let r = w * epw + e;
        if r < p.rows {
            let start = row_start(r);
            var acc = identity();
            for (var j = lid; j < p.row_len; j += WG) {
                acc = combine(acc, load_x(start + in_row(j)));
            }
            var total: f32;
            switch OP {
                case REDUCE_MAX: { total = wg_max(lane, acc); }
                case REDUCE_MIN: { total = wg_min(lane, acc); }
                default: { total = wg_sum(lane, acc); } // REDUCE_SUM; NaN rows for an unknown OP
            }
            bits[e] = f32_to_bits(DT, total);
        }
    }
    if lid == 0u && w * epw < p.rows {
        out[w] = pack_bits(DT, bits.x, bits.y);
    }
}

@compute @workgroup_size(WG)
fn reduce_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    if w * epw >= p.rows {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let r = w * epw + e;
        if r < p.rows {
            let start = row_start(r);
            var acc = identity();
            for (var j = 0u; j < p.row_len; j++) {
                acc = combine(acc, load_x(start + in_row(j)));
            }
            bits[e] = f32_to_bits(DT, acc);
        }
    }
    out[w] = pack_bits(DT, bits.x, bits.y);
}
