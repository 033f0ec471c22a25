//! `lamina distill --teacher T --student S --data D`: knowledge distillation of a
//! LLaMA-family student from a teacher of the same tokenizer. The teacher's top-k
//! distributions over the training data are cached once (`--cache`, sharded, resumable);
//! then every weight of the student is trained on τ²·KL (plus `--ce-weight` times the
//! ground-truth cross-entropy) by the fine-tuning loop, with its validation (the
//! student's own cross-entropy and perplexity), checkpoints, `--resume` and metrics. The
//! student is written as `OUT/final/model.gguf`.

use crate::llm::{check_output, model_path, CliResult};
use crate::train_args::{fine_tune_config, fingerprint, load_data, print_report, ranks_note, TrainArgs};
use clap::Args;
use lamina_model::gguf::GgufFile;
use lamina_model::{BpeTokenizer, Llama, LoadOptions};
use lamina_train::dist::Collective;
use lamina_train::distill::cache::Part;
use lamina_train::distill::{cache, student, CacheSpec, Distill, DistillLoss, Divergence, TeacherCache};
use lamina_train::finetune::{finetune_in, settings::f32_value, LlamaFull, Trainee};
use lamina_train::sft::Encoded;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct DistillArgs {
    /// The teacher (GGUF, LLaMA family). Default: SmolLM2-135M-Instruct.
    #[arg(long, value_name = "PATH")]
    pub teacher: Option<PathBuf>,
    /// The student: any LLaMA-family GGUF with the teacher's tokenizer.
    #[arg(long, value_name = "PATH", required_unless_present = "student_layers")]
    pub student: Option<PathBuf>,
    /// Make the student from the teacher's own blocks instead, written to OUT/student.gguf:
    /// `every=2` (blocks 0, 2, 4, ...) or a list such as `0,2,4` or `0-5,11`.
    #[arg(long, value_name = "BLOCKS", conflicts_with = "student")]
    pub student_layers: Option<String>,
    /// Run directory: the teacher cache (unless --cache), metrics.jsonl, checkpoint-N/,
    /// best/ and final/ (the student, model.gguf).
    #[arg(long, short = 'o', default_value = "runs/distill")]
    pub out: PathBuf,
    /// The teacher cache's directory (default OUT/teacher-cache); an interrupted caching
    /// run continues there, a cache of other data or settings is refused.
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Softmax temperature τ of both distributions in the KL term (above 1 spreads the
    /// teacher's mass beyond its top k: the share outside it is printed).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// How many of the teacher's most likely tokens are cached per position (the rest is
    /// kept as one total).
    #[arg(long, default_value_t = 16)]
    pub top_k: usize,
    /// Weight of τ²·KL.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub kd_weight: f32,
    /// Weight of the cross-entropy with the data's own next tokens.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub ce_weight: f32,
    /// Reverse KL(student‖teacher) (mode-seeking) instead of KL(teacher‖student).
    #[arg(long)]
    pub reverse: bool,
    /// Training examples per cache shard.
    #[arg(long, default_value_t = 256)]
    pub shard_examples: usize,
    /// Build the teacher cache and stop.
    #[arg(long)]
    pub cache_only: bool,
    #[command(flatten)]
    pub train: TrainArgs,
}

impl DistillArgs {
    fn loss(&self) -> CliResult<DistillLoss> {
        let ok = |w: f32| w.is_finite() && w >= 0.0;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!("--temperature {}: use a positive number", self.temperature).into());
        }
        if !ok(self.kd_weight) || !ok(self.ce_weight) || self.kd_weight + self.ce_weight == 0.0 {
            return Err("--kd-weight and --ce-weight: use weights >= 0, not both 0".into());
        }
        let divergence = if self.reverse { Divergence::Reverse } else { Divergence::Forward };
        Ok(DistillLoss {
            temperature: self.temperature,
            divergence,
            kd_weight: self.kd_weight,
            ce_weight: self.ce_weight,
        })
    }
}

pub fn run(args: DistillArgs) -> CliResult {
    crate::ranks::in_group(|group| run_in(group, args))
}

/// The run as one rank of `group` (alone: rank 0 of 1): rank 0 writes the student made
/// of the teacher's blocks, the ranks build the teacher cache together (shard i on rank
/// i mod N), then train data-parallel; only rank 0 prints. Under several machines, --out
/// (and --cache) must be on a filesystem they share, as the data already is.
fn run_in(group: &dyn Collective, args: DistillArgs) -> CliResult {
    let lead = group.rank() == 0;
    let loss = args.loss()?;
    if !args.cache_only {
        args.train.check(&args.out, lead)?;
    }
    let teacher_path = model_path(&args.teacher)?;
    let teacher_file = GgufFile::open(&teacher_path)?;
    lamina_model::arch::decoder_for_gguf(&teacher_file)?;
    let tokenizer = BpeTokenizer::from_gguf(&teacher_file)?;
    let student_path = student_file(group, &args, &teacher_path, &teacher_file)?;
    let student_file = GgufFile::open(&student_path)?;
    lamina_model::arch::decoder_for_gguf(&student_file)?;
    lamina_model::kl::check_same_tokenizer(&tokenizer, &BpeTokenizer::from_gguf(&student_file)?)
        .map_err(|e| format!("the student cannot learn this teacher's distributions: {e}"))?;

    let data = load_data(&args.train, &tokenizer, &teacher_file, lead)?;
    let cache_dir = args.cache.clone().unwrap_or_else(|| args.out.join("teacher-cache"));
    let spec = CacheSpec {
        k: args.top_k,
        temperature: args.temperature,
        vocab: vocab_of(&teacher_file)?,
        shard_examples: args.shard_examples,
        teacher: fingerprint(&teacher_path)?,
        data: cache::data_fingerprint(data.train.examples()),
        examples: data.n_train,
    };
    build_cache(group, &args, &teacher_file, &cache_dir, &spec, data.train.examples())?;
    let cache = TeacherCache::open(&cache_dir, &spec)?;
    if lead {
        eprintln!(
            "teacher cache {}: top {} at τ {}; {:.2}% of the teacher's probability lies outside the top k on average",
            cache_dir.display(),
            spec.k,
            spec.temperature,
            100.0 * cache.mean_rest_mass()
        );
    }
    if args.cache_only {
        return Ok(());
    }

    let steps = args.train.steps(&data);
    let mut settings = args.train.settings(&student_path)?;
    settings
        .set("method", "distill")
        .set("teacher_fingerprint", spec.teacher.clone())
        .set("temperature", f32_value(loss.temperature))
        .set("top_k", spec.k)
        .set("kd_weight", f32_value(loss.kd_weight))
        .set("ce_weight", f32_value(loss.ce_weight))
        .set("divergence", format!("{:?}", loss.divergence).to_lowercase());
    let cfg = fine_tune_config(&args.train, &args.out, steps, settings, 2e-4)?;
    let mut model =
        Llama::from_gguf_with(&student_file, LoadOptions { device: args.train.device, keep_quantized: false })?;
    let params = model.make_trainable()?;
    let full = LlamaFull { model: &model, params, source: &student_file };
    let trainee = Distill { student: &model, inner: &full, cache: &cache, loss };
    if lead {
        let trainable: usize = trainee.parameters().iter().map(|(_, t)| t.numel()).sum();
        eprintln!(
            "distilling {} into {} ({}, {} blocks, {trainable} parameters); {} training / {} validation examples; {steps} steps of {} x {} sequences{}",
            teacher_path.display(),
            student_path.display(),
            args.train.device,
            model.config.n_layers,
            data.n_train,
            data.n_val,
            args.train.accum,
            args.train.batch,
            ranks_note(group.size(), args.train.batch),
        );
    }
    let mut batches = data.train;
    let report = finetune_in(group, &trainee, &mut batches, &data.val, &cfg)?;
    if lead {
        print_report(&args.out, "student (model.gguf)", &report);
    }
    Ok(())
}

/// The student's file: --student, or the teacher's --student-layers written by rank 0 to
/// OUT/student.gguf (the other ranks wait for it).
fn student_file(
    group: &dyn Collective,
    args: &DistillArgs,
    teacher_path: &Path,
    teacher: &GgufFile,
) -> CliResult<PathBuf> {
    let Some(spec) = &args.student_layers else {
        return Ok(args.student.clone().expect("clap requires --student or --student-layers"));
    };
    let n_layers = teacher.get_u64(&format!("{}.block_count", teacher.architecture()?))? as usize;
    let layers = student::parse_layers(spec, n_layers)?;
    let path = args.out.join("student.gguf");
    if group.rank() == 0 {
        std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
        let path = check_output(&path, &[teacher_path])?;
        student::write_layer_subset(teacher, &layers, &path)?;
        eprintln!("student: blocks {spec} of the teacher's {n_layers} -> {}", path.display());
    }
    group.barrier()?;
    Ok(path)
}

/// The width of a model's logits: its embedding's rows.
fn vocab_of(file: &GgufFile) -> CliResult<usize> {
    let info = file.tensor_info("token_embd.weight").ok_or("the teacher has no token_embd.weight")?;
    Ok(info.ne.get(1).copied().unwrap_or(0) as usize)
}

/// Sequences per teacher forward pass while caching.
const TEACHER_BATCH: usize = 8;

/// Compute (or finish) the teacher cache, the teacher's blocks kept quantized: rank 0
/// writes the manifest, then each rank computes its part of the shards.
fn build_cache(
    group: &dyn Collective,
    args: &DistillArgs,
    teacher_file: &GgufFile,
    dir: &Path,
    spec: &CacheSpec,
    examples: &[Encoded],
) -> CliResult {
    let lead = group.rank() == 0;
    if lead {
        cache::prepare(dir, spec, examples)?;
    }
    group.barrier()?;
    let teacher = Llama::from_gguf_with(teacher_file, LoadOptions { device: args.train.device, keep_quantized: true })?;
    let started = std::time::Instant::now();
    let mut run = |tokens: &[u32], batch: usize| Ok(teacher.forward_train(tokens, batch, None)?);
    let whose = if group.size() > 1 { " (rank 0's part)" } else { "" };
    let mut progress = |done: usize, total: usize| {
        if lead {
            eprintln!("teacher cache{whose}: shard {done}/{total} ({:.0} s)", started.elapsed().as_secs_f64());
        }
    };
    let part = Part { index: group.rank(), count: group.size() };
    let r = cache::build_part(dir, spec, examples, part, TEACHER_BATCH, &mut run, &mut progress)?;
    if lead && r.reused > 0 {
        eprintln!("teacher cache{whose}: {} of {} shards were already complete", r.reused, r.shards);
    }
    // Every part is written before any rank reads the cache.
    group.barrier()?;
    Ok(())
}
