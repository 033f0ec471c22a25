//! The fine-tuning loop on a tiny random LLaMA: LoRA learns a fixed sequence; an
//! interrupted run resumed from its checkpoint takes exactly the steps of an
//! uninterrupted one; the exported PEFT adapter loads back with the same outputs; a
//! poisoned loss stops the run with a clear error; early stopping fires by patience.

use lamina_model::lora::{LoraConfig, Target};
use lamina_model::{Llama, LlamaConfig};
use lamina_tensor::{Device, RopeConvention, Tensor};
use lamina_train::finetune::{finetune, BatchSource, FineTuneConfig, LlamaLora, OptimizerKind, TrainBatch, Trainee};
use lamina_train::{AdamWConfig, Decay, LrSchedule, TrainError};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn config() -> LlamaConfig {
    LlamaConfig {
        arch: "llama".into(),
        vocab_size: 32,
        dim: 16,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 4,
        ffn_dim: 24,
        norm_eps: 1e-5,
        rope_base: 10000.0,
        rope_convention: RopeConvention::Interleaved,
        context_length: 64,
        qkv_bias: false,
        ..Default::default()
    }
}

/// Cycles through a fixed list of sequences, two per batch.
struct Cycle {
    rows: Vec<Vec<u32>>,
    next: usize,
}

impl Cycle {
    fn new() -> Cycle {
        let rows = (0..6).map(|r| (0..9).map(|i| ((r * 5 + i * 3) % 32) as u32).collect()).collect();
        Cycle { rows, next: 0 }
    }
}

impl BatchSource for Cycle {
    fn next_batch(&mut self) -> TrainBatch {
        let mut tokens = Vec::new();
        let mut labels = Vec::new();
        for _ in 0..2 {
            let r = &self.rows[self.next % self.rows.len()];
            self.next += 1;
            tokens.extend_from_slice(&r[..8]);
            labels.extend(r[1..].iter().map(|&t| t as i32));
        }
        TrainBatch { batch: 2, seq: 8, tokens, labels }
    }
    fn position(&self) -> Value {
        json!({ "next": self.next })
    }
    fn restore(&mut self, p: &Value) -> Result<(), String> {
        self.next = p["next"].as_u64().ok_or("bad position")? as usize;
        Ok(())
    }
    fn epoch(&self) -> f64 {
        self.next as f64 / self.rows.len() as f64
    }
}

fn model() -> (Llama, LoraConfig) {
    let mut m = Llama::random(config(), true, 0.3, 1, Device::Cpu).unwrap();
    let cfg = LoraConfig { rank: 4, alpha: 8.0, dropout: 0.1, rslora: false, targets: Target::LLAMA.to_vec() };
    m.attach_lora(&cfg, 2).unwrap();
    (m, cfg)
}

fn run_cfg(dir: &Path, steps: usize, resume: bool) -> FineTuneConfig {
    FineTuneConfig {
        steps,
        schedule: LrSchedule { decay: Decay::Cosine, max_lr: 3e-2, min_lr: 3e-3, warmup: 2, total: 12 },
        optimizer: OptimizerKind::AdamW(AdamWConfig { weight_decay: 0.0, ..Default::default() }),
        accum: 2,
        clip: Some(1.0),
        eval_every: 4,
        patience: None,
        save_every: 3,
        keep_checkpoints: 2,
        seed: 9,
        out_dir: dir.to_path_buf(),
        resume,
        progress_bar: false,
        run: Default::default(),
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-ft-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn val() -> Vec<TrainBatch> {
    let mut c = Cycle::new();
    vec![c.next_batch(), c.next_batch(), c.next_batch()]
}

fn params(m: &Llama) -> Vec<Vec<f32>> {
    m.lora_parameters().iter().map(|(_, t)| t.to_vec::<f32>().unwrap()).collect()
}

#[test]
fn lora_learns_and_a_resumed_run_equals_an_uninterrupted_one() {
    let whole = tmp("whole");
    let (m, cfg) = model();
    let trainee = LlamaLora { model: &m, config: cfg.clone(), base_name: "tiny".into() };
    let full = finetune(&trainee, &mut Cycle::new(), &val(), &run_cfg(&whole, 12, false)).unwrap();
    assert_eq!(full.losses.len(), 12);
    let (first, last) = (full.losses[0], full.losses[11]);
    assert!(last < 0.7 * first, "LoRA should fit the cycle: loss {first} -> {last}");
    assert_eq!(full.val_history.iter().map(|v| v.0).collect::<Vec<_>>(), vec![4, 8, 12]);

    // Interrupted after step 6 (a checkpoint at 6), then resumed to 12 by a new process.
    let split = tmp("split");
    let (m1, _) = model();
    let t1 = LlamaLora { model: &m1, config: cfg.clone(), base_name: "tiny".into() };
    finetune(&t1, &mut Cycle::new(), &val(), &run_cfg(&split, 6, false)).unwrap();
    let (m2, _) = model(); // fresh weights: everything must come from the checkpoint
    let t2 = LlamaLora { model: &m2, config: cfg.clone(), base_name: "tiny".into() };
    let resumed = finetune(&t2, &mut Cycle::new(), &val(), &run_cfg(&split, 12, true)).unwrap();
    assert_eq!(resumed.resumed_from, Some(6));
    assert_eq!(resumed.losses, full.losses[6..].to_vec(), "resumed losses differ from the uninterrupted run");
    assert_eq!(params(&m2), params(&m), "resumed weights differ");
    // The metrics log reads as one run of 12 steps.
    let log = std::fs::read_to_string(split.join("metrics.jsonl")).unwrap();
    let steps: Vec<u64> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=12).collect::<Vec<_>>());
    // Only the newest two checkpoints are kept.
    let kept = lamina_train::finetune::checkpoint::list(&split);
    assert_eq!(kept.iter().map(|k| k.0).collect::<Vec<_>>(), vec![9, 12]);

    // The exported adapter loads back onto a fresh base with the same outputs.
    let mut fresh = Llama::random(config(), true, 0.3, 1, Device::Cpu).unwrap();
    fresh.load_lora(&whole.join("final"), false).unwrap();
    let tokens: Vec<u32> = (0..8).collect();
    let a = m.forward_train(&tokens, 1, None).unwrap().to_vec::<f32>().unwrap();
    let b = fresh.forward_train(&tokens, 1, None).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(a, b);
    for d in [whole, split] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn a_nan_loss_stops_the_run_with_a_clear_error() {
    let dir = tmp("nan");
    let (m, cfg) = model();
    let (_, a) = &m.lora_parameters()[0];
    a.assign(&Tensor::full(a.shape(), f32::NAN, a.dtype()).unwrap()).unwrap();
    let t = LlamaLora { model: &m, config: cfg, base_name: "tiny".into() };
    let err = finetune(&t, &mut Cycle::new(), &[], &run_cfg(&dir, 3, false)).map(|_| ()).unwrap_err();
    assert!(matches!(err, TrainError::Diverged { step: 0, .. }), "{err}");
    assert!(err.to_string().contains("lower learning rate"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Early stopping by patience, not by divergence: with a learning rate of zero the weights
/// never change, so the validation loss is the same at every evaluation and none after the
/// first is an improvement. Evaluating every step with patience 2: best at step 1, no
/// better at steps 2 and 3, stop at step 3 (a checkpoint and `best/` written).
#[test]
fn early_stopping_by_patience() {
    let dir = tmp("early");
    let (m, cfg) = model();
    let t = LlamaLora { model: &m, config: cfg, base_name: "tiny".into() };
    let mut c = run_cfg(&dir, 40, false);
    c.schedule = LrSchedule { decay: Decay::Constant, max_lr: 0.0, min_lr: 0.0, warmup: 0, total: 40 };
    c.eval_every = 1;
    c.patience = Some(2);
    let r = finetune(&t, &mut Cycle::new(), &val(), &c).unwrap();
    assert!(r.stopped_early, "{r:?}");
    assert_eq!(r.steps, 3, "{r:?}");
    assert_eq!(r.val_history.iter().map(|&(s, _)| s).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(r.val_history.iter().all(|&(_, v)| v == r.val_history[0].1), "{:?}", r.val_history);
    assert_eq!(r.best_val, Some(r.val_history[0]));
    assert!(dir.join("best").join("adapter_config.json").exists());
    assert!(dir.join("checkpoint-3").is_dir(), "the stopping step is checkpointed");
    std::fs::remove_dir_all(dir).unwrap();
    let _ = Trainee::parameters(&t);
}
