// Fused cross-entropy over logits z (N, C) (any 2-D layout) and targets t (N) (u32 bits of
// i32 ids; ignore_index rows are skipped; the host checked the others are in 0..C).
//
// forward:  `ce_rows` (one workgroup per row) writes lse[r] = max + log(sum exp(z - max))
//           and loss[r] = lse[r] - z[r, t[r]] (0 for an ignored row);
//           `ce_finalize` (one workgroup) writes out[0] = sum(loss) / count (NaN when every
//           row is ignored: 0/0, as PyTorch) and out[1] = max(count, 1) for the backward.
// backward: `ce_backward` (one invocation per logit) writes the f32 gradient
//           gz[r, c] = (exp(z[r, c] - lse[r]) - [c == t[r]]) * g / max(count, 1) for
//           non-ignored rows and 0 for ignored ones; g is the upstream scalar gradient.
// Row sums use a fixed-order tree, so results are deterministic.

struct Params {
    n: u32, c: u32, z_off: u32, z_rs: u32,
    z_cs: u32, ignore_index: i32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<u32>;
@group(0) @binding(2) var<storage, read> targets: array<u32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;  // (N)
@group(0) @binding(4) var<storage, read_write> loss: array<f32>; // (N)

// ce_finalize
@group(0) @binding(1) var<storage, read> loss_in: array<f32>;
@group(0) @binding(2) var<storage, read> targets_f: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [mean loss, max(count, 1)]

// ce_backward
@group(0) @binding(3) var<storage, read> lse_in: array<f32>;
@group(0) @binding(4) var<storage, read> stats: array<f32>; // ce_finalize's out
@group(0) @binding(5) var<storage, read> g: array<f32>;     // upstream gradient (1 value)
@group(0) @binding(6) var<storage, read_write> gz: array<f32>;

override DT: u32 = 0u; // dtype of z: 0 = f32, 1 = f16, 2 = bf16
override WG: u32 = 256u;

var<workgroup> red: array<f32, WG>;
var<workgroup> red2: array<f32, WG>;

fn load_z(r: u32, col: u32) -> f32 {
    let i = p.z_off + r * p.z_rs + col * p.z_cs;
    if DT == 0u {
        return bitcast<f32>(z[i]);
    }
    let h = (z[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu;
    if DT == 1u {
        return unpack2x16float(h).x;
    }
    return bitcast<f32>(h << 16u);
}

fn reduce(li: u32, v: f32, take_max: bool) -> f32 {
    workgroupBarrier();
    red[li] = v;
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if li < s {
            if take_max {
                red[li] = max(red[li], red[li + s]);
            } else {
                red[li] = red[li] + red[li + s];
            }
        }
    }
    workgroupBarrier();
    return red[0];
}

// Dispatch: (min(N, 65535), ceil(N / 65535), 1).
@compute @workgroup_size(WG)
fn ce_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = wg.x + wg.y * nwg.x;
    if r >= p.n {
        return;
    }
    let t = i32(targets[r]);
    if t == p.ignore_index {
        if li == 0u {
            lse[r] = 0.0;
            loss[r] = 0.0;
        }
        return;
    }
    var m = bitcast<f32>(0xff800000u);
    for (var col = li; col < p.c; col += WG) {
        m = max(m, load_z(r, col));
    }
    m = reduce(li, m, true);
    var s = 0.0;
    for (var col = li; col < p.c; col += WG) {
        s += exp(load_z(r, col) - m);
    }
    s = reduce(li, s, false);
    if li == 0u {
        let l = m + log(s);
        lse[r] = l;
        loss[r] = l - load_z(r, u32(t));
    }
}

// Dispatch: (1, 1, 1).
@compute @workgroup_size(WG)
fn ce_finalize(@builtin(local_invocation_index) li: u32) {
    var s = 0.0;
    var cnt = 0.0;
    for (var r = li; r < p.n; r += WG) {
        if i32(targets_f[r]) != p.ignore_index {
            s += loss_in[r];
            cnt += 1.0;
        }
    }
    red2[li] = cnt;
    let total = reduce(li, s, false);
    // reduce() ended with a barrier, so red2 is complete; sum it in the same tree order.
    for (var st = WG / 2u; st > 0u; st = st / 2u) {
        if li < st {
            red2[li] = red2[li] + red2[li + st];
        }
        workgroupBarrier();
    }
    if li == 0u {
        let count = red2[0];
        out[0] = total / count;
        out[1] = max(count, 1.0);
    }
}

// Dispatch: (min(groups, 65535), ceil(groups / 65535), 1), groups = ceil(N * C / WG).
@compute @workgroup_size(WG)
fn ce_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    if e >= p.n * p.c {
        return;
    }
    let r = e / p.c;
    let col = e % p.c;
    let t = i32(targets_f[r]);
    var v = 0.0;
    if t != p.ignore_index {
        let scale = g[0] / stats[1];
        var onehot = 0.0;
        if u32(t) == col {
            onehot = 1.0;
        }
        v = (exp(load_z(r, col) - lse_in[r]) - onehot) * scale;
    }
    gz[e] = v;
}
