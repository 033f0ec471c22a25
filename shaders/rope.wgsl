// Rotary position embedding. x: (..., T, D) of any layout whose outer dims (..., T) fit in
// four after merging (row r = multi-index over `shape`, position r % T); cos, sin: (T, D/2)
// read through their strides. out: contiguous f32 (..., T, D), one invocation per element.
//
// Interleaved pairs rotate (x[2i], x[2i+1]) (GGUF / GPT-J); split halves rotate
// (x[i], x[i + D/2]) (HF / NeoX):  out[a] = x[a] cos - x[b] sin,  out[b] = x[a] sin + x[b] cos.
//
// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(numel / WG).

struct Params {
    shape: vec4<u32>,  // x's outer dims, innermost (T) last, padded in front with 1
    stride: vec4<u32>,
    offset: u32, col_stride: u32, d: u32, t: u32,
    numel: u32, c_off: u32, c_rs: u32, c_cs: u32,
    s_off: u32, s_rs: u32, s_cs: u32, _p0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> cos_t: array<u32>;
@group(0) @binding(3) var<storage, read> sin_t: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

override DT: u32 = 0u; // dtype of x, cos, sin: 0 = f32, 1 = f16, 2 = bf16
override INTERLEAVED: bool = true;
override WG: u32 = 256u;

fn widen(w: u32, i: u32) -> f32 {
    if DT == 0u {
        return bitcast<f32>(w);
    }
    let h = (w >> ((i & 1u) * 16u)) & 0xffffu;
    if DT == 1u {
        return unpack2x16float(h).x;
    }
    return bitcast<f32>(h << 16u);
}

fn wi(i: u32) -> u32 {
    return select(i, i >> 1u, DT != 0u);
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

@compute @workgroup_size(WG)
fn rope(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    if e >= p.numel {
        return;
    }
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
    let xa = widen(x[wi(ia)], ia);
    let xb = widen(x[wi(ib)], ib);
    let ic = p.c_off + pos * p.c_rs + i * p.c_cs;
    let is = p.s_off + pos * p.s_rs + i * p.s_cs;
    let c = widen(cos_t[wi(ic)], ic);
    let s = widen(sin_t[wi(is)], is);
    if second {
        out[e] = xa * s + xb * c;
    } else {
        out[e] = xa * c - xb * s;
    }
}
