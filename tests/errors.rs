//! Bad input gets a clear error naming the op and what was wrong — never a panic, and never
//! an attempt to allocate more memory than exists.

use lamina_tensor::{scaled_dot_product_attention, set_threads, DType, Device, Error, Tensor};

fn t(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape, DType::F32).unwrap()
}

fn ids(v: &[i32]) -> Tensor {
    Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap()
}

#[test]
fn shape_errors_name_the_op_and_shapes() {
    let e = t(&[2, 3]).add(&t(&[4])).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { op: "binary", .. }), "{e}");
    assert!(e.to_string().contains("[2, 3]") && e.to_string().contains("[4]"), "{e}");
    assert!(matches!(t(&[2, 3]).matmul(&t(&[4, 5])).unwrap_err(), Error::ShapeMismatch { op: "matmul", .. }));
    assert!(t(&[3]).matmul(&t(&[3, 1])).is_err());
    assert!(t(&[6]).reshape(&[4, 2]).is_err());
    assert!(Tensor::from_vec(vec![1f32; 5], &[2, 3]).is_err());
    assert!(Tensor::cat(&[&t(&[2, 3]), &t(&[3, 3])], 1).is_err());
    assert!(Tensor::cat(&[], 0).is_err());
    assert!(t(&[2, 4]).rope(&t(&[2, 1]), &t(&[2, 2]), lamina_tensor::RopeConvention::Interleaved).is_err());
    assert!(t(&[2, 3]).layer_norm(Some(&t(&[4])), None, 1e-5).is_err());
    let (q, k) = (t(&[1, 3, 4, 8]), t(&[1, 2, 4, 8])); // 3 query heads cannot share 2 kv heads
    assert!(scaled_dot_product_attention(&q, &k, &k, None, true, None).is_err());
    let (q, k) = (t(&[1, 2, 5, 8]), t(&[1, 2, 4, 8])); // causal with more queries than keys
    assert!(scaled_dot_product_attention(&q, &k, &k, None, true, None).is_err());
}

#[test]
fn axis_dtype_and_index_errors() {
    assert!(matches!(t(&[2, 3]).sum(&[2], false).unwrap_err(), Error::BadAxis { axis: 2, rank: 2, .. }));
    assert!(matches!(t(&[2, 3]).softmax(-3).unwrap_err(), Error::BadAxis { .. }));
    assert!(t(&[2, 3]).narrow(1, 2, 2).is_err());
    assert!(t(&[2, 3]).permute(&[0, 0]).is_err());
    let h = Tensor::zeros(&[2, 3], DType::F16).unwrap();
    assert!(matches!(t(&[2, 3]).add(&h).unwrap_err(), Error::DTypeMismatch { op: "binary", .. }));
    assert!(matches!(ids(&[1, 2]).exp().unwrap_err(), Error::UnsupportedDType { .. }));
    let e = t(&[4, 3]).index_select(0, &ids(&[0, 4])).unwrap_err();
    assert!(matches!(e, Error::IndexOutOfRange { index: 4, size: 4, .. }), "{e}");
    assert!(t(&[4, 3]).index_select(0, &ids(&[-1])).is_err());
    assert!(t(&[4, 3]).index_select(0, &t(&[2])).is_err(), "float ids are refused");
    assert!(t(&[2, 5]).cross_entropy(&ids(&[0, 5]), -100).is_err());
    assert!(t(&[2, 5]).dropout(1.0, 0).is_err());
    assert!(t(&[2]).backward().is_err(), "no graph");
    assert!("tpu".parse::<Device>().is_err());
    assert_eq!("gpu:1".parse::<Device>().unwrap(), Device::Gpu(1));
}

#[test]
fn absurd_sizes_are_errors_not_aborts() {
    assert!(Tensor::zeros(&[usize::MAX, 2], DType::F32).is_err(), "element count overflows");
    assert!(Tensor::zeros(&[1 << 40, 1 << 20], DType::F32).is_err(), "2^60 elements");
    assert!(Tensor::randn(&[1 << 62], 0.0, 1.0, 0, DType::F32).is_err());
    assert!(Tensor::arange(0.0, 1e30, 1.0, DType::F32).is_err());
    // A broadcast to a huge shape is a view; materialising it must fail cleanly.
    let big = t(&[1, 1]).broadcast_to(&[1 << 31, 1 << 31]).unwrap();
    assert!(big.add(&t(&[1])).is_err());
}

#[test]
fn random_values_do_not_depend_on_thread_count() {
    set_threads(1).unwrap();
    let one = Tensor::randn(&[1000, 37], 0.0, 1.0, 42, DType::F32).unwrap().to_vec::<f32>().unwrap();
    let u1 = Tensor::rand_uniform(&[5001], -1.0, 1.0, 7, DType::F32).unwrap().to_vec::<f32>().unwrap();
    set_threads(2).unwrap();
    let two = Tensor::randn(&[1000, 37], 0.0, 1.0, 42, DType::F32).unwrap().to_vec::<f32>().unwrap();
    let u2 = Tensor::rand_uniform(&[5001], -1.0, 1.0, 7, DType::F32).unwrap().to_vec::<f32>().unwrap();
    set_threads(0).unwrap();
    assert_eq!(one, two);
    assert_eq!(u1, u2);
    let mean = one.iter().map(|&x| x as f64).sum::<f64>() / one.len() as f64;
    let var = one.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / one.len() as f64;
    assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean} var {var}");
    assert!(u1.iter().all(|&x| (-1.0..1.0).contains(&x)));
}
