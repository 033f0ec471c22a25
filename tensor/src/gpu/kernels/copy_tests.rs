//! GPU copies and casts against `CpuStorage::copy_contiguous` / `cast`: strided, offset and
//! broadcast views of every dtype, every dtype pair, and the values where casts differ
//! (NaN, infinities, out-of-range, fractions, ties, subnormals).

use super::*;
use crate::gpu::testing::{data, device};
use crate::gpu::GpuStorage;
use crate::storage::CpuStorage;

/// Bit-exact comparison (NaN payloads included, except that any NaN matches any NaN).
fn assert_same(what: &str, got: &CpuStorage, want: &CpuStorage) {
    let bits = |s: &CpuStorage| -> Vec<(u32, bool)> {
        match s {
            CpuStorage::F32(v) => v.iter().map(|x| (x.to_bits(), x.is_nan())).collect(),
            CpuStorage::F16(v) => v.iter().map(|x| (x.to_bits() as u32, x.is_nan())).collect(),
            CpuStorage::BF16(v) => v.iter().map(|x| (x.to_bits() as u32, x.is_nan())).collect(),
            CpuStorage::I32(v) => v.iter().map(|&x| (x as u32, false)).collect(),
            CpuStorage::U32(v) => v.iter().map(|&x| (x, false)).collect(),
        }
    };
    assert_eq!(got.dtype(), want.dtype(), "{what}");
    let (g, w) = (bits(got), bits(want));
    assert_eq!(g.len(), w.len(), "{what}");
    let bad: Vec<String> = g
        .iter()
        .zip(&w)
        .enumerate()
        .filter(|(_, (a, b))| !(a.0 == b.0 || (a.1 && b.1)))
        .map(|(i, (a, b))| format!("[{i}] gpu {:#x} cpu {:#x}", a.0, b.0))
        .take(8)
        .collect();
    assert!(bad.is_empty(), "{what}: {}", bad.join(", "));
}

/// Values where conversions disagree if done carelessly.
fn cast_inputs() -> Vec<f32> {
    let mut v = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        2.5,
        -2.5,
        0.99999994,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        65504.0,
        65519.0,
        65520.0,
        1e5,
        -1e5,
        6e-8,
        3e-8,
        2.98e-8,
        1e-40,
        -1e-45,
        1.000_488_3,
        1.000_976_6,
        1.001_464_8,
        3e9,
        -3e9,
        5e9,
        2147483520.0,
        2147483648.0,
        -2147483648.0,
        4294967040.0,
        4294967296.0,
        16777217.0,
        3.3895314e38,
    ];
    v.extend(data(63, 21, -70000.0, 70000.0));
    v.extend(data(40, 22, -1.0, 1.0).iter().map(|x| x * 1e-5));
    v
}

#[test]
fn casts_between_every_dtype_pair_match_cpu() {
    let Some(dev) = device() else { return };
    let xs = cast_inputs();
    let n = xs.len();
    let mut ints: Vec<i32> = vec![0, 1, -1, i32::MAX, i32::MIN, 16777217, -16777219, 65519, 65521, 1 << 30];
    ints.extend(data(n - ints.len(), 23, -3e9, 3e9).iter().map(|&x| x as i32));
    for src in DType::ALL {
        let cs = match src {
            DType::I32 => CpuStorage::I32(ints.clone()),
            DType::U32 => CpuStorage::U32(ints.iter().map(|&x| x as u32).collect()),
            d => CpuStorage::from_f32(d, xs.clone()),
        };
        let gs = GpuStorage::from_cpu(&cs, &dev).unwrap();
        // A contiguous view and a strided one with an odd offset.
        let views = [Layout::contiguous(&[n]), Layout::new(vec![(n - 1) / 3], vec![3], 1)];
        for l in &views {
            for dst in DType::ALL {
                let want = cs.cast(l, dst);
                let got = cast(&gs, l, dst).unwrap().to_cpu().unwrap();
                assert_same(&format!("{src} -> {dst} strides {:?}", l.strides()), &got, &want);
            }
        }
    }
}

#[test]
fn copy_contiguous_of_views_matches_cpu() {
    let Some(dev) = device() else { return };
    let base = data(2 * 3 * 5 * 7, 31, -10.0, 10.0);
    let views = [
        Layout::contiguous(&[2, 3, 5, 7]),
        Layout::contiguous(&[2, 3, 5, 7]).permute(&[3, 1, 0, 2]).unwrap(),
        Layout::contiguous(&[2, 3, 5, 7]).narrow(3, 1, 5).unwrap().narrow(1, 1, 2).unwrap(),
        // Offset contiguous (the buffer-copy path when it starts on a word, else the shader).
        Layout::contiguous(&[210]).narrow(0, 1, 100).unwrap(),
        Layout::contiguous(&[210]).narrow(0, 2, 101).unwrap(),
        Layout::contiguous(&[7]).broadcast_to(&[4, 3, 7]).unwrap(),
        Layout::contiguous(&[0, 3]),
    ];
    for dtype in DType::ALL {
        let cs = CpuStorage::from_f32(dtype, base.clone());
        let gs = GpuStorage::from_cpu(&cs, &dev).unwrap();
        for l in &views {
            let got = copy_contiguous(&gs, l).unwrap().to_cpu().unwrap();
            assert_same(
                &format!("{dtype} {:?}/{:?}+{}", l.shape(), l.strides(), l.offset()),
                &got,
                &cs.copy_contiguous(l),
            );
        }
    }
}

#[test]
fn round_trips_and_size_limit() {
    let Some(dev) = device() else { return };
    for dtype in DType::ALL {
        for n in [0usize, 1, 2, 3, 257] {
            let cs = CpuStorage::from_f32(dtype, data(n, 41, -100.0, 100.0));
            let back = GpuStorage::from_cpu(&cs, &dev).unwrap().to_cpu().unwrap();
            assert_same(&format!("round trip {dtype} x{n}"), &back, &cs);
            let z = GpuStorage::zeros(&dev, dtype, n).unwrap().to_cpu().unwrap();
            assert_same(&format!("zeros {dtype} x{n}"), &z, &CpuStorage::zeros(dtype, n).unwrap());
        }
    }
    // A tensor over the binding limit is refused cleanly.
    let too_big = dev.summary().max_storage_buffer_binding_size as usize / 4 + 1;
    assert!(GpuStorage::alloc(&dev, DType::F32, too_big).is_err());
}
