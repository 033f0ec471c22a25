//! Distillation through the fine-tuning loop on tiny LLaMAs: a student made of one of a
//! two-block teacher's blocks learns the teacher's cached distributions (the KL falls);
//! a run interrupted and resumed takes exactly the steps and ends with exactly the
//! weights of an uninterrupted one; the exported student loads and runs.

use lamina_model::gguf::GgufFile;
use lamina_model::Llama;
use lamina_tensor::Device;
use lamina_testkit::tiny_llama::{tiny_llama, Tiny};
use lamina_train::distill::{cache, student, CacheSpec, Distill, DistillLoss, Divergence, TeacherCache};
use lamina_train::finetune::{finetune, FineTuneConfig, LlamaFull, OptimizerKind, SftBatches, TrainBatch, Trainee};
use lamina_train::sft::{BatcherConfig, Encoded};
use lamina_train::{AdamWConfig, Decay, LrSchedule};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lamina-kd-loop-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Eight byte-token examples; the first three tokens of each are a prompt (not scored).
fn examples() -> Vec<Encoded> {
    (0..8u32)
        .map(|e| {
            let tokens: Vec<u32> = (0..9 + e % 4).map(|i| 97 + (e * 3 + i * 7) % 26).collect();
            let labels = (0..tokens.len())
                .map(|i| if i < 3 || i + 1 == tokens.len() { -100 } else { tokens[i + 1] as i32 })
                .collect();
            Encoded { tokens, labels }
        })
        .collect()
}

fn batches() -> SftBatches {
    SftBatches::new(examples(), BatcherConfig { batch_size: 2, seed: 3, bucket_batches: 2, pad_id: 0 }).unwrap()
}

fn run_cfg(dir: &Path, steps: usize, resume: bool) -> FineTuneConfig {
    FineTuneConfig {
        steps,
        schedule: LrSchedule { decay: Decay::Cosine, max_lr: 1e-2, min_lr: 1e-3, warmup: 1, total: 8 },
        optimizer: OptimizerKind::AdamW(AdamWConfig { weight_decay: 0.0, ..Default::default() }),
        accum: 2,
        clip: Some(1.0),
        eval_every: 4,
        patience: None,
        save_every: 4,
        keep_checkpoints: 2,
        seed: 9,
        out_dir: dir.to_path_buf(),
        resume,
        progress_bar: false,
        run: Default::default(),
    }
}

/// The teacher (two blocks), its cache, and the student file (its block 1).
struct Setup {
    dir: PathBuf,
    cache: TeacherCache,
    student: GgufFile,
}

fn setup(name: &str) -> Setup {
    let dir = tmp(name);
    let teacher_path = dir.join("teacher.gguf");
    tiny_llama(&teacher_path, &Tiny { dim: 16, ffn: 32, layers: 2, ..Tiny::default() });
    let teacher_file = GgufFile::open(&teacher_path).unwrap();
    let teacher = Llama::from_gguf(&teacher_file, Device::Cpu).unwrap();
    let ex = examples();
    let spec = CacheSpec {
        k: 8,
        temperature: 2.0,
        vocab: teacher.config.vocab_size,
        shard_examples: 3,
        teacher: "tiny".into(),
        data: cache::data_fingerprint(&ex),
        examples: ex.len(),
    };
    let cache_dir = dir.join("cache");
    let mut run = |t: &[u32], b: usize| Ok(teacher.forward_train(t, b, None)?);
    cache::build(&cache_dir, &spec, &ex, 3, &mut run, &mut |_, _| {}).unwrap();
    let layers = student::parse_layers("1", 2).unwrap();
    student::write_layer_subset(&teacher_file, &layers, &dir.join("student.gguf")).unwrap();
    let student = GgufFile::open(dir.join("student.gguf")).unwrap();
    Setup { cache: TeacherCache::open(&cache_dir, &spec).unwrap(), student, dir }
}

const LOSS: DistillLoss =
    DistillLoss { temperature: 2.0, divergence: Divergence::Forward, kd_weight: 0.9, ce_weight: 0.1 };

/// Train the student `steps` steps into `out` (resuming when asked); its weights after.
fn train(s: &Setup, out: &Path, steps: usize, resume: bool) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut model = Llama::from_gguf(&s.student, Device::Cpu).unwrap();
    assert_eq!(model.config.n_layers, 1);
    let params = model.make_trainable().unwrap();
    let full = LlamaFull { model: &model, params, source: &s.student };
    let d = Distill { student: &model, inner: &full, cache: &s.cache, loss: LOSS };
    let report = finetune(&d, &mut batches(), &[], &run_cfg(out, steps, resume)).unwrap();
    let weights = d.parameters().iter().map(|(_, t)| t.to_vec::<f32>().unwrap()).collect();
    (report.losses, weights)
}

/// The mean forward KL alone (no cross-entropy) of the student in `file` over the examples.
fn mean_kl(s: &Setup, file: &GgufFile) -> f32 {
    let model = Llama::from_gguf(file, Device::Cpu).unwrap();
    let params = vec![];
    let full = LlamaFull { model: &model, params, source: file };
    let kl = DistillLoss { kd_weight: 1.0, ce_weight: 0.0, ..LOSS };
    let d = Distill { student: &model, inner: &full, cache: &s.cache, loss: kl };
    let mut b = batches();
    let _g = lamina_tensor::NoGradGuard::new();
    let losses: Vec<f32> =
        (0..4).map(|_| d.distill_loss(&b_next(&mut b), None).unwrap().0.to_scalar_f32().unwrap()).collect();
    losses.iter().sum::<f32>() / 4.0
}

fn b_next(b: &mut SftBatches) -> TrainBatch {
    lamina_train::finetune::BatchSource::next_batch(b)
}

#[test]
fn a_student_learns_and_a_resumed_run_equals_an_uninterrupted_one() {
    let s = setup("resume");
    let whole = s.dir.join("whole");
    let (losses, weights) = train(&s, &whole, 8, false);
    assert_eq!(losses.len(), 8);
    let before = mean_kl(&s, &s.student);
    let trained = GgufFile::open(whole.join("final/model.gguf")).unwrap();
    let after = mean_kl(&s, &trained);
    assert!(after < 0.8 * before, "the KL to the teacher should fall: {before} -> {after}");

    let split = s.dir.join("split");
    train(&s, &split, 4, false);
    let (resumed, resumed_weights) = train(&s, &split, 8, true);
    assert_eq!(resumed, losses[4..].to_vec(), "resumed losses differ from the uninterrupted run");
    assert!(resumed_weights == weights, "resumed weights differ");
    std::fs::remove_dir_all(&s.dir).unwrap();
}

#[test]
fn the_student_file_is_the_teachers_block_renumbered() {
    let s = setup("student");
    let teacher = GgufFile::open(s.dir.join("teacher.gguf")).unwrap();
    assert_eq!(s.student.get_u64("llama.block_count").unwrap(), 1);
    for name in ["token_embd.weight", "output_norm.weight"] {
        let (a, b) = (teacher.tensor_info(name).unwrap(), s.student.tensor_info(name).unwrap());
        assert_eq!(teacher.tensor_bytes(a), s.student.tensor_bytes(b));
    }
    let (a, b) = (
        teacher.tensor_info("blk.1.ffn_down.weight").unwrap(),
        s.student.tensor_info("blk.0.ffn_down.weight").unwrap(),
    );
    assert_eq!(teacher.tensor_bytes(a), s.student.tensor_bytes(b));
    assert!(s.student.tensor_info("blk.1.attn_q.weight").is_none());
    assert_eq!(student::parse_layers("every=2", 30).unwrap(), (0..30).step_by(2).collect::<Vec<_>>());
    assert_eq!(student::parse_layers("layers=0-2,5", 6).unwrap(), [0, 1, 2, 5]);
    for bad in ["", "3", "1,0", "every=0", "x"] {
        let err = student::parse_layers(bad, 3).unwrap_err().to_string();
        assert!(err.contains("student layers"), "{bad}: {err}");
    }
    std::fs::remove_dir_all(&s.dir).unwrap();
}
