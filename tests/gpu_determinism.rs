//! Two runs on the same adapter give bit-identical results: the GPU kernels use no float
//! atomics and every reduction (sums, softmax rows, matmul k-loops, weight-gradient
//! column sums, scatter-adds) runs in a fixed order, so no flag is needed for this. With
//! subgroup reductions (the default where the adapter has them, as lavapipe does) the order
//! inside a subgroup is the driver's, fixed for a compiled pipeline; this test checks that
//! too. `LAMINA_GPU_DETERMINISTIC=1` pins every order to the WGSL source instead.
//! Skips without an adapter unless LAMINA_REQUIRE_GPU=1.

use lamina_tensor::{scaled_dot_product_attention, DType, Device, Tensor};
use lamina_verify::backend::gpu_ordinal;

fn run(device: Device) -> Vec<Vec<u32>> {
    let randn =
        |shape: &[usize], seed| Tensor::randn(shape, 0.0, 1.0, seed, DType::F32).unwrap().to_device(device).unwrap();
    let bits = |t: Tensor| t.to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let a = randn(&[517, 65], 1);
    let b = randn(&[65, 33], 2);
    let x = randn(&[7, 3001], 3).requires_grad_();
    let w = randn(&[3001], 4).requires_grad_();
    let q = randn(&[2, 4, 37, 16], 5);
    let k = randn(&[2, 2, 37, 16], 6);
    let ids = Tensor::from_vec((0..200i32).map(|i| i * 7 % 5).collect::<Vec<_>>(), &[200]).unwrap();
    let src = randn(&[200, 9], 7);
    let y = x.layer_norm(Some(&w), None, 1e-5).unwrap();
    y.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    vec![
        bits(a.matmul(&b).unwrap()),
        bits(x.sum(&[-1], false).unwrap()),
        bits(x.softmax(-1).unwrap()),
        bits(scaled_dot_product_attention(&q, &k, &k, None, true, None).unwrap()),
        bits(randn(&[5, 9], 8).index_add(0, &ids, &src).unwrap()),
        bits(x.grad().unwrap()),
        bits(w.grad().unwrap()),
    ]
}

#[test]
fn gpu_results_are_bit_identical_across_runs() {
    let Some(n) = gpu_ordinal() else { return };
    let first = run(Device::Gpu(n));
    let second = run(Device::Gpu(n));
    for (i, (a, b)) in first.iter().zip(&second).enumerate() {
        assert!(a == b, "result {i} differs between two runs on the same adapter");
    }
}
