//! Per-kernel timing from timestamp queries (`GpuDevice::start_kernel_timing`, used by
//! `lamina bench --device gpu`): every dispatch between start and stop is reported once, by
//! its pipeline's label, with a plausible duration; results are unchanged by timing.
//! Skips without an adapter unless LAMINA_REQUIRE_GPU=1.

use lamina_tensor::gpu::GpuDevice;
use lamina_tensor::{DType, Device, Tensor};
use lamina_verify::backend::gpu_ordinal;
use std::time::Instant;

#[test]
fn kernel_timing_reports_each_dispatch() {
    let Some(n) = gpu_ordinal() else { return };
    let dev = GpuDevice::get(n).unwrap();
    let gpu = Device::Gpu(n);
    let a = Tensor::randn(&[96, 80], 0.0, 1.0, 1, DType::F32).unwrap().to_device(gpu).unwrap();
    let b = Tensor::randn(&[80, 72], 0.0, 1.0, 2, DType::F32).unwrap().to_device(gpu).unwrap();
    let untimed = a.matmul(&b).unwrap().to_vec::<f32>().unwrap();

    if !dev.start_kernel_timing().unwrap() {
        let why = format!("{}: no timestamp queries, so kernel timing is not tested", dev.summary().name);
        lamina_tensor::skip_or_fail("LAMINA_REQUIRE_GPU_FULL", &why);
        assert!(dev.stop_kernel_timing().unwrap().is_empty());
        return;
    }
    let wall = Instant::now();
    let mut out = a.matmul(&b).unwrap();
    for _ in 0..199 {
        out = out.exp().unwrap().neg().unwrap(); // 400 more dispatches: several batches
    }
    let times = dev.stop_kernel_timing().unwrap();
    let wall = wall.elapsed().as_secs_f64();

    assert_eq!(times.len(), 1 + 2 * 199, "one entry per dispatch: {:?}", &times[..times.len().min(5)]);
    assert!(times[0].kernel.contains("matmul"), "first kernel: {}", times[0].kernel);
    let total: f64 = times.iter().map(|t| t.seconds).sum();
    assert!(times.iter().all(|t| t.seconds.is_finite() && t.seconds >= 0.0));
    assert!(total > 0.0 && total <= wall * 1.5 + 1e-3, "kernels {total} s within {wall} s of wall time");
    // Timing off again: nothing more is recorded, and the results are the same as untimed.
    assert!(dev.stop_kernel_timing().unwrap().is_empty());
    assert_eq!(a.matmul(&b).unwrap().to_vec::<f32>().unwrap(), untimed);
}
