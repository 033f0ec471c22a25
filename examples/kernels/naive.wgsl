// naive.wgsl: the plainest matmul that meets the contract (docs/kernels/matmul.md), f32 only.
//
//   lamina kernel check examples/kernels/naive.wgsl --op matmul
//
// One invocation per element of C: it walks K reading A's row and B's column straight
// from the storage buffers, with no reuse between neighbours, so it is slow on a real
// GPU (every element of A and B is read N and M times). It declares none of the dtype
// overrides (DT_A, DT_B, OUT_DT), so `kernel check` runs it on the f32 cases only.

struct MatmulParams {
    m: u32, n: u32, k: u32, batch: u32,
    a_off: u32, a_rs: u32, a_cs: u32, b_off: u32,
    b_rs: u32, b_cs: u32, _p0: u32, _p1: u32,
    bshape: vec4<u32>, // batch dims, innermost last, padded in front with 1
    a_bs: vec4<u32>,   // A's element stride per batch dim (0: broadcast)
    b_bs: vec4<u32>,
}

@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

// The output tile of one workgroup, which the host reads for the grid
// (ceil(N / BN), ceil(M / BM), batch): here one element per invocation.
override BM: u32 = 8u;
override BN: u32 = 8u;

@compute @workgroup_size(BN, BM, 1)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let row = g.y;
    let col = g.x;
    let z = g.z;
    if row >= p.m || col >= p.n {
        return; // the grid rounds M and N up to whole workgroups
    }
    // Batch entry z's offsets: its index in each batch dim times that dim's stride.
    var rem = z;
    var a_at = p.a_off;
    var b_at = p.b_off;
    for (var d = 3; d >= 0; d--) {
        let i = rem % p.bshape[d];
        rem = rem / p.bshape[d];
        a_at += i * p.a_bs[d];
        b_at += i * p.b_bs[d];
    }
    var acc = 0.0;
    for (var i = 0u; i < p.k; i++) {
        acc += a[a_at + row * p.a_rs + i * p.a_cs] * b[b_at + i * p.b_rs + col * p.b_cs];
    }
    c[(z * p.m + row) * p.n + col] = acc;
}
