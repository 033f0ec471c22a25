// cross_entropy.wgsl: fused cross-entropy over logits z (N, C) (any 2-D layout) and
// targets t (N) (i32 ids as u32 bits; ignore_index rows are skipped, the host checked the
// others lie in 0..C).
// Host: tensor/src/gpu/kernels/norm.rs. CPU twins: cpu::cross_entropy (forward), the
// CrossEntropy rule in autograd/grad.rs (backward). (common.wgsl is prepended.)
//
// forward:  `ce_rows` (a workgroup per row) writes lse[r] = max + log(sum exp_f32(z - max))
//           and loss[r] = lse[r] - z[r, t[r]] (0 for an ignored row);
//           `ce_finalize` (one workgroup) writes stats[0] = sum(loss) / count (NaN when
//           every row is ignored: 0/0, as PyTorch) and stats[1] = max(count, 1).
// backward: `ce_backward` (an invocation per output word) writes
//           gz[r, c] = (exp_f32(z[r, c] - lse[r]) - [c == t[r]]) * g / max(count, 1), 0 for an
//           ignored row, stored as DT; g is the upstream gradient (one f32).
// Sums use fixed-order trees, so results are deterministic.

struct CeParams {
    n: u32, c: u32, z_off: u32, z_rs: u32,
    z_cs: u32, ignore_index: i32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: CeParams;

// Every entry point binds the same seven buffers (the host passes a dummy for one it
// does not need); `bind_all` pins that shape down.
@group(0) @binding(1) var<storage, read> z: array<u32>;         // logits
@group(0) @binding(2) var<storage, read> targets: array<u32>;   // (N)
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;  // (N)
@group(0) @binding(4) var<storage, read_write> loss: array<f32>; // (N)
@group(0) @binding(5) var<storage, read_write> stats: array<f32>; // [mean loss, max(count, 1)]
@group(0) @binding(6) var<storage, read> g: array<f32>;         // upstream gradient (1 value)
@group(0) @binding(7) var<storage, read_write> gz: array<u32>;  // (N, C) gradient

fn bind_all() {
    _ = z[0];
    _ = targets[0];
    _ = lse[0];
    _ = loss[0];
    _ = stats[0];
    _ = g[0];
    _ = gz[0];
}

override DT: u32 = 0u; // dtype of z (and of gz)
override WG: u32 = 256u;

fn load_z(r: u32, col: u32) -> f32 {
    let i = p.z_off + r * p.z_rs + col * p.z_cs;
    return bits_to_f32(DT, bits_in_word(DT, z[word_of(DT, i)], i));
}

// Dispatch: grid(N) workgroups.
@compute @workgroup_size(WG)
fn ce_rows(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    lane: Lane,
) {
    bind_all();
    let li = lane.index;
    let r = wg.x + wg.y * nwg.x;
    if r >= p.n {
        return;
    }
    let t = bitcast<i32>(targets[r]);
    if t == p.ignore_index {
        if li == 0u {
            lse[r] = 0.0;
            loss[r] = 0.0;
        }
        return;
    }
    var m = neg_inf_f32();
    for (var col = li; col < p.c; col += WG) {
        m = max(m, load_z(r, col));
    }
    m = wg_max(lane, m);
    var s = 0.0;
    for (var col = li; col < p.c; col += WG) {
        s += exp_f32(load_z(r, col) - m);
    }
    s = wg_sum(lane, s);
    if li == 0u {
        let l = m + ln_f32(s);
        lse[r] = l;
        loss[r] = l - load_z(r, u32(t));
    }
}

// Dispatch: (1, 1, 1).
@compute @workgroup_size(WG)
fn ce_finalize(lane: Lane) {
    bind_all();
    let li = lane.index;
    var s = 0.0;
    var cnt = 0.0;
    for (var r = li; r < p.n; r += WG) {
        if bitcast<i32>(targets[r]) != p.ignore_index {
            s += loss[r];
            cnt += 1.0;
        }
    }
    let sums = wg_sum2(lane, vec2<f32>(s, cnt));
    if li == 0u {
        let total = sums.x;
        let count = sums.y;
        stats[0] = total / count;
        stats[1] = max(count, 1.0);
    }
}

fn grad_at(e: u32) -> f32 {
    let r = e / p.c;
    let col = e % p.c;
    let t = bitcast<i32>(targets[r]);
    if t == p.ignore_index {
        return 0.0;
    }
    let onehot = select(0.0, 1.0, u32(t) == col);
    return (exp_f32(load_z(r, col) - lse[r]) - onehot) * (g[0] / stats[1]);
}

// Dispatch: grid(ceil(words / WG)).
@compute @workgroup_size(WG)
fn ce_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    bind_all();
    let w = linear_id(gid, nwg, WG);
    let epw = elems_per_word(DT);
    let total = p.n * p.c;
    if w * epw >= total {
        return;
    }
    var bits = vec2<u32>(0u, 0u);
    for (var e = 0u; e < epw; e++) {
        let i = w * epw + e;
        if i < total {
            bits[e] = f32_to_bits(DT, grad_at(i));
        }
    }
    gz[w] = pack_bits(DT, bits.x, bits.y);
}
