// optim.wgsl: fused in-place AdamW step (decoupled weight decay), an invocation per
// parameter:
//   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g g
//   p <- p - lr ((m / bc1) / (sqrt(v / bc2) + eps) + wd p)
// Host: tensor/src/gpu/kernels/optim.rs. CPU twin: tensor/src/optim.rs (adamw_step).
// (common.wgsl is prepended.)
//
// param, m, v: f32, contiguous from their offsets; grad: any layout (rank <= 8, padded
// in front), any float dtype. bc1 = 1 - b1^step and bc2 = 1 - b2^step come from the host,
// computed in f32 as the CPU does, and the expression order is the CPU's, so where the
// device does not fuse multiply-adds the result is bit-identical.
//
// Dispatch: grid(ceil(n / WG)).

struct AdamWParams {
    g_shape: array<vec4<u32>, 2>,
    g_stride: array<vec4<u32>, 2>,
    n: u32, g_off: u32, p_off: u32, m_off: u32,
    v_off: u32, lr: f32, beta1: f32, beta2: f32,
    one_minus_beta1: f32, one_minus_beta2: f32, eps: f32, weight_decay: f32,
    bc1: f32, bc2: f32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: AdamWParams;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<u32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

override DT_G: u32 = 0u; // dtype of grad
override G_CONTIG: bool = true;
override WG: u32 = 256u;

fn at(a: array<vec4<u32>, 2>, k: u32) -> u32 {
    return a[k / 4u][k % 4u];
}

fn load_g(e: u32) -> f32 {
    var i = p.g_off + e;
    if !G_CONTIG {
        var rem = e;
        i = p.g_off;
        for (var k = 7; k >= 0; k--) {
            let s = at(p.g_shape, u32(k));
            i += (rem % s) * at(p.g_stride, u32(k));
            rem = rem / s;
        }
    }
    return bits_to_f32(DT_G, bits_in_word(DT_G, grad[word_of(DT_G, i)], i));
}

@compute @workgroup_size(WG)
fn adamw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = linear_id(gid, nwg, WG);
    if e >= p.n {
        return;
    }
    let g = load_g(e);
    let mi = p.m_off + e;
    let vi = p.v_off + e;
    let pi = p.p_off + e;
    let m1 = p.beta1 * m[mi] + p.one_minus_beta1 * g;
    let v1 = p.beta2 * v[vi] + p.one_minus_beta2 * g * g;
    m[mi] = m1;
    v[vi] = v1;
    let update = (m1 / p.bc1) / (sqrt(v1 / p.bc2) + p.eps);
    let w = param[pi];
    param[pi] = w - p.lr * (update + p.weight_decay * w);
}
