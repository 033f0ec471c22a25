// workgroup_reduce.wgsl: workgroup-wide reductions through workgroup memory (a tree).
// The fallback for adapters without subgroup operations; subgroup_reduce.wgsl offers the
// same functions built on subgroupAdd / subgroupMax. The host composes one or the other
// into shaders that combine values across a workgroup (`Shader::row_reduce`), after
// common.wgsl: see tensor/src/gpu/pipeline.rs.
//
// Contract, shared by both files:
// - The including shader declares `override WG: u32`, its (1-D) workgroup size, a power
//   of two of at most 256, and its entry points take a `lane: Lane` parameter.
// - `wg_sum`, `wg_sum2`, `wg_max`, `wg_min` are called by every invocation of the
//   workgroup in uniform control flow; each returns the workgroup's result to every
//   invocation and may be called again right away (they begin with a barrier).
// - max / min propagate NaN: any NaN operand gives NaN.
// - The order of additions is fixed for a given adapter and workgroup size, so results
//   repeat bit for bit from run to run.

struct Lane {
    @builtin(local_invocation_index) index: u32,
}

var<workgroup> wg_red: array<vec2<f32>, WG>;

fn wg_sum2(lane: Lane, v: vec2<f32>) -> vec2<f32> {
    let li = lane.index;
    workgroupBarrier(); // everyone has read the previous result
    wg_red[li] = v;
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if li < s {
            wg_red[li] = wg_red[li] + wg_red[li + s];
        }
    }
    workgroupBarrier();
    return wg_red[0];
}

fn wg_sum(lane: Lane, v: f32) -> f32 {
    return wg_sum2(lane, vec2<f32>(v, 0.0)).x;
}

// Extremum with NaN propagation: `take_max` picks max, else min.
fn wg_extremum(lane: Lane, v: f32, take_max: bool) -> f32 {
    let li = lane.index;
    workgroupBarrier();
    wg_red[li] = vec2<f32>(v, 0.0);
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if li < s {
            let a = wg_red[li].x;
            let b = wg_red[li + s].x;
            var r = select(min(a, b), max(a, b), take_max);
            if is_nan(a) || is_nan(b) {
                r = nan_f32();
            }
            wg_red[li].x = r;
        }
    }
    workgroupBarrier();
    return wg_red[0].x;
}

fn wg_max(lane: Lane, v: f32) -> f32 {
    return wg_extremum(lane, v, true);
}

fn wg_min(lane: Lane, v: f32) -> f32 {
    return wg_extremum(lane, v, false);
}
