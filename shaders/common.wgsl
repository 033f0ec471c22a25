// common.wgsl: prepended to every shader in this directory by tensor/src/gpu/pipeline.rs
// (after the shader's own `enable` lines and the generated code block: DT_* dtype codes and
// UNARY_* / BINARY_* / CMP_* / REDUCE_* op codes, from tensor/src/gpu/codes.rs).
// Element codecs, NaN helpers, strided views.
//
// Storage convention: every tensor buffer is `array<u32>`. f32/i32/u32 take one word per
// element; f16/bf16 are packed two per word, element 2k in the low 16 bits of word k.
// Kernels compute in f32 and round on store exactly as the CPU backend does (`half`'s
// round-to-nearest-even), so results match bit for bit wherever the f32 math does.

fn is_half(dt: u32) -> bool {
    return dt == DT_F16 || dt == DT_BF16;
}

fn is_int(dt: u32) -> bool {
    return dt == DT_I32 || dt == DT_U32;
}

// Elements per u32 word: 2 for f16/bf16, else 1.
fn elems_per_word(dt: u32) -> u32 {
    return select(1u, 2u, is_half(dt));
}

// The word holding element `i`.
fn word_of(dt: u32, i: u32) -> u32 {
    return select(i, i >> 1u, is_half(dt));
}

// Element `i`'s bits, given the word that holds it (16-bit types in the low half).
fn bits_in_word(dt: u32, word: u32, i: u32) -> u32 {
    if is_half(dt) {
        return (word >> ((i & 1u) * 16u)) & 0xffffu;
    }
    return word;
}

// One word from element bits: `hi` is ignored for 32-bit types.
fn pack_bits(dt: u32, lo: u32, hi: u32) -> u32 {
    if is_half(dt) {
        return (lo & 0xffffu) | (hi << 16u);
    }
    return lo;
}

// ---- NaN and infinities (built from bits: WGSL float literals cannot be NaN/inf, and
// comparisons like x != x may be folded away by optimisers that assume finite math) ----

fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn f32_from_bits(b: u32) -> f32 {
    return bitcast<f32>(b);
}

// Quiet NaN / +inf / -inf (through a function so the constant evaluator never sees them).
fn nan_f32() -> f32 {
    var b = 0x7fc00000u;
    return bitcast<f32>(b);
}

fn inf_f32() -> f32 {
    var b = 0x7f800000u;
    return bitcast<f32>(b);
}

fn neg_inf_f32() -> f32 {
    var b = 0xff800000u;
    return bitcast<f32>(b);
}

// ---- exp / log with IEEE edge cases and relative accuracy ----

// exp; +-inf, NaN and overflow handled explicitly (some drivers' exp is exp2-based and
// misbehaves there). Results that would be subnormal may flush to zero.
fn exp_f32(x: f32) -> f32 {
    if is_nan(x) {
        return x;
    }
    if x > 88.72284 {
        return inf_f32();
    }
    if x < -104.0 {
        return 0.0;
    }
    return exp(x);
}

// Natural log to ~2 ulp everywhere. WGSL's log only promises 2^-21 absolute error on
// [0.5, 2], i.e. poor relative accuracy near 1, so: x = m 2^k with m in [sqrt(1/2),
// sqrt(2)), log m = 2 atanh(f), f = (m - 1) / (m + 1) (|f| < 0.172; series to f^11).
fn ln_f32(x: f32) -> f32 {
    if is_nan(x) || x < 0.0 {
        return nan_f32();
    }
    if x == 0.0 {
        return neg_inf_f32();
    }
    if x == inf_f32() {
        return x;
    }
    var b = bitcast<u32>(x);
    var k = 0;
    if b < 0x00800000u {
        b = bitcast<u32>(x * 8388608.0); // subnormal: scale by 2^23 first
        k = -23;
    }
    k += i32(b >> 23u) - 127;
    var m = bitcast<f32>((b & 0x007fffffu) | 0x3f800000u); // [1, 2)
    if m > 1.41421356 {
        m *= 0.5;
        k += 1;
    }
    let f = (m - 1.0) / (m + 1.0);
    let s = f * f;
    let poly = s * (0.33333333 + s * (0.2 + s * (0.14285714 + s * (0.11111111 + s * 0.09090909))));
    let log_m = 2.0 * f + 2.0 * f * poly;
    let kf = f32(k);
    // k ln2 in two parts: the high part times k is exact for |k| < 2^11.
    return kf * 0.693145751953125 + (log_m + kf * 1.4286068203094172e-6);
}

// ---- integer <-> f32 with Rust `as` semantics ----

// u32 -> f32, round to nearest even: both halves convert exactly and the sum rounds once.
fn u32_to_f32(x: u32) -> f32 {
    return f32(x >> 16u) * 65536.0 + f32(x & 0xffffu);
}

fn i32_to_f32(x: i32) -> f32 {
    let mag = select(bitcast<u32>(x), 0u - bitcast<u32>(x), x < 0);
    let f = u32_to_f32(mag);
    return select(f, -f, x < 0);
}

// Truncates toward zero, saturates, NaN -> 0 (Rust `f as i32`).
fn f32_to_i32(x: f32) -> i32 {
    if is_nan(x) {
        return 0;
    }
    if x >= 2147483648.0 {
        return 2147483647;
    }
    if x <= -2147483648.0 {
        return -2147483647 - 1;
    }
    return i32(x);
}

fn f32_to_u32(x: f32) -> u32 {
    if is_nan(x) || x <= 0.0 {
        return 0u;
    }
    if x >= 4294967296.0 {
        return 0xffffffffu;
    }
    return u32(x);
}

// ---- f16 / bf16 ----

// f16 bits -> f32, exact. By bit operations rather than unpack2x16float: naga and wgpu
// treat that builtin as a capability (SHADER_F16_IN_F32, which llvmpipe grants only with
// SHADER_F16), and this works on every adapter.
fn f16_to_f32(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let e = (h >> 10u) & 0x1fu;
    let m = h & 0x3ffu;
    if e == 0x1fu {
        return bitcast<f32>(sign | 0x7f800000u | (m << 13u)); // inf, NaN (payload kept)
    }
    if e != 0u {
        return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u)); // rebias 15 -> 127
    }
    let v = f32(m) * 5.9604644775390625e-8; // subnormal or zero: m * 2^-24, exact
    return select(v, -v, sign != 0u);
}

fn bf16_to_f32(h: u32) -> f32 {
    return bitcast<f32>(h << 16u);
}

// f32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet bit set), as `half`.
fn f32_to_bf16(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    if (b & 0x7fffffffu) > 0x7f800000u {
        return (b >> 16u) | 0x40u;
    }
    return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

// f32 -> f16 bits, round to nearest even, overflow to inf, subnormals kept, as `half`.
// (pack2x16float leaves rounding and out-of-range values to the implementation.)
fn f32_to_f16(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    let sign = (b >> 16u) & 0x8000u;
    let a = b & 0x7fffffffu;
    if a > 0x7f800000u {
        return sign | 0x7e00u | ((a >> 13u) & 0x3ffu); // NaN
    }
    if a >= 0x477ff000u {
        return sign | 0x7c00u; // rounds to >= 65520: inf
    }
    if a >= 0x38800000u {
        // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits.
        let r = a + 0xfffu + ((a >> 13u) & 1u);
        return sign | ((r >> 13u) - 0x1c000u);
    }
    if a < 0x33000000u {
        return sign; // below half the smallest subnormal: zero
    }
    // Subnormal: value = m * 2^(e - 150); in units of 2^-24 that is m >> (126 - e).
    let e = a >> 23u;
    let m = (a & 0x7fffffu) | 0x800000u;
    let shift = 126u - e;
    let q = m >> shift;
    let rem = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    let up = rem > half || (rem == half && (q & 1u) == 1u);
    return sign | (q + select(0u, 1u, up));
}

// ---- element <-> f32 by dtype ----

// The value of element bits as f32 (integers rounded to nearest, as Rust `as f32`).
fn bits_to_f32(dt: u32, bits: u32) -> f32 {
    switch dt {
        case 1u: { return f16_to_f32(bits); }
        case 2u: { return bf16_to_f32(bits); }
        case 3u: { return i32_to_f32(bitcast<i32>(bits)); }
        case 4u: { return u32_to_f32(bits); }
        default: { return bitcast<f32>(bits); }
    }
}

// Element bits for an f32 value: floats rounded to nearest even, integers truncated and
// saturated (NaN -> 0).
fn f32_to_bits(dt: u32, v: f32) -> u32 {
    switch dt {
        case 1u: { return f32_to_f16(v); }
        case 2u: { return f32_to_bf16(v); }
        case 3u: { return bitcast<u32>(f32_to_i32(v)); }
        case 4u: { return f32_to_u32(v); }
        default: { return bitcast<u32>(v); }
    }
}

// ---- strided views ----

// Up to three views of one shape (host: gpu::strided::StridedParams). dims[d] holds
// (stride of operand 0, of operand 1, of operand 2, size) for dim d, outermost first;
// base holds each operand's offset. s0, s1 carry op scalars.
const MAX_RANK: u32 = 8u;

struct Strided {
    n: u32,
    rank: u32,
    s0: f32,
    s1: f32,
    base: vec4<u32>,
    dims: array<vec4<u32>, 8>,
}

// Storage indices (elements) of row-major element `i` in each of the three operands.
fn strided_offsets(v: Strided, i: u32) -> vec3<u32> {
    var rem = i;
    var off = v.base.xyz;
    for (var d = v.rank; d > 0u; d--) {
        let dim = v.dims[d - 1u];
        off += (rem % dim.w) * dim.xyz;
        rem /= dim.w;
    }
    return off;
}

// Linear id of this invocation over a 2-D grid of 1-D workgroups (see gpu::dispatch::grid).
fn linear_id(gid: vec3<u32>, nwg: vec3<u32>, wg_size: u32) -> u32 {
    return gid.x + gid.y * nwg.x * wg_size;
}
