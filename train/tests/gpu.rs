//! The from-scratch training run on the GPU backend: the same model, data and seed as on
//! the CPU, with every forward, backward and AdamW kernel in WGSL. Skips when no GPU
//! adapter exists, unless LAMINA_REQUIRE_GPU=1 (CI, on lavapipe) makes that a failure.

use lamina_model::GptConfig;
use lamina_tensor::Device;
use lamina_testkit::gpu;
use lamina_train::{data::SHIPPED_CORPUS, retain_freed_memory, train_char_gpt, Progress, TrainConfig};
use std::time::Instant;

fn config(steps: usize, device: Device) -> TrainConfig {
    TrainConfig {
        model: GptConfig { vocab: 0, ctx: 32, n_layer: 2, n_head: 4, n_embd: 64, dropout: 0.0 },
        batch: 32,
        steps,
        max_lr: 3e-3,
        min_lr: 3e-4,
        warmup: 20,
        eval_batches: 8,
        seed: 7,
        progress: Progress::Quiet,
        device,
        ..TrainConfig::default()
    }
}

/// CPU and GPU follow the same trajectory: the kernels differ only in rounding, so the
/// per-step losses agree within 1e-4 (1 + step) nats (measured on lavapipe: at most 1e-6
/// over 30 steps). The full 500-step run to the loss bound is the CPU e2e test; on
/// lavapipe it would take about 12 minutes (1.5 s a step), so CI runs these 30 steps.
#[test]
fn cpu_and_gpu_losses_agree_step_by_step() {
    retain_freed_memory();
    let Some(device) = gpu() else { return };
    let steps = 30;
    let cpu = train_char_gpt(SHIPPED_CORPUS, &config(steps, Device::Cpu)).unwrap();
    let start = Instant::now();
    let gpu = train_char_gpt(SHIPPED_CORPUS, &config(steps, device)).unwrap();
    eprintln!("gpu: {steps} steps in {:.1} s", start.elapsed().as_secs_f64());
    for (step, (c, g)) in cpu.losses.iter().zip(&gpu.losses).enumerate() {
        let tol = 1e-4 * (1 + step) as f32;
        eprintln!("step {step:2}: cpu {c:.5} gpu {g:.5} diff {:.1e}", (c - g).abs());
        assert!((c - g).abs() <= tol, "step {step}: cpu loss {c}, gpu loss {g} (tolerance {tol})");
    }
    assert!((cpu.val_loss - gpu.val_loss).abs() <= 3e-3, "val: cpu {} gpu {}", cpu.val_loss, gpu.val_loss);
}
