// rope.wgsl: rotary position embedding.
// Host: tensor/src/gpu/kernels/rope.rs. CPU twin: tensor/src/cpu/rope.rs.
// (common.wgsl is prepended.)
//
// x: (..., T, D) of any layout whose outer dims (..., T) fit in four after merging (row r
// starts at the multi-index of r over `shape` times `stride`; its position is r % T);
// cos, sin: (T, D/2) read through their strides. out: contiguous (..., T, D) in DT, one
// invocation per output word (two elements for f16/bf16), each element computed alone:
//   out[a] = x[a] cos - x[b] sin,  out[b] = x[a] sin + x[b] cos
// with pairs (a, b) = (2i, 2i+1) when INTERLEAVED (GGUF / GPT-J), else (i, i + D/2)
// (HF / NeoX). The backward is this kernel with -sin.
//
// Dispatch: grid(ceil(words / WG)).

struct RopeParams {
    shape: vec4<u32>,  // x's outer dims, innermost (T) last, padded in front with 1
    stride: vec4<u32>,
    offset: u32, col_stride: u32, d: u32, t: u32,
    numel: u32, c_off: u32, c_rs: u32, c_cs: u32,
    s_off: u32, s_rs: u32, s_cs: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> p: RopeParams;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> cos_t: array<u32>;
@group(0) @binding(3) var<storage, read> sin_t: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<u32>;

override DT: u32 = 0u; // dtype of x, cos, sin and out
override INTERLEAVED: bool = true;
override WG: u32 = 256u;

fn ld(dt: u32, word: u32, i: u32) -> f32 {
    return bits_to_f32(dt, bits_in_word(dt, word, i));
}

fn row_base(r: u32) -> u32 {
    var rem = r;
    var off = p.offset;
    for (var d = 3; d >= 0; d--) {
        off += (rem % p.shape[d]) * p.stride[d];
        rem = rem / p.shape[d];
    }
    return off;
}

fn rope_at(e: u32) -> f32 {
    let d = p.d;
    let half = d / 2u;
    let r = e / d;
    let col = e % d;
    var i: u32;
    var a: u32;
    var b: u32;
    var second: bool;
    if INTERLEAVED {
        i = col / 2u;
        a = 2u * i;
        b = a + 1u;
        second = (col & 1u) == 1u;
    } else {
        second = col >= half;
        i = select(col, col - half, second);
        a = i;
        b = i + half;
    }
    let pos = r % p.t;
    let base = row_base(r);
    let ia = base + a * p.col_stride;
    let ib = base + b * p.col_stride;
    let xa = ld(DT, x[word_of(DT, ia)], ia);
    let xb = ld(DT, x[word_of(DT, ib)], ib);
    let ic = p.c_off + pos * p.c_rs + i * p.c_cs;
    let is = p.s_off + pos * p.s_rs + i * p.s_cs;
    let c = ld(DT, cos_t[word_of(DT, ic)], ic);
    let s = ld(DT, sin_t[word_of(DT, is)], is);
    if second {
        return xa * s + xb * c;
    }
    return xa * c - xb * s;
}

@compute @workgroup_size(WG)
fn rope(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    if w * epw >= p.numel {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i < p.numel {
            bits[e] = f32_to_bits(DT, rope_at(i));
        }
    }
    out[w] = pack_bits(DT, bits.x, bits.y);
}
