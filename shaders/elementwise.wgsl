// elementwise.wgsl: unary maps, binary ops, comparisons and select (`where`).
// Host: tensor/src/gpu/kernels/elementwise.rs. CPU twin: tensor/src/cpu/elementwise.rs.
// Scalar definitions every function here must agree with: tensor/src/ops/kinds.rs.
// (common.wgsl is prepended: DT_* codes, codecs, Strided, strided_offsets, linear_id.)
//
// One invocation writes one output word: one element for 32-bit dtypes, two for f16/bf16
// (two invocations never write halves of one word). Inputs are strided views of one shape
// (broadcast dims have stride 0): operand 0 of `p` is `a`, 1 is `b`, 2 is `cond`.
// Math is f32; results are rounded to DT on store.

override DT: u32 = 0u;      // dtype of a, b and out (a float dtype)
override COND_DT: u32 = 0u; // dtype of select's condition (any dtype)
override OP: u32 = 0u;      // op code: UNARY_* / BINARY_* / CMP_* (generated, see common.wgsl)
override WG: u32 = 256u;    // workgroup size

@group(0) @binding(0) var<uniform> p: Strided;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<u32>;
@group(0) @binding(3) var<storage, read> b: array<u32>;
@group(0) @binding(4) var<storage, read> cond: array<u32>;

fn load_a(i: u32) -> f32 {
    return bits_to_f32(DT, bits_in_word(DT, a[word_of(DT, i)], i));
}

fn load_b(i: u32) -> f32 {
    return bits_to_f32(DT, bits_in_word(DT, b[word_of(DT, i)], i));
}

fn load_cond(i: u32) -> f32 {
    return bits_to_f32(COND_DT, bits_in_word(COND_DT, cond[word_of(COND_DT, i)], i));
}

// ---- unary functions (accurate versions where the GPU builtins are not) ----

fn sqrt_f(x: f32) -> f32 {
    if is_nan(x) || x < 0.0 {
        return nan_f32();
    }
    return sqrt(x);
}

// tanh to a few ulp everywhere. The builtin loses relative accuracy near zero, so this
// is Eigen's rational approximation (odd degree 13 over even degree 6), with tanh(x) = x
// below 4e-4 (error x^2/3 < 6e-8 relative) and +-1 from 9 on (where f32 tanh rounds to 1).
fn tanh_f(x: f32) -> f32 {
    let ax = abs(x);
    if is_nan(x) || ax < 0.0004 {
        return x;
    }
    if ax >= 9.0 {
        return select(-1.0, 1.0, x > 0.0);
    }
    let c = clamp(x, -7.90531110763549805, 7.90531110763549805);
    let x2 = c * c;
    var num = x2 * -2.76076847742355e-16 + 2.00018790482477e-13;
    num = x2 * num + -8.60467152213735e-11;
    num = x2 * num + 5.12229709037114e-08;
    num = x2 * num + 1.48572235717979e-05;
    num = x2 * num + 6.37261928875436e-04;
    num = x2 * num + 4.89352455891786e-03;
    num = c * num;
    var den = x2 * 1.19825839466702e-06 + 1.18534705686654e-04;
    den = x2 * den + 2.26843463243900e-03;
    den = x2 * den + 4.89352518554385e-03;
    return num / den;
}

// 1 / (1 + exp(-x)), split by sign so exp never overflows (as kinds.rs).
fn sigmoid_f(x: f32) -> f32 {
    if x >= 0.0 {
        return 1.0 / (1.0 + exp_f32(-x));
    }
    let e = exp_f32(x);
    return e / (1.0 + e);
}

// GPT-2's GELU, 0.5 x (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3), evaluated as
// the identical x * sigmoid(2u): no 1 + tanh cancellation for negative x.
fn gelu_tanh_f(x: f32) -> f32 {
    let u = 0.7978846 * (x + 0.044715 * x * x * x);
    return x * sigmoid_f(2.0 * u);
}

// erfc(z) for z >= 0, Numerical Recipes' erfcc (fractional error < 1.2e-7), as kinds.rs.
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    var q = t * 0.17087277 - 0.82215223;
    q = t * q + 1.48851587;
    q = t * q - 1.13520398;
    q = t * q + 0.27886807;
    q = t * q - 0.18628806;
    q = t * q + 0.09678418;
    q = t * q + 0.37409196;
    q = t * q + 1.00002368;
    q = t * q - 1.26551223;
    return t * exp_f32(q - z * z);
}

// 0.5 x (1 + erf(x / sqrt 2)); for x < 0, 1 + erf(-z) = erfc(z) avoids the cancellation.
fn gelu_erf_f(x: f32) -> f32 {
    let z = abs(x) * 0.70710678;
    let c = erfc_pos(z);
    return select(0.5 * x * (2.0 - c), 0.5 * x * c, x < 0.0);
}

fn is_odd_integer(e: f32) -> bool {
    return floor(e) == e && abs(e) < 16777216.0 && (i32(e) & 1) == 1;
}

// x^e with C powf's special cases. Small integer exponents use repeated squaring (a few
// roundings); others exp2(e log2 |x|) with the sign from the exponent's parity.
fn powf_f(x: f32, e: f32) -> f32 {
    if e == 0.0 || x == 1.0 {
        return 1.0;
    }
    if is_nan(x) || is_nan(e) {
        return nan_f32();
    }
    let ax = abs(x);
    if abs(e) == inf_f32() {
        if ax == 1.0 {
            return 1.0;
        }
        return select(0.0, inf_f32(), (ax > 1.0) == (e > 0.0));
    }
    let negate = (bitcast<u32>(x) >> 31u) == 1u && is_odd_integer(e); // -0 counts as negative
    if ax == inf_f32() {
        let mag = select(0.0, inf_f32(), e > 0.0); // (-inf)^e: sign only for odd integer e
        return select(mag, -mag, negate);
    }
    let integral = floor(e) == e;
    if x < 0.0 && !integral {
        return nan_f32();
    }
    var mag: f32;
    if integral && abs(e) <= 64.0 {
        var n = u32(abs(e));
        var base = ax;
        var acc = 1.0;
        while n > 0u {
            if (n & 1u) == 1u {
                acc *= base;
            }
            base *= base;
            n >>= 1u;
        }
        mag = select(acc, 1.0 / acc, e < 0.0);
    } else if ax == 0.0 {
        mag = select(inf_f32(), 0.0, e > 0.0);
    } else {
        mag = exp2(e * log2(ax));
    }
    return select(mag, -mag, negate);
}

// s0/s1: the op's scalars (UnaryOp::scalars). Each switch below ends in NaN for an unknown
// code (an error value), never in another op.
fn unary_op(x: f32) -> f32 {
    switch OP {
        case UNARY_NEG: { return -x; }
        case UNARY_EXP: { return exp_f32(x); }
        case UNARY_LOG: { return ln_f32(x); }
        case UNARY_SQRT: { return sqrt_f(x); }
        case UNARY_RSQRT: { return 1.0 / sqrt_f(x); }
        case UNARY_TANH: { return tanh_f(x); }
        case UNARY_SIGMOID: { return sigmoid_f(x); }
        case UNARY_RELU: { return select(0.0, x, x > 0.0 || is_nan(x)); }
        case UNARY_SILU: { return x * sigmoid_f(x); }
        case UNARY_GELU_TANH: { return gelu_tanh_f(x); }
        case UNARY_GELU_ERF: { return gelu_erf_f(x); }
        case UNARY_ABS: { return abs(x); }
        case UNARY_RECIP: { return 1.0 / x; }
        case UNARY_SQUARE: { return x * x; }
        case UNARY_POWF: { return powf_f(x, p.s0); }
        case UNARY_CLAMP: {
            if is_nan(x) {
                return x;
            }
            return min(max(x, p.s0), p.s1);
        }
        case UNARY_AFFINE: { return x * p.s0 + p.s1; }
        default: { return nan_f32(); }
    }
}

// NaN-propagating maximum/minimum (WGSL's max/min leave NaN to the implementation).
fn max_nan(x: f32, y: f32) -> f32 {
    if is_nan(x) || is_nan(y) {
        return nan_f32();
    }
    return max(x, y);
}

fn min_nan(x: f32, y: f32) -> f32 {
    if is_nan(x) || is_nan(y) {
        return nan_f32();
    }
    return min(x, y);
}

fn binary_op(x: f32, y: f32) -> f32 {
    switch OP {
        case BINARY_ADD: { return x + y; }
        case BINARY_SUB: { return x - y; }
        case BINARY_MUL: { return x * y; }
        case BINARY_DIV: { return x / y; }
        case BINARY_MAXIMUM: { return max_nan(x, y); }
        case BINARY_MINIMUM: { return min_nan(x, y); }
        default: { return nan_f32(); }
    }
}

// 1.0 where the comparison holds, else 0.0. Any NaN operand makes all but `ne` false
// (IEEE, as Rust; tested explicitly because GPUs may not order NaN).
fn compare_op(x: f32, y: f32) -> f32 {
    let ordered = !(is_nan(x) || is_nan(y));
    switch OP {
        case CMP_EQ: { return select(0.0, 1.0, ordered && x == y); }
        case CMP_NE: { return select(0.0, 1.0, !ordered || x != y); }
        case CMP_LT: { return select(0.0, 1.0, ordered && x < y); }
        case CMP_LE: { return select(0.0, 1.0, ordered && x <= y); }
        case CMP_GT: { return select(0.0, 1.0, ordered && x > y); }
        case CMP_GE: { return select(0.0, 1.0, ordered && x >= y); }
        default: { return nan_f32(); }
    }
}

// ---- entry points: one output word per invocation ----

@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    if w * epw >= p.n {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i < p.n {
            bits[e] = f32_to_bits(DT, unary_op(load_a(strided_offsets(p, i).x)));
        }
    }
    out[w] = pack_bits(DT, bits.x, bits.y);
}

@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    if w * epw >= p.n {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i < p.n {
            let o = strided_offsets(p, i);
            bits[e] = f32_to_bits(DT, binary_op(load_a(o.x), load_b(o.y)));
        }
    }
    out[w] = pack_bits(DT, bits.x, bits.y);
}

// 1.0 where the comparison holds, else 0.0, in DT.
@compute @workgroup_size(WG)
fn compare(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    if w * epw >= p.n {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i < p.n {
            let o = strided_offsets(p, i);
            bits[e] = f32_to_bits(DT, compare_op(load_a(o.x), load_b(o.y)));
        }
    }
    out[w] = pack_bits(DT, bits.x, bits.y);
}

// cond != 0 ? a : b (a NaN condition counts as nonzero, as on the CPU).
@compute @workgroup_size(WG)
fn select_where(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    if w * epw >= p.n {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i < p.n {
            let o = strided_offsets(p, i);
            let c = load_cond(o.z);
            let v = select(load_b(o.y), load_a(o.x), is_nan(c) || c != 0.0);
            bits[e] = f32_to_bits(DT, v);
        }
    }
    out[w] = pack_bits(DT, bits.x, bits.y);
}
