// Index kernels: the copies index_select / gather / concat (any dtype, bits moved
// unchanged) and the scatter-adds index_add / scatter_add (floating, f32 out).
//
// Layouts have rank <= 8, padded in front to exactly 8 dims (size 1, stride 0); `dim` is
// the padded axis. Ids arrive as u32 (the host checked 0 <= id < size).
//
// Copies (`gather_copy`): one invocation per output word, so 16-bit dtypes (two per u32)
// never have two invocations writing one word. MODE 0 index_select: out[.., j, ..] =
// src[.., ids[j], ..]; MODE 1 gather: out[e] = src[e with e[dim] = ids[e]] (out has the index's
// shape); MODE 2 concat part: the output elements whose e[dim] lies in
// [start, start + len) come from src[e with e[dim] - start]; the others keep their bits
// (one dispatch per part; dispatches in one pass are ordered, so the read-modify-write of a
// word shared by two parts is safe).
//
// Scatter-adds (`scatter_add`): deterministic and atomics-free. The host turns the ids
// into buckets (a counting sort, CSR: `starts`, `perm`) listing, for each destination
// slot, the contributing source positions in ascending order; one invocation per
// destination element adds its contributions in that order onto the destination value,
// which is exactly the CPU kernel's summation order (bit-identical results). Work is
// O(dest + src) regardless of how the ids repeat.
// PER_LINE false (index_add): bucket = e[dim], contributions j = perm[..] at src[e with
// e[dim] = j]. PER_LINE true (scatter_add): the bucket is (line, e[dim]) where line is the
// row-major index of e without `dim` over the index shape; elements outside the index
// shape get no contributions.
//
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(words / WG).

struct CopyParams {
    shape: array<vec4<u32>, 2>,  // output shape
    stride: array<vec4<u32>, 2>, // source strides
    src_off: u32, dim: u32, numel: u32, start: u32,
    len: u32, _p0: u32, _p1: u32, _p2: u32,
}

struct ScatterParams {
    shape: array<vec4<u32>, 2>,    // destination (= output) shape
    d_stride: array<vec4<u32>, 2>, // destination strides
    i_shape: array<vec4<u32>, 2>,  // index / source shape
    s_stride: array<vec4<u32>, 2>, // source strides
    d_off: u32, s_off: u32, dim: u32, numel: u32,
}

@group(0) @binding(0) var<uniform> cp: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_bits: array<u32>;

@group(0) @binding(0) var<uniform> sp: ScatterParams;
@group(0) @binding(1) var<storage, read> dest: array<u32>;
@group(0) @binding(2) var<storage, read> source: array<u32>;
@group(0) @binding(3) var<storage, read> starts: array<u32>;
@group(0) @binding(4) var<storage, read> perm: array<u32>;
@group(0) @binding(5) var<storage, read_write> out_f32: array<f32>;

override MODE: u32 = 0u;
override ELEM16: bool = false; // gather_copy: 16-bit elements, two per word
override DT: u32 = 0u;         // scatter_add: dtype of dest and source: 0 = f32, 1 = f16, 2 = bf16
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

fn src_bits(s: u32) -> u32 {
    if ELEM16 {
        return (src[s >> 1u] >> ((s & 1u) * 16u)) & 0xffffu;
    }
    return src[s];
}

// Source element of output element e, or -1 (as u32 0xffffffff) when e keeps its old bits.
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
            return 0xffffffffu;
        }
        idx[dim] = j - cp.start;
    }
    return cp.src_off + offset_of(idx, cp.stride);
}

@compute @workgroup_size(WG)
fn gather_copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = gid.x + gid.y * nwg.x * WG;
    if !ELEM16 {
        if w >= cp.numel {
            return;
        }
        let s = copy_source(w);
        if s != 0xffffffffu {
            out_bits[w] = src_bits(s);
        }
        return;
    }
    let e0 = 2u * w;
    if e0 >= cp.numel {
        return;
    }
    var word = 0u;
    if MODE == 2u {
        word = out_bits[w];
    }
    for (var h = 0u; h < 2u; h++) {
        let e = e0 + h;
        if e < cp.numel {
            let s = copy_source(e);
            if s != 0xffffffffu {
                let sh = h * 16u;
                word = (word & ~(0xffffu << sh)) | (src_bits(s) << sh);
            }
        }
    }
    out_bits[w] = word;
}

fn widen(word: u32, i: u32) -> f32 {
    if DT == 0u {
        return bitcast<f32>(word);
    }
    let h = (word >> ((i & 1u) * 16u)) & 0xffffu;
    if DT == 1u {
        return unpack2x16float(h).x;
    }
    return bitcast<f32>(h << 16u);
}

fn wi(i: u32) -> u32 {
    return select(i, i >> 1u, DT != 0u);
}

@compute @workgroup_size(WG)
fn scatter_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    if e >= sp.numel {
        return;
    }
    var idx = unravel(e, sp.shape);
    let dim = sp.dim;
    let di = sp.d_off + offset_of(idx, sp.d_stride);
    var acc = widen(dest[wi(di)], di);
    let target_slot = idx[dim];
    var bucket = target_slot;
    var inside = true;
    if PER_LINE {
        // Row-major index of idx without `dim` over the index shape.
        var line = 0u;
        for (var k = 0u; k < 8u; k++) {
            if k != dim {
                let s = at(sp.i_shape, k);
                inside = inside && idx[k] < s;
                line = line * s + idx[k];
            }
        }
        bucket = line * at(sp.shape, dim) + target_slot;
    }
    if inside {
        for (var q = starts[bucket]; q < starts[bucket + 1u]; q++) {
            idx[dim] = perm[q];
            let si = sp.s_off + offset_of(idx, sp.s_stride);
            acc += widen(source[wi(si)], si);
        }
    }
    out_f32[e] = acc;
}
