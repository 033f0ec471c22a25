// subgroup_reduce.wgsl: workgroup-wide reductions built on subgroup operations.
// Same functions and contract as workgroup_reduce.wgsl (read that file's header); the host
// composes this one instead when the adapter has the SUBGROUP feature and its smallest
// subgroup is at least 4 wide (so at most 64 subgroups per 256-invocation workgroup).
//
// Each subgroup combines its values in registers (subgroupAdd / subgroupMax / subgroupMin:
// no workgroup memory, no barriers) and its first lane writes the partial to `wg_part`.
// After one barrier every subgroup combines the partials the same way: lane l takes
// partials l, l + size, ... and a second subgroup operation joins the lanes. So every
// invocation gets the same bits, with ceil(subgroups / size) workgroup loads each, where
// the tree in workgroup_reduce.wgsl takes log2(WG) barrier-separated steps.

struct Lane {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_size) sg_size: u32,
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
    var t = vec2<f32>(0.0);
    for (var i = lane.sg_lane; i < lane.sg_count; i += lane.sg_size) {
        t += wg_part[i];
    }
    return subgroupAdd(t);
}

fn wg_sum(lane: Lane, v: f32) -> f32 {
    return wg_sum2(lane, vec2<f32>(v, 0.0)).x;
}

// Extremum with NaN propagation: `take_max` picks max, else min. NaNs are counted in .y
// (subgroupMax/Min leave NaN handling to the implementation); both subgroup operations run
// and a select picks one, so none sits under a branch.
fn wg_extremum(lane: Lane, v: f32, take_max: bool) -> f32 {
    let m = select(subgroupMin(v), subgroupMax(v), take_max);
    let nans = subgroupAdd(select(0.0, 1.0, is_nan(v)));
    workgroupBarrier();
    if lane.sg_lane == 0u {
        wg_part[lane.sg_id] = vec2<f32>(m, nans);
    }
    workgroupBarrier();
    var r = vec2<f32>(select(inf_f32(), neg_inf_f32(), take_max), 0.0);
    for (var i = lane.sg_lane; i < lane.sg_count; i += lane.sg_size) {
        let q = wg_part[i];
        r = vec2<f32>(select(min(r.x, q.x), max(r.x, q.x), take_max), r.y + q.y);
    }
    let total = select(subgroupMin(r.x), subgroupMax(r.x), take_max);
    return select(total, nan_f32(), subgroupAdd(r.y) > 0.0);
}

fn wg_max(lane: Lane, v: f32) -> f32 {
    return wg_extremum(lane, v, true);
}

fn wg_min(lane: Lane, v: f32) -> f32 {
    return wg_extremum(lane, v, false);
}
