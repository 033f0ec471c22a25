// attention.wgsl: fused scaled-dot-product attention forward with online softmax
// (flash-style): the (Tq, Tk) score matrix is never stored.
// Host: tensor/src/gpu/kernels/attention.rs. CPU twin: tensor/src/cpu/attention.rs.
// (common.wgsl is prepended.)
//
// q: (B, Hq, Tq, D), k: (B, Hkv, Tk, D), v: (B, Hkv, Tk, Dv), mask: (B, Hq, Tq, Tk) additive
// (already broadcast: 0 strides for broadcast dims), all read through strides;
// out: (B, Hq, Tq, Dv) contiguous, stored as OUT_DT (a 16-bit OUT_DT only when Dv is even:
// each invocation owns pairs of output dims). Query head h reads kv head h / (Hq / Hkv).
// Causal: query i sees keys j <= i + Tk - Tq (the last query aligned with the last key,
// as in KV-cache decode).
//
// Numerics as the CPU kernel's softmax: a row whose scores are all -inf gives NaN (0/0);
// a masked key contributes exactly 0 (exp_f32(-inf - m) is never evaluated).
//
// Two entry points:
// - `attention_tiled` (prefill): a workgroup takes BQ query rows of one (b, h); key and
//   value tiles of BKV rows are staged in workgroup memory and shared by the BQ rows.
//   TPR invocations per query row, each owning output dims 2 part + cp * 2 TPR (+0, +1)
//   (Dv <= DV_PER * TPR). Dispatch: (ceil(Tq / BQ), B * Hq, 1).
// - `attention_row` (decode, Tq == 1, and the fallback for any shape): a workgroup per
//   query row; its WG invocations split the keys of a chunk of WG keys for the scores, and
//   the output dims for the weighted sum. Dispatch: (Tq, B * Hq, 1).

struct AttentionParams {
    b: u32, hq: u32, hkv: u32, tq: u32,
    tk: u32, d: u32, dv: u32, causal: u32,
    scale: f32, has_mask: u32, _p0: u32, _p1: u32,
    q_st: vec4<u32>, // element strides of q over (B, H, T, D)
    k_st: vec4<u32>,
    v_st: vec4<u32>,
    m_st: vec4<u32>,
    offs: vec4<u32>, // storage offsets of q, k, v, mask
}

@group(0) @binding(0) var<uniform> p: AttentionParams;
@group(0) @binding(1) var<storage, read> q: array<u32>;
@group(0) @binding(2) var<storage, read> k: array<u32>;
@group(0) @binding(3) var<storage, read> v: array<u32>;
@group(0) @binding(4) var<storage, read> mask: array<u32>; // any buffer when has_mask == 0
@group(0) @binding(5) var<storage, read_write> out: array<u32>;

override DT: u32 = 0u; // dtype of q, k, v, mask
override OUT_DT: u32 = 0u;
override TPR: u32 = 4u;
override BQ: u32 = 16u;
override BKV: u32 = 16u;
override DMAX: u32 = 128u; // >= D and >= Dv: sizes the workgroup tiles
override WG: u32 = 64u;    // attention_row's workgroup size (a power of two)
override WG_TILED: u32 = BQ * TPR;
const DV_PER: u32 = 32u;   // output dims one invocation may own (even)

var<workgroup> qs: array<f32, BQ * DMAX>;   // [row][d]
var<workgroup> ks: array<f32, BKV * DMAX>;  // [key][d]
var<workgroup> vs: array<f32, BKV * DMAX>;  // [key][dv]
var<workgroup> ss: array<f32, BQ * BKV>;    // [row][key] scores
var<workgroup> qrow: array<f32, DMAX>;      // attention_row: the query
var<workgroup> sc: array<f32, WG>;          // attention_row: weights of a chunk

fn ld(dt: u32, word: u32, i: u32) -> f32 {
    return bits_to_f32(dt, bits_in_word(dt, word, i));
}

fn load_q(bi: u32, h: u32, t: u32, c: u32) -> f32 {
    let i = p.offs.x + bi * p.q_st.x + h * p.q_st.y + t * p.q_st.z + c * p.q_st.w;
    return ld(DT, q[word_of(DT, i)], i);
}

fn load_k(bi: u32, h: u32, t: u32, c: u32) -> f32 {
    let i = p.offs.y + bi * p.k_st.x + h * p.k_st.y + t * p.k_st.z + c * p.k_st.w;
    return ld(DT, k[word_of(DT, i)], i);
}

fn load_v(bi: u32, h: u32, t: u32, c: u32) -> f32 {
    let i = p.offs.z + bi * p.v_st.x + h * p.v_st.y + t * p.v_st.z + c * p.v_st.w;
    return ld(DT, v[word_of(DT, i)], i);
}

fn load_mask(bi: u32, h: u32, t: u32, j: u32) -> f32 {
    let i = p.offs.w + bi * p.m_st.x + h * p.m_st.y + t * p.m_st.z + j * p.m_st.w;
    return ld(DT, mask[word_of(DT, i)], i);
}

// Number of keys query i may see.
fn visible(i: u32) -> u32 {
    if p.causal != 0u {
        return min(i + 1u + p.tk - p.tq, p.tk);
    }
    return p.tk;
}

// Output dim of an invocation's c-th accumulator, for `lanes` invocations per row.
fn out_col(lane: u32, lanes: u32, c: u32) -> u32 {
    return (c / 2u) * 2u * lanes + 2u * lane + (c % 2u);
}

// Write the normalised accumulators o / l of output row `row` (element index row * Dv).
fn store_row(row: u32, lane: u32, lanes: u32, o: array<f32, DV_PER>, l: f32) {
    let dv = p.dv;
    let base = row * dv;
    for (var c = 0u; c < DV_PER; c += 2u) {
        let col = out_col(lane, lanes, c);
        if col >= dv {
            break;
        }
        let at = base + col;
        if is_half(OUT_DT) {
            // Dv even: the pair (col, col + 1) is one word.
            out[at >> 1u] = pack_bits(OUT_DT, f32_to_bits(OUT_DT, o[c] / l), f32_to_bits(OUT_DT, o[c + 1u] / l));
        } else {
            out[at] = bitcast<u32>(o[c] / l);
            if col + 1u < dv {
                out[at + 1u] = bitcast<u32>(o[c + 1u] / l);
            }
        }
    }
}

@compute @workgroup_size(WG_TILED)
fn attention_tiled(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let bh = wg.y;
    let bi = bh / p.hq;
    let h = bh % p.hq;
    let hk = h / (p.hq / p.hkv);
    let q0 = wg.x * BQ;
    let row = li / TPR;
    let part = li % TPR;
    let i = q0 + row;
    let row_ok = i < p.tq;
    let d = p.d;
    let dv = p.dv;

    for (var e = li; e < BQ * d; e += WG_TILED) {
        let r = e / d;
        var val = 0.0;
        if q0 + r < p.tq {
            val = load_q(bi, h, q0 + r, e % d);
        }
        qs[e] = val;
    }

    // Keys past the last one visible to the block's last row are skipped whole.
    let kend = visible(min(q0 + BQ, p.tq) - 1u);
    let vis = select(0u, visible(i), row_ok);

    var o: array<f32, DV_PER>;
    var m_run = neg_inf_f32();
    var l_run = 0.0;
    for (var kt = 0u; kt < kend; kt += BKV) {
        workgroupBarrier(); // qs written / the previous tile consumed
        for (var e = li; e < BKV * d; e += WG_TILED) {
            let j = kt + e / d;
            var val = 0.0;
            if j < p.tk {
                val = load_k(bi, hk, j, e % d);
            }
            ks[e] = val;
        }
        for (var e = li; e < BKV * dv; e += WG_TILED) {
            let j = kt + e / dv;
            var val = 0.0;
            if j < p.tk {
                val = load_v(bi, hk, j, e % dv);
            }
            vs[e] = val;
        }
        workgroupBarrier();
        for (var jj = part; jj < BKV; jj += TPR) {
            let j = kt + jj;
            var s = neg_inf_f32();
            if j < vis {
                var dot = 0.0;
                for (var c = 0u; c < d; c++) {
                    dot += qs[row * d + c] * ks[jj * d + c];
                }
                s = dot * p.scale;
                if p.has_mask != 0u {
                    s += load_mask(bi, h, i, j);
                }
            }
            ss[row * BKV + jj] = s;
        }
        workgroupBarrier();
        // Every invocation of the row redoes the row's (cheap) softmax bookkeeping.
        var mt = neg_inf_f32();
        for (var jj = 0u; jj < BKV; jj++) {
            mt = max(mt, ss[row * BKV + jj]);
        }
        let m_new = max(m_run, mt);
        var alpha = 0.0;
        if m_run != neg_inf_f32() {
            alpha = exp_f32(m_run - m_new);
        }
        l_run *= alpha;
        for (var c = 0u; c < DV_PER; c++) {
            o[c] *= alpha;
        }
        for (var jj = 0u; jj < BKV; jj++) {
            let s = ss[row * BKV + jj];
            if s != neg_inf_f32() {
                let pj = exp_f32(s - m_new);
                l_run += pj;
                for (var c = 0u; c < DV_PER; c++) {
                    let col = out_col(part, TPR, c);
                    if col < dv {
                        o[c] += pj * vs[jj * dv + col];
                    }
                }
            }
        }
        m_run = m_new;
    }
    if row_ok {
        store_row(bh * p.tq + i, part, TPR, o, l_run);
    }
}

@compute @workgroup_size(WG)
fn attention_row(@builtin(workgroup_id) wg: vec3<u32>, lane: Lane) {
    let li = lane.index;
    let i = wg.x;
    let bh = wg.y;
    let bi = bh / p.hq;
    let h = bh % p.hq;
    let hk = h / (p.hq / p.hkv);
    let d = p.d;
    let dv = p.dv;
    for (var c = li; c < d; c += WG) {
        qrow[c] = load_q(bi, h, i, c);
    }
    let vis = visible(i);
    var o: array<f32, DV_PER>;
    var m_run = neg_inf_f32();
    var l_run = 0.0;
    for (var kt = 0u; kt < vis; kt += WG) {
        workgroupBarrier(); // qrow written / the previous chunk's weights consumed
        let j = kt + li;
        var s = neg_inf_f32();
        if j < vis {
            var dot = 0.0;
            for (var c = 0u; c < d; c++) {
                dot += qrow[c] * load_k(bi, hk, j, c);
            }
            s = dot * p.scale;
            if p.has_mask != 0u {
                s += load_mask(bi, h, i, j);
            }
        }
        let m_new = max(m_run, wg_max(lane, s));
        var pj = 0.0;
        if s != neg_inf_f32() {
            pj = exp_f32(s - m_new);
        }
        sc[li] = pj;
        let chunk_sum = wg_sum(lane, pj); // its barriers also publish sc
        var alpha = 0.0;
        if m_run != neg_inf_f32() {
            alpha = exp_f32(m_run - m_new);
        }
        l_run = l_run * alpha + chunk_sum;
        m_run = m_new;
        let n = min(WG, vis - kt);
        for (var c = 0u; c < DV_PER; c++) {
            let col = out_col(li, WG, c);
            if col < dv {
                var acc = o[c] * alpha;
                for (var jj = 0u; jj < n; jj++) {
                    let w = sc[jj];
                    if w != 0.0 {
                        acc += w * load_v(bi, hk, kt + jj, col);
                    }
                }
                o[c] = acc;
            }
        }
    }
    store_row(bh * p.tq + i, li, WG, o, l_run);
}
