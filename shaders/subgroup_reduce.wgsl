// subgroup_reduce.wgsl: workgroup-wide reductions built on subgroup operations.
// Same functions and contract as workgroup_reduce.wgsl (read that file's header); the host
// composes this one instead when the adapter has the SUBGROUP feature and its smallest
// subgroup is at least 4 wide (so at most 64 subgroups per 256-invocation workgroup).
//
// Each subgroup combines its values in registers (subgroupAdd / subgroupMax / subgroupMin:
// no workgroup memory, no barriers), its first lane writes the partial to `wg_part`, and
// after one barrier every invocation adds the partials in subgroup order. That replaces
// log2(WG) barrier-separated steps through workgroup memory with two barriers.

struct Lane {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) sg_count: u32,
}

var<workgroup> wg_part: array<vec2<f32>, 64>;

fn wg_sum2(lane: Lane, v: vec2<f32>) -> vec2<f32> {
    let s = subgroupAdd(v);
    workgroupBarrier(); // everyone has read the previous partials
    if lane.sg_lane == 0u {
        wg_part[lane.sg_id] = s;
    }
    workgroupBarrier();
    var t = wg_part[0];
    for (var i = 1u; i < lane.sg_count; i++) {
        t += wg_part[i];
    }
    return t;
}

fn wg_sum(lane: Lane, v: f32) -> f32 {
    return wg_sum2(lane, vec2<f32>(v, 0.0)).x;
}

// Extremum with NaN propagation: `take_max` picks max, else min. The NaN count travels
// in .y (subgroupMax/Min leave NaN handling to the implementation).
fn wg_extremum(lane: Lane, v: f32, take_max: bool) -> f32 {
    // Both, then a select: no subgroup operation sits under a branch.
    let m = select(subgroupMin(v), subgroupMax(v), take_max);
    let nans = subgroupAdd(select(0.0, 1.0, is_nan(v)));
    workgroupBarrier();
    if lane.sg_lane == 0u {
        wg_part[lane.sg_id] = vec2<f32>(m, nans);
    }
    workgroupBarrier();
    var r = wg_part[0];
    for (var i = 1u; i < lane.sg_count; i++) {
        let q = wg_part[i];
        r = vec2<f32>(select(min(r.x, q.x), max(r.x, q.x), take_max), r.y + q.y);
    }
    return select(r.x, nan_f32(), r.y > 0.0);
}

fn wg_max(lane: Lane, v: f32) -> f32 {
    return wg_extremum(lane, v, true);
}

fn wg_min(lane: Lane, v: f32) -> f32 {
    return wg_extremum(lane, v, false);
}
