//! The distillation loss: a hand-worked example (numbers from
//! `scripts/reference/distill_kl_reference.py`, numpy float64 from the definition), the
//! top-k KL equal to the full KL when only one token is outside the top k, and the
//! gradient with respect to the student's logits against central finite differences of an
//! f64 implementation written here, for forward and reverse KL mixed with cross-entropy.

use lamina_tensor::{DType, Tensor};
use lamina_train::distill::{DistillLoss, Divergence, TeacherTopK};

fn ln(x: f64) -> f32 {
    x.ln() as f32
}

/// The example of the script: vocabulary 4, k 2, τ 2, teacher probabilities (0.5, 0.1,
/// 0.1, 0.3) at τ, student logits (1, 0, -1, 2), label 3.
fn example() -> (Tensor, TeacherTopK, Vec<u32>) {
    let logits = Tensor::from_vec(vec![1f32, 0.0, -1.0, 2.0], &[1, 4]).unwrap();
    let teacher = TeacherTopK { k: 2, ids: vec![0, 3], log_probs: vec![ln(0.5), ln(0.3)], log_rest: vec![ln(0.2)] };
    (logits, teacher, vec![3])
}

fn value(cfg: DistillLoss) -> f64 {
    let (logits, teacher, labels) = example();
    cfg.loss(&logits, &teacher, &labels).unwrap().to_scalar_f32().unwrap() as f64
}

#[test]
fn the_loss_is_the_hand_worked_kl() {
    let base = DistillLoss { temperature: 2.0, divergence: Divergence::Forward, kd_weight: 1.0, ce_weight: 0.0 };
    // KL = 0.5 ln(0.5/0.276004) + 0.3 ln(0.3/0.455054) + 0.2 ln(0.2/0.268941), times τ² = 4.
    let cases = [
        (base, 4.0 * 0.112870260798),
        (DistillLoss { kd_weight: 0.7, ce_weight: 0.3, ..base }, 0.448093639802),
        (DistillLoss { divergence: Divergence::Reverse, ..base }, 0.420982991249),
        (DistillLoss { kd_weight: 0.0, ce_weight: 1.0, ..base }, 0.440189698561),
    ];
    for (cfg, want) in cases {
        let got = value(cfg);
        assert!((got - want).abs() < 2e-6, "{cfg:?}: {got} against {want}");
    }
}

/// softmax in f64.
fn log_softmax(row: &[f64]) -> Vec<f64> {
    let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
    row.iter().map(|v| v - lse).collect()
}

/// The loss in f64 from its definition: both distributions at τ coarsened to the
/// teacher's k ids plus the rest, KL, scaled by τ², plus weighted cross-entropy.
fn reference(cfg: &DistillLoss, logits: &[f64], vocab: usize, t: &TeacherTopK, labels: &[u32]) -> f64 {
    let rows = labels.len();
    let tau = cfg.temperature as f64;
    let (mut kl, mut ce) = (0.0, 0.0);
    for r in 0..rows {
        let z = &logits[r * vocab..(r + 1) * vocab];
        let lq = log_softmax(&z.iter().map(|v| v / tau).collect::<Vec<_>>());
        let ids = &t.ids[r * t.k..(r + 1) * t.k];
        let mut p: Vec<f64> = t.log_probs[r * t.k..(r + 1) * t.k].iter().map(|&l| (l as f64).exp()).collect();
        let mut q: Vec<f64> = ids.iter().map(|&i| lq[i as usize].exp()).collect();
        p.push((t.log_rest[r] as f64).exp());
        q.push((0..vocab).filter(|i| !ids.contains(&(*i as u32))).map(|i| lq[i].exp()).sum());
        let (a, b) = match cfg.divergence {
            Divergence::Forward => (&p, &q),
            Divergence::Reverse => (&q, &p),
        };
        kl += a.iter().zip(b).map(|(a, b)| a * (a / b).ln()).sum::<f64>();
        ce -= log_softmax(z)[labels[r] as usize];
    }
    cfg.kd_weight as f64 * tau * tau * kl / rows as f64 + cfg.ce_weight as f64 * ce / rows as f64
}

/// A teacher's top k from seeded logits (rows, vocab) at τ, as the cache computes it.
fn teacher(rows: usize, vocab: usize, k: usize, tau: f32) -> TeacherTopK {
    let z = Tensor::randn(&[rows, vocab], 0.0, 2.0, 11, DType::F32).unwrap();
    let lp = z.scale(1.0 / tau).unwrap().log_softmax(-1).unwrap().to_vec_f32().unwrap();
    TeacherTopK::from_log_probs(&lp, vocab, k)
}

#[test]
fn with_one_token_outside_the_top_k_it_is_the_full_kl() {
    let (rows, vocab, tau) = (3, 6, 1.5f32);
    let t = teacher(rows, vocab, vocab - 1, tau);
    let z = Tensor::randn(&[rows, vocab], 0.0, 1.0, 5, DType::F32).unwrap();
    let cfg = DistillLoss { temperature: tau, divergence: Divergence::Forward, kd_weight: 1.0, ce_weight: 0.0 };
    let got = cfg.loss(&z, &t, &[0, 1, 2]).unwrap().to_scalar_f32().unwrap() as f64;
    // The full KL from the teacher's full distribution, rebuilt from the k ids and the rest.
    let zs = z.to_vec_f64().unwrap();
    let mut full = 0.0;
    for r in 0..rows {
        let mut lp = vec![t.log_rest[r] as f64; vocab];
        for j in 0..t.k {
            lp[t.ids[r * t.k + j] as usize] = t.log_probs[r * t.k + j] as f64;
        }
        let lq = log_softmax(&zs[r * vocab..(r + 1) * vocab].iter().map(|v| v / tau as f64).collect::<Vec<_>>());
        full += (0..vocab).map(|i| lp[i].exp() * (lp[i] - lq[i])).sum::<f64>();
    }
    let want = (tau as f64).powi(2) * full / rows as f64;
    assert!((got - want).abs() < 1e-5 * want.max(1.0), "{got} against {want}");
}

#[test]
fn gradients_match_finite_differences_of_the_f64_reference() {
    let (rows, vocab, k) = (3, 9, 3);
    let labels = [4u32, 0, 8];
    for divergence in [Divergence::Forward, Divergence::Reverse] {
        for (tau, kd, ce) in [(1.0f32, 1.0f32, 0.0f32), (2.5, 0.6, 0.4)] {
            let cfg = DistillLoss { temperature: tau, divergence, kd_weight: kd, ce_weight: ce };
            let t = teacher(rows, vocab, k, tau);
            let z = Tensor::randn(&[rows, vocab], 0.0, 1.5, 3, DType::F32).unwrap().requires_grad_();
            let loss = cfg.loss(&z, &t, &labels).unwrap();
            loss.backward().unwrap();
            let grad = z.grad().unwrap().to_vec_f64().unwrap();
            let z64 = z.to_vec_f64().unwrap();
            let f0 = reference(&cfg, &z64, vocab, &t, &labels);
            let got = loss.to_scalar_f32().unwrap() as f64;
            assert!((got - f0).abs() < 1e-5 * f0.abs().max(1.0), "{cfg:?}: loss {got} against {f0}");
            let h = 1e-5;
            for i in 0..z64.len() {
                let mut zp = z64.clone();
                zp[i] += h;
                let mut zm = z64.clone();
                zm[i] -= h;
                let fd =
                    (reference(&cfg, &zp, vocab, &t, &labels) - reference(&cfg, &zm, vocab, &t, &labels)) / (2.0 * h);
                assert!((grad[i] - fd).abs() < 1e-4 + 1e-3 * fd.abs(), "{cfg:?}: d/dz[{i}] {} against {fd}", grad[i]);
            }
        }
    }
}

#[test]
fn bad_shapes_and_ids_are_errors() {
    let (logits, mut teacher, labels) = example();
    let cfg = DistillLoss { temperature: 1.0, divergence: Divergence::Forward, kd_weight: 1.0, ce_weight: 0.0 };
    assert!(cfg.loss(&logits, &teacher, &[]).is_err());
    teacher.ids[1] = 4;
    let err = cfg.loss(&logits, &teacher, &labels).unwrap_err().to_string();
    assert!(err.contains("vocabulary"), "{err}");
    let flat = Tensor::from_vec(vec![1f32, 2.0], &[2]).unwrap();
    assert!(cfg.loss(&flat, &example().1, &labels).is_err());
}

/// The same loss and gradient on a GPU as on the CPU (lavapipe in CI).
#[test]
fn the_gpu_gives_the_cpus_loss_and_gradient() {
    let Some(gpu) = lamina_testkit::gpu() else { return };
    let (rows, vocab, k) = (4, 37, 5);
    let labels = [1u32, 36, 0, 9];
    let t = teacher(rows, vocab, k, 1.5);
    let z = Tensor::randn(&[rows, vocab], 0.0, 2.0, 8, DType::F32).unwrap();
    for divergence in [Divergence::Forward, Divergence::Reverse] {
        let cfg = DistillLoss { temperature: 1.5, divergence, kd_weight: 0.8, ce_weight: 0.2 };
        let run = |z: Tensor| {
            let z = z.requires_grad_();
            let loss = cfg.loss(&z, &t, &labels).unwrap();
            loss.backward().unwrap();
            (loss.to_scalar_f32().unwrap(), z.grad().unwrap().to_vec_f32().unwrap())
        };
        let (l_cpu, g_cpu) = run(z.clone());
        let (l_gpu, g_gpu) = run(z.to_device(gpu).unwrap());
        assert!((l_cpu - l_gpu).abs() < 1e-5 * l_cpu.abs().max(1.0), "{divergence:?}: {l_cpu} against {l_gpu}");
        for (i, (a, b)) in g_cpu.iter().zip(&g_gpu).enumerate() {
            assert!((a - b).abs() < 1e-5, "{divergence:?}: d/dz[{i}] {a} on the CPU, {b} on the GPU");
        }
    }
}
