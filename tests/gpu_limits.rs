//! Tensors against the adapter's storage-binding limit: one element over it is refused with
//! an error that names the limit (never silently wrong); exactly at it works, when the
//! limit is small enough to test here (lavapipe: 128 MiB). Skips without an adapter
//! unless LAMINA_REQUIRE_GPU=1.

use lamina_tensor::gpu::GpuDevice;
use lamina_tensor::{DType, Device, Tensor};
use lamina_verify::backend::gpu_ordinal;

#[test]
fn tensors_crossing_the_binding_limit_are_refused_cleanly() {
    let Some(n) = gpu_ordinal() else { return };
    let limit = GpuDevice::get(n).unwrap().summary().max_storage_buffer_binding_size;
    let at_limit = (limit / 4) as usize; // f32 elements that exactly fill one binding
    if limit > 512 << 20 {
        let why = format!("binding limit {limit} bytes: too large to fill in a test, so only its refusal is checked");
        lamina_tensor::skip_or_fail("LAMINA_REQUIRE_GPU_FULL", &why);
    }
    // One element over: f16 packs two per word, so use f32 for an exact edge. A broadcast
    // view costs no host memory; materialising it on the GPU must fail with a clear error.
    let over = Tensor::zeros(&[1], DType::F32).unwrap().broadcast_to(&[at_limit + 1]).unwrap();
    let err = over.to_device(Device::Gpu(n)).unwrap_err().to_string();
    assert!(err.contains("max_storage_buffer_binding_size"), "{err}");
    if limit <= 512 << 20 {
        let fits = Tensor::ones(&[at_limit], DType::F32).unwrap().to_device(Device::Gpu(n)).unwrap();
        let total = fits.sum_all().unwrap().to_scalar_f32().unwrap();
        assert_eq!(total, at_limit as f32, "sum of {at_limit} ones");
    }
}
