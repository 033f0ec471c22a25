// index.wgsl: the index copies index_select / gather / concat (any dtype, bits moved
// unchanged) and the scatter-adds index_add / scatter_add (float dtypes).
// Host: tensor/src/gpu/kernels/index.rs. CPU twin: tensor/src/cpu/index.rs.
// (common.wgsl is prepended.)
//
// Layouts have rank <= 8, padded in front to exactly 8 dims (size 1, stride 0); `dim` is
// the padded axis. Ids arrive as u32 (the host checked 0 <= id < size).
//
// Copies (`gather_copy`): one invocation per output word, so two invocations never write
// one word of a 16-bit dtype. MODE 0 index_select: out[.., j, ..] = src[.., ids[j], ..];
// MODE 1 gather: out[e] = src[e with e[dim] = ids[e]] (out has the index's shape);
// MODE 2 concat part: output elements whose e[dim] lies in [start, start + len) come from
// src[e with e[dim] - start], the others keep their bits (one dispatch per part; the
// dispatches are ordered, so the read-modify-write of a word two parts share is safe).
//
// Scatter-adds (`scatter_add`): deterministic and atomics-free. The host turns the ids
// into buckets (a counting sort, CSR `starts` / `perm`) that list, for each destination
// slot, the contributing source positions along `dim` in ascending order. One invocation
// per output word; each of its elements starts from the destination value and adds its
// contributions in that order, which is the CPU kernel's summation order, so the f32
// result is bit-identical. Work is O(dest + src) however the ids repeat.
// PER_LINE false (index_add): the bucket is e[dim]; contribution j reads
// source[e with e[dim] = j]. PER_LINE true (scatter_add): the bucket is (line, e[dim]),
// line = the row-major index of e without `dim` over the index shape; elements outside
// the index shape get nothing.
//
// Dispatch: grid(ceil(words / WG)).

struct CopyParams {
    shape: array<vec4<u32>, 2>,  // output shape
    stride: array<vec4<u32>, 2>, // source strides
    src_off: u32, dim: u32, numel: u32, start: u32,
    len: u32, _p0: u32, _p1: u32, _p2: u32,
}

struct ScatterParams {
    shape: array<vec4<u32>, 2>,    // destination (= output) shape
    d_stride: array<vec4<u32>, 2>, // destination strides
    i_shape: array<vec4<u32>, 2>,  // index (= source) shape
    s_stride: array<vec4<u32>, 2>, // source strides
    d_off: u32, s_off: u32, dim: u32, numel: u32,
}

@group(0) @binding(0) var<uniform> cp: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@group(0) @binding(0) var<uniform> sp: ScatterParams;
@group(0) @binding(1) var<storage, read> dest: array<u32>;
@group(0) @binding(2) var<storage, read> source: array<u32>;
@group(0) @binding(4) var<storage, read> starts: array<u32>;
@group(0) @binding(5) var<storage, read> perm: array<u32>;

override DT: u32 = 0u; // element dtype (copies: any; scatter-adds: a float dtype)
override MODE: u32 = 0u;
override PER_LINE: bool = false;
override WG: u32 = 256u;

fn at(v: array<vec4<u32>, 2>, k: u32) -> u32 {
    return v[k / 4u][k % 4u];
}

// Multi-index of linear index e over `shape` (row-major).
fn unravel(e: u32, shape: array<vec4<u32>, 2>) -> array<u32, 8> {
    var idx: array<u32, 8>;
    var rem = e;
    for (var k = 7; k >= 0; k--) {
        let s = at(shape, u32(k));
        idx[k] = rem % s;
        rem = rem / s;
    }
    return idx;
}

fn offset_of(idx: array<u32, 8>, stride: array<vec4<u32>, 2>) -> u32 {
    var off = 0u;
    for (var k = 0u; k < 8u; k++) {
        off += idx[k] * at(stride, k);
    }
    return off;
}

const KEEP: u32 = 0xffffffffu;

// Source element of output element e, or KEEP when e keeps its old bits.
fn copy_source(e: u32) -> u32 {
    var idx = unravel(e, cp.shape);
    let dim = cp.dim;
    if MODE == 0u {
        idx[dim] = ids[idx[dim]];
    } else if MODE == 1u {
        idx[dim] = ids[e];
    } else {
        let j = idx[dim];
        if j < cp.start || j >= cp.start + cp.len {
            return KEEP;
        }
        idx[dim] = j - cp.start;
    }
    return cp.src_off + offset_of(idx, cp.stride);
}

@compute @workgroup_size(WG)
fn gather_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    if w * epw >= cp.numel {
        return;
    }
    var bits = vec2<u32>(0u, 0u); // a padding half past the end stays zero
    if MODE == 2u {
        let word = out[w];
        bits = vec2<u32>(bits_in_word(DT, word, 0u), bits_in_word(DT, word, 1u));
    }
    var changed = false;
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i >= cp.numel {
            bits[e] = 0u;
            continue;
        }
        let s = copy_source(i);
        if s != KEEP {
            bits[e] = bits_in_word(DT, src[word_of(DT, s)], s);
            changed = true;
        }
    }
    // A concat part leaves words holding none of its elements alone.
    if changed {
        out[w] = pack_bits(DT, bits.x, bits.y);
    }
}

fn scatter_at(e: u32) -> f32 {
    var idx = unravel(e, sp.shape);
    let dim = sp.dim;
    let di = sp.d_off + offset_of(idx, sp.d_stride);
    var acc = bits_to_f32(DT, bits_in_word(DT, dest[word_of(DT, di)], di));
    var bucket = idx[dim];
    if PER_LINE {
        // Row-major index of idx without `dim` over the index shape.
        var line = 0u;
        for (var k = 0u; k < 8u; k++) {
            if k != dim {
                let s = at(sp.i_shape, k);
                if idx[k] >= s {
                    return acc;
                }
                line = line * s + idx[k];
            }
        }
        bucket = line * at(sp.shape, dim) + idx[dim];
    }
    for (var q = starts[bucket]; q < starts[bucket + 1u]; q++) {
        idx[dim] = perm[q];
        let si = sp.s_off + offset_of(idx, sp.s_stride);
        acc += bits_to_f32(DT, bits_in_word(DT, source[word_of(DT, si)], si));
    }
    return acc;
}

@compute @workgroup_size(WG)
fn scatter_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    if w * epw >= sp.numel {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i < sp.numel {
            bits[e] = f32_to_bits(DT, scatter_at(i));
        }
    }
    out[w] = pack_bits(DT, bits.x, bits.y);
}
