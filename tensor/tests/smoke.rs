use lamina_tensor::{DType, Tensor};

#[test]
fn matmul_and_backward() {
    let a = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], &[2, 3]).unwrap().requires_grad_();
    let b = Tensor::from_vec(vec![1f32, 0., 0., 1., 1., 1.], &[3, 2]).unwrap().requires_grad_();
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.to_vec::<f32>().unwrap(), vec![4., 5., 10., 11.]);
    let loss = c.sum_all().unwrap();
    loss.backward().unwrap();
    assert_eq!(a.grad().unwrap().to_vec::<f32>().unwrap(), vec![1., 1., 2., 1., 1., 2.]);
    assert_eq!(b.grad().unwrap().to_vec::<f32>().unwrap(), vec![5., 5., 7., 7., 9., 9.]);
    let x = Tensor::randn(&[4, 7], 0.0, 1.0, 1, DType::F32).unwrap();
    let s = x.softmax(-1).unwrap().sum(&[-1], false).unwrap().to_vec::<f32>().unwrap();
    assert!(s.iter().all(|v| (v - 1.0).abs() < 1e-5));
}
