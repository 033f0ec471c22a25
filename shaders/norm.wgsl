// norm.wgsl: row kernels over the last dim: softmax / log_softmax, layer_norm, rms_norm,
// forward and backward, and the column sums behind the norms' weight/bias gradients.
// Host: tensor/src/gpu/kernels/norm.rs. CPU twins: tensor/src/cpu/norm.rs (forward),
// the rules in tensor/src/autograd/grad.rs (backward). (common.wgsl is prepended.)
//
// A row kernel runs one workgroup per row (WG invocations, a power of two); invocations
// stride over the row and combine partial results with wg_sum / wg_max (subgroup or
// workgroup-memory reductions, whichever library the host composed in). x is a
// (rows, D) view of any layout whose outer dims fit in four (the host merges dims): row
// r starts at the multi-index of r over `shape` times `stride`, element c is + c * col_stride.
// The upstream gradient g is contiguous (rows, D) from g_off; mean and rstd are f32 per
// row, as the forward wrote them. Row outputs are contiguous, stored as OUT_DT;
// each invocation writes element pairs (c, c + 1), so a 16-bit OUT_DT needs D even (or one
// row); otherwise the host stores f32 and casts.
//
// Numerics follow the CPU: softmax is max-subtracted (a row that is all -inf, or holds a
// NaN or +inf, gives NaN, as PyTorch); layer_norm's mean is taken around x[0] and its
// variance from a second pass over x - mean (no E[x^2] - E[x]^2 cancellation).
//
// Row kernels dispatch grid(rows) workgroups (linear id wg.x + wg.y * nwg.x).

struct NormParams {
    shape: vec4<u32>,  // x's outer dims, innermost last, padded in front with 1
    stride: vec4<u32>, // x's element strides of those dims
    offset: u32, col_stride: u32, d: u32, rows: u32,
    eps: f32, w_off: u32, w_st: u32, b_off: u32,
    b_st: u32, g_off: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: NormParams;

// Every entry point binds the same seven buffers (the host passes a dummy for one it
// does not need), so each kernel's bind group has the shape `bind_all` pins down.
@group(0) @binding(1) var<storage, read_write> out: array<u32>;      // y, gx or partial sums
@group(0) @binding(2) var<storage, read> x: array<u32>;              // x (softmax_bwd: y)
@group(0) @binding(3) var<storage, read> g: array<u32>;              // upstream gradient
@group(0) @binding(4) var<storage, read> w: array<u32>;              // weight (D)
@group(0) @binding(5) var<storage, read> bias: array<u32>;           // bias (D)
@group(0) @binding(6) var<storage, read_write> mean_buf: array<f32>; // (rows), f32
@group(0) @binding(7) var<storage, read_write> rstd_buf: array<f32>; // (rows), f32

fn bind_all() {
    _ = out[0];
    _ = x[0];
    _ = g[0];
    _ = w[0];
    _ = bias[0];
    _ = mean_buf[0];
    _ = rstd_buf[0];
}

override DT: u32 = 0u;   // dtype of x, w, bias
override DT_G: u32 = 0u; // dtype of g
override OUT_DT: u32 = 0u;
override HAS_W: bool = false;
override HAS_B: bool = false;
override LOG: bool = false; // softmax kernels: log_softmax
override WG: u32 = 256u;
// norm_param_grad: 0 = sum g * (x - mean) * rstd (layer_norm weight), 1 = sum g * x * rstd
// (rms_norm weight), 2 = sum g (bias; also the second stage over f32 partials).
override MODE: u32 = 0u;
override ROWS_PER_CHUNK: u32 = 256u;

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

fn load_x(base: u32, c: u32) -> f32 {
    let i = base + c * p.col_stride;
    return ld(DT, x[word_of(DT, i)], i);
}

fn load_w(c: u32) -> f32 {
    if !HAS_W {
        return 1.0;
    }
    let i = p.w_off + c * p.w_st;
    return ld(DT, w[word_of(DT, i)], i);
}

fn load_b(c: u32) -> f32 {
    if !HAS_B {
        return 0.0;
    }
    let i = p.b_off + c * p.b_st;
    return ld(DT, bias[word_of(DT, i)], i);
}

fn load_g(i: u32) -> f32 {
    let j = p.g_off + i;
    return ld(DT_G, g[word_of(DT_G, j)], j);
}

// Store the values of elements at, at + 1 (`at` even for a 16-bit OUT_DT; `has_hi` says
// whether element at + 1 is part of the output).
fn store2(at: u32, v: vec2<f32>, has_hi: bool) {
    if is_half(OUT_DT) {
        out[at >> 1u] = pack_bits(OUT_DT, f32_to_bits(OUT_DT, v.x), select(0u, f32_to_bits(OUT_DT, v.y), has_hi));
    } else {
        out[at] = bitcast<u32>(v.x);
        if has_hi {
            out[at + 1u] = bitcast<u32>(v.y);
        }
    }
}

fn row_id(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}

// y = softmax(x) = exp_f32(x - max) * (1 / sum), or log_softmax = (x - max) - log(sum).
@compute @workgroup_size(WG)
fn softmax_fwd(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    bind_all();
    let li = lane.index;
    let r = row_id(wg, nwg);
    if r >= p.rows {
        return;
    }
    let base = row_base(r);
    let d = p.d;
    var m = neg_inf_f32();
    for (var c = li; c < d; c += WG) {
        m = max(m, load_x(base, c));
    }
    m = wg_max(lane, m);
    var s = 0.0;
    for (var c = li; c < d; c += WG) {
        s += exp_f32(load_x(base, c) - m);
    }
    s = wg_sum(lane, s);
    let ls = ln_f32(s);
    let inv = 1.0 / s;
    for (var c = 2u * li; c < d; c += 2u * WG) {
        let hi = c + 1u < d;
        let x0 = load_x(base, c);
        let x1 = select(0.0, load_x(base, c + 1u), hi);
        var v: vec2<f32>;
        if LOG {
            v = (vec2<f32>(x0, x1) - m) - ls;
        } else {
            v = vec2<f32>(exp_f32(x0 - m), exp_f32(x1 - m)) * inv;
        }
        store2(r * d + c, v, hi);
    }
}

// softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp_f32(y) * sum(g).
// y (the forward's output) is read through x's row view.
@compute @workgroup_size(WG)
fn softmax_bwd(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    bind_all();
    let li = lane.index;
    let r = row_id(wg, nwg);
    if r >= p.rows {
        return;
    }
    let d = p.d;
    let ybase = row_base(r);
    let base = r * d;
    var s = 0.0;
    for (var c = li; c < d; c += WG) {
        if LOG {
            s += load_g(base + c);
        } else {
            s += load_g(base + c) * load_x(ybase, c);
        }
    }
    s = wg_sum(lane, s);
    for (var c = 2u * li; c < d; c += 2u * WG) {
        let hi = c + 1u < d;
        var v = vec2<f32>(0.0);
        for (var e = 0u; e < select(1u, 2u, hi); e++) {
            let gc = load_g(base + c + e);
            let yc = load_x(ybase, c + e);
            if LOG {
                v[e] = gc - exp_f32(yc) * s;
            } else {
                v[e] = yc * (gc - s);
            }
        }
        store2(base + c, v, hi);
    }
}

// y = (x - mean) * rstd * w + b; mean and rstd written per row.
@compute @workgroup_size(WG)
fn layer_norm_fwd(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    bind_all();
    let li = lane.index;
    let r = row_id(wg, nwg);
    if r >= p.rows {
        return;
    }
    let base = row_base(r);
    let d = p.d;
    let n = f32(d);
    // Sum x - x[0]: with a large common offset, plain f32 sums would round away the spread.
    let c0 = load_x(base, 0u);
    var s = 0.0;
    for (var c = li; c < d; c += WG) {
        s += load_x(base, c) - c0;
    }
    let mean = c0 + wg_sum(lane, s) / n;
    var var_sum = 0.0;
    for (var c = li; c < d; c += WG) {
        let t = load_x(base, c) - mean;
        var_sum += t * t;
    }
    let rstd = 1.0 / sqrt(wg_sum(lane, var_sum) / n + p.eps);
    for (var c = 2u * li; c < d; c += 2u * WG) {
        let hi = c + 1u < d;
        var v = vec2<f32>(0.0);
        for (var e = 0u; e < select(1u, 2u, hi); e++) {
            v[e] = (load_x(base, c + e) - mean) * rstd * load_w(c + e) + load_b(c + e);
        }
        store2(r * d + c, v, hi);
    }
    if li == 0u {
        mean_buf[r] = mean;
        rstd_buf[r] = rstd;
    }
}

// gx = (g*w - mean(g*w) - xhat * mean(g*w * xhat)) * rstd, xhat = (x - mean) * rstd.
@compute @workgroup_size(WG)
fn layer_norm_bwd(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    bind_all();
    let li = lane.index;
    let r = row_id(wg, nwg);
    if r >= p.rows {
        return;
    }
    let base = row_base(r);
    let d = p.d;
    let n = f32(d);
    let mean = mean_buf[r];
    let rstd = rstd_buf[r];
    let out = r * d;
    var s = vec2<f32>(0.0);
    for (var c = li; c < d; c += WG) {
        let xhat = (load_x(base, c) - mean) * rstd;
        let gh = load_g(out + c) * load_w(c);
        s += vec2<f32>(gh, gh * xhat);
    }
    s = wg_sum2(lane, s);
    let m1 = s.x / n;
    let m2 = s.y / n;
    for (var c = 2u * li; c < d; c += 2u * WG) {
        let hi = c + 1u < d;
        var v = vec2<f32>(0.0);
        for (var e = 0u; e < select(1u, 2u, hi); e++) {
            let xhat = (load_x(base, c + e) - mean) * rstd;
            let gh = load_g(out + c + e) * load_w(c + e);
            v[e] = ((gh - m1) - xhat * m2) * rstd;
        }
        store2(out + c, v, hi);
    }
}

// y = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps) written per row.
@compute @workgroup_size(WG)
fn rms_norm_fwd(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    bind_all();
    let li = lane.index;
    let r = row_id(wg, nwg);
    if r >= p.rows {
        return;
    }
    let base = row_base(r);
    let d = p.d;
    let n = f32(d);
    var s = 0.0;
    for (var c = li; c < d; c += WG) {
        let t = load_x(base, c);
        s += t * t;
    }
    let rstd = 1.0 / sqrt(wg_sum(lane, s) / n + p.eps);
    for (var c = 2u * li; c < d; c += 2u * WG) {
        let hi = c + 1u < d;
        var v = vec2<f32>(0.0);
        for (var e = 0u; e < select(1u, 2u, hi); e++) {
            v[e] = load_x(base, c + e) * rstd * load_w(c + e);
        }
        store2(r * d + c, v, hi);
    }
    if li == 0u {
        rstd_buf[r] = rstd;
    }
}

// gx = (g*w - xhat * mean(g*w * xhat)) * rstd, xhat = x * rstd.
@compute @workgroup_size(WG)
fn rms_norm_bwd(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    bind_all();
    let li = lane.index;
    let r = row_id(wg, nwg);
    if r >= p.rows {
        return;
    }
    let base = row_base(r);
    let d = p.d;
    let n = f32(d);
    let rstd = rstd_buf[r];
    let out = r * d;
    var s = 0.0;
    for (var c = li; c < d; c += WG) {
        s += (load_g(out + c) * load_w(c)) * (load_x(base, c) * rstd);
    }
    let m = wg_sum(lane, s) / n;
    for (var c = 2u * li; c < d; c += 2u * WG) {
        let hi = c + 1u < d;
        var v = vec2<f32>(0.0);
        for (var e = 0u; e < select(1u, 2u, hi); e++) {
            let xhat = load_x(base, c + e) * rstd;
            v[e] = (load_g(out + c + e) * load_w(c + e) - xhat * m) * rstd;
        }
        store2(out + c, v, hi);
    }
}

// Column sums over a chunk of ROWS_PER_CHUNK rows, one invocation per column, rows added
// in order (deterministic): y[chunk, c] = sum_r term(r, c) as f32, term chosen by MODE.
// Dispatch: (ceil(D / WG), chunks, 1); then MODE 2 over the f32 (chunks, D) partials.
@compute @workgroup_size(WG)
fn norm_param_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
    bind_all();
    let c = gid.x;
    let d = p.d;
    if c >= d {
        return;
    }
    let r0 = wg.y * ROWS_PER_CHUNK;
    let r1 = min(r0 + ROWS_PER_CHUNK, p.rows);
    var acc = 0.0;
    for (var r = r0; r < r1; r++) {
        let gv = load_g(r * d + c);
        if MODE == 0u {
            acc += gv * ((load_x(row_base(r), c) - mean_buf[r]) * rstd_buf[r]);
        } else if MODE == 1u {
            acc += gv * (load_x(row_base(r), c) * rstd_buf[r]);
        } else {
            acc += gv;
        }
    }
    out[wg.y * d + c] = bitcast<u32>(acc);
}
