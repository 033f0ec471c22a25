// copy.wgsl: strided view -> contiguous buffer, optionally converting the dtype.
// Host: tensor/src/gpu/kernels/copy.rs. CPU twins: CpuStorage::copy_contiguous / cast.
// (common.wgsl is prepended: DT_* codes, codecs, Strided, strided_offsets, linear_id.)
//
// One invocation writes one output word (two elements for f16/bf16 outputs). Conversion
// follows CpuStorage::cast: same dtype and int <-> int copy the bits (int <-> int wraps,
// as Rust `as`); anything else goes through f32 (integers rounded to nearest, floats to
// integers truncated and saturated, NaN -> 0; f16/bf16 rounded to nearest even).

override SRC_DT: u32 = 0u;
override DST_DT: u32 = 0u;
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Strided;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;

fn convert(bits: u32) -> u32 {
    if SRC_DT == DST_DT || (is_int(SRC_DT) && is_int(DST_DT)) {
        return bits;
    }
    return f32_to_bits(DST_DT, bits_to_f32(SRC_DT, bits));
}

@compute @workgroup_size(WG)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DST_DT);
    if w * epw >= p.n {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i < p.n {
            let s = strided_offsets(p, i).x;
            bits[e] = convert(bits_in_word(SRC_DT, src[word_of(SRC_DT, s)], s));
        }
    }
    out[w] = pack_bits(DST_DT, bits.x, bits.y);
}
