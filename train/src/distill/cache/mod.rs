//! The teacher cache: the teacher's top-k log-probabilities (at the run's temperature) at
//! every scored position of every training example, computed once so that the student's
//! epochs never rerun the teacher.
//!
//! A cache is a directory: `manifest.json` (what it was made from: the teacher's and the
//! data's fingerprints, k, τ, the vocabulary, the example count and the shard size) and
//! `shard-NNNNN.bin`, each holding `shard_examples` consecutive examples (`shard.rs`). Every
//! file is written atomically (temporary, fsync, rename), so an interrupted caching run
//! leaves only whole shards, and the next run with the same manifest keeps them and
//! computes the rest. A manifest that differs (another teacher, data, k or τ) is refused
//! rather than mixed.
//!
//! Several processes (the ranks of an MPI job) build one cache together: one writes the
//! manifest ([`prepare`]), then each computes its [`Part`] of the shards
//! ([`build_part`]); the files are the ones a single process writes.
//!
//! Training finds an example's entry by content: the tokens through its last scored
//! position and the scored positions. A causal teacher's output at a position depends on
//! nothing after it, so the entry is right for any batch row holding that example,
//! whatever the padding after it.

pub mod shard;

use super::loss::TeacherTopK;
use crate::finetune::TrainBatch;
use crate::sft::Encoded;
use crate::TrainError;
use lamina_tensor::{NoGradGuard, Tensor};
use serde_json::{json, Value};
use shard::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "lamina-teacher-cache";

/// The teacher: `(tokens, batch)` -> logits (batch * seq, vocab) of `batch` right-padded
/// sequences of seq = tokens / batch tokens.
pub type TeacherFn<'a> = dyn FnMut(&[u32], usize) -> Result<Tensor, TrainError> + 'a;

/// What a cache holds and was made from.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheSpec {
    pub k: usize,
    pub temperature: f32,
    pub vocab: usize,
    pub shard_examples: usize,
    /// `file_fingerprint` of the teacher's file.
    pub teacher: String,
    /// [`data_fingerprint`] of the training examples.
    pub data: String,
    pub examples: usize,
}

impl CacheSpec {
    fn to_json(&self) -> Value {
        json!({
            "format": FORMAT, "version": 1, "k": self.k, "temperature": self.temperature,
            "vocab": self.vocab, "shard_examples": self.shard_examples, "teacher": self.teacher,
            "data": self.data, "examples": self.examples,
        })
    }

    pub fn shards(&self) -> usize {
        self.examples.div_ceil(self.shard_examples.max(1))
    }
}

/// A fingerprint of encoded examples (tokens and labels, in order).
pub fn data_fingerprint(examples: &[Encoded]) -> String {
    let mut bytes = Vec::new();
    for e in examples {
        bytes.extend_from_slice(&(e.tokens.len() as u32).to_le_bytes());
        e.tokens.iter().for_each(|t| bytes.extend_from_slice(&t.to_le_bytes()));
        e.labels.iter().for_each(|l| bytes.extend_from_slice(&l.to_le_bytes()));
    }
    format!("{:016x}", shard::checksum(&bytes))
}

fn shard_path(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("shard-{i:05}.bin"))
}

fn cache_err(path: &Path, msg: impl std::fmt::Display) -> TrainError {
    TrainError::Config(format!("teacher cache {}: {msg}", path.display()))
}

/// The manifest in `dir`, if there is one: refused when it is not `spec`'s, naming what differs.
fn check_manifest(dir: &Path, spec: &CacheSpec) -> Result<bool, TrainError> {
    let path = dir.join(MANIFEST);
    if !path.exists() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let found: Value = serde_json::from_str(&text).map_err(|e| cache_err(&path, e))?;
    let want = spec.to_json();
    let differ: Vec<String> = want
        .as_object()
        .expect("an object")
        .iter()
        .filter(|(k, v)| found.get(k.as_str()) != Some(v))
        .map(|(k, v)| format!("{k}: {} in the cache, {v} now", found.get(k.as_str()).unwrap_or(&Value::Null)))
        .collect();
    if !differ.is_empty() {
        return Err(cache_err(
            &path,
            format!(
                "made for another teacher, data or settings ({}); use another --cache directory",
                differ.join("; ")
            ),
        ));
    }
    Ok(true)
}

/// The teacher's top k at the scored positions of `examples` (each through its last
/// scored position), run as one right-padded batch: a causal teacher's outputs at a
/// position do not depend on the padding after it.
fn entries_of(examples: &[Encoded], spec: &CacheSpec, teacher: &mut TeacherFn) -> Result<Vec<Entry>, TrainError> {
    let ends: Vec<usize> = examples
        .iter()
        .map(|ex| ex.labels.iter().rposition(|&l| l != -100).map(|p| p + 1))
        .collect::<Option<_>>()
        .ok_or_else(|| TrainError::Config("teacher cache: an example has no scored token".into()))?;
    let seq = ends.iter().copied().max().unwrap_or(0);
    let mut tokens = Vec::with_capacity(examples.len() * seq);
    for (ex, &end) in examples.iter().zip(&ends) {
        tokens.extend_from_slice(&ex.tokens[..end]);
        tokens.resize(tokens.len() + seq - end, ex.tokens[0]);
    }
    let logits = teacher(&tokens, examples.len())?; // (batch * seq, vocab)
    let mut positions = Vec::with_capacity(examples.len());
    let mut rows = Vec::new();
    for (r, ex) in examples.iter().enumerate() {
        let p: Vec<u32> = (0..ex.len()).filter(|&i| ex.labels[i] != -100).map(|i| i as u32).collect();
        rows.extend(p.iter().map(|&i| (r * seq) as u32 + i));
        positions.push(p);
    }
    let rows = Tensor::from_slice(&rows, &[rows.len()])?;
    let log_probs = logits.index_select(0, &rows)?.scale(1.0 / spec.temperature)?.log_softmax(-1)?.to_vec_f32()?;
    let top = TeacherTopK::from_log_probs(&log_probs, spec.vocab, spec.k);
    let mut row = 0;
    Ok(examples
        .iter()
        .zip(ends)
        .zip(positions)
        .map(|((ex, end), positions)| {
            let (k, m) = (spec.k, positions.len());
            let part = TeacherTopK {
                k,
                ids: top.ids[row * k..(row + m) * k].to_vec(),
                log_probs: top.log_probs[row * k..(row + m) * k].to_vec(),
                log_rest: top.log_rest[row..row + m].to_vec(),
            };
            row += m;
            Entry { tokens: ex.tokens[..end].to_vec(), positions, top: part }
        })
        .collect())
}

/// What [`build`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BuildReport {
    pub shards: usize,
    /// Shards already complete (from an interrupted run), kept.
    pub reused: usize,
}

/// Which shards a process computes: shard i belongs to part `i % count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    pub index: usize,
    pub count: usize,
}

impl Part {
    /// Every shard: one process builds the whole cache.
    pub const WHOLE: Part = Part { index: 0, count: 1 };

    fn holds(self, shard: usize) -> bool {
        shard % self.count.max(1) == self.index
    }
}

/// Compute the cache for `examples` into `dir`, keeping the shards an earlier run with
/// the same spec completed. `teacher(tokens, batch)` gives the logits (batch * seq, vocab)
/// of `batch` sequences of seq = tokens / batch tokens; it is given up to `teacher_batch`
/// examples at a time. `progress(done, total)` is called after each shard.
pub fn build(
    dir: &Path,
    spec: &CacheSpec,
    examples: &[Encoded],
    teacher_batch: usize,
    teacher: &mut TeacherFn,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BuildReport, TrainError> {
    prepare(dir, spec, examples)?;
    build_part(dir, spec, examples, Part::WHOLE, teacher_batch, teacher, progress)
}

/// Check `spec` against `examples`, create `dir` and write its manifest (or check the one
/// there): what one process does before the parts are built.
pub fn prepare(dir: &Path, spec: &CacheSpec, examples: &[Encoded]) -> Result<(), TrainError> {
    check_spec(spec, examples)?;
    std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    if !check_manifest(dir, spec)? {
        let text = serde_json::to_string_pretty(&spec.to_json()).expect("plain JSON");
        lamina_model::atomic::write_bytes(&dir.join(MANIFEST), text.as_bytes())?;
    }
    Ok(())
}

/// Compute `part`'s shards into a [`prepare`]d `dir` (as [`build`]; `progress` counts and
/// the report holds this part's shards only).
pub fn build_part(
    dir: &Path,
    spec: &CacheSpec,
    examples: &[Encoded],
    part: Part,
    teacher_batch: usize,
    teacher: &mut TeacherFn,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<BuildReport, TrainError> {
    check_spec(spec, examples)?;
    if !check_manifest(dir, spec)? {
        return Err(cache_err(&dir.join(MANIFEST), "missing: prepare the cache first"));
    }
    let _g = NoGradGuard::new();
    let mine: Vec<usize> = (0..spec.shards()).filter(|&i| part.holds(i)).collect();
    let mut report = BuildReport { shards: mine.len(), reused: 0 };
    for (done, &i) in mine.iter().enumerate() {
        let chunk = &examples[i * spec.shard_examples..((i + 1) * spec.shard_examples).min(examples.len())];
        let path = shard_path(dir, i);
        match read_shard(&path, i, spec, chunk.len()) {
            Ok(_) => {
                report.reused += 1;
                progress(done + 1, report.shards);
                continue;
            }
            Err(e) if path.exists() => eprintln!("{e}: computing it again"),
            Err(_) => {}
        }
        let mut entries = Vec::with_capacity(chunk.len());
        for run in chunk.chunks(teacher_batch.max(1)) {
            entries.extend(entries_of(run, spec, teacher)?);
        }
        lamina_model::atomic::write_bytes(&path, &shard::encode(i as u32, spec.k, &entries))?;
        progress(done + 1, report.shards);
    }
    Ok(report)
}

/// A spec a cache can be built from, for `examples`.
fn check_spec(spec: &CacheSpec, examples: &[Encoded]) -> Result<(), TrainError> {
    if spec.k == 0
        || spec.k >= spec.vocab
        || spec.shard_examples == 0
        || spec.temperature.is_nan()
        || spec.temperature <= 0.0
    {
        return Err(TrainError::Config(format!(
            "teacher cache: k {} must be in 1..{}, the shard size positive and the temperature {} positive",
            spec.k, spec.vocab, spec.temperature
        )));
    }
    if examples.len() != spec.examples {
        return Err(TrainError::Config(format!(
            "teacher cache: {} examples, the spec says {}",
            examples.len(),
            spec.examples
        )));
    }
    Ok(())
}

/// Shard `i` of a cache with `spec`, checked to hold `count` examples.
fn read_shard(path: &Path, i: usize, spec: &CacheSpec, count: usize) -> Result<Vec<Entry>, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            cache_err(path, "missing: the caching run did not finish (run it again to continue)")
        }
        _ => TrainError::io(path, e),
    })?;
    let (index, k, entries) = shard::decode(&bytes).map_err(|e| cache_err(path, e))?;
    if index as usize != i || k != spec.k || entries.len() != count {
        return Err(cache_err(
            path,
            format!(
                "holds shard {index} (k {k}, {} examples), expected shard {i} (k {}, {count})",
                entries.len(),
                spec.k
            ),
        ));
    }
    if entries.iter().flat_map(|e| &e.top.ids).any(|&id| id as usize >= spec.vocab) {
        return Err(cache_err(path, format!("a token id is outside the vocabulary of {}", spec.vocab)));
    }
    Ok(entries)
}

/// A complete cache, in memory, looked up by example content.
pub struct TeacherCache {
    pub spec: CacheSpec,
    entries: Vec<Entry>,
    by_key: HashMap<u64, Vec<usize>>,
}

fn key(tokens: &[u32], positions: &[u32]) -> u64 {
    let bytes: Vec<u8> = tokens.iter().chain(positions).flat_map(|v| v.to_le_bytes()).collect();
    shard::checksum(&bytes) ^ tokens.len() as u64
}

impl TeacherCache {
    /// Open the cache in `dir`, which must have been made with `spec` and be complete.
    pub fn open(dir: &Path, spec: &CacheSpec) -> Result<TeacherCache, TrainError> {
        if !check_manifest(dir, spec)? {
            return Err(cache_err(dir, "no manifest.json: not a teacher cache, or one whose run never started"));
        }
        let mut entries = Vec::with_capacity(spec.examples);
        for i in 0..spec.shards() {
            let count = (spec.examples - i * spec.shard_examples).min(spec.shard_examples);
            entries.extend(read_shard(&shard_path(dir, i), i, spec, count)?);
        }
        let mut by_key: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, e) in entries.iter().enumerate() {
            by_key.entry(key(&e.tokens, &e.positions)).or_default().push(i);
        }
        Ok(TeacherCache { spec: spec.clone(), entries, by_key })
    }

    /// The entry for a sequence's tokens (through the last scored position) and scored positions.
    pub fn get(&self, tokens: &[u32], positions: &[u32]) -> Option<&Entry> {
        let found = self.by_key.get(&key(tokens, positions))?;
        found.iter().map(|&i| &self.entries[i]).find(|e| e.tokens == tokens && e.positions == positions)
    }

    /// The mean share of the teacher's probability that lies outside its top k.
    pub fn mean_rest_mass(&self) -> f64 {
        let rest: Vec<f64> = self.entries.iter().flat_map(|e| &e.top.log_rest).map(|&l| (l as f64).exp()).collect();
        rest.iter().sum::<f64>() / rest.len().max(1) as f64
    }

    /// The teacher's targets for the scored positions of `b`: their flat row indices in
    /// the batch (row * seq + position), the top k there, and the labels.
    pub fn targets(&self, b: &TrainBatch) -> Result<(Vec<u32>, TeacherTopK, Vec<u32>), TrainError> {
        let k = self.spec.k;
        let mut top = TeacherTopK { k, ids: Vec::new(), log_probs: Vec::new(), log_rest: Vec::new() };
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for r in 0..b.batch {
            let (tokens, row_labels) = (&b.tokens[r * b.seq..(r + 1) * b.seq], &b.labels[r * b.seq..(r + 1) * b.seq]);
            let positions: Vec<u32> = (0..b.seq).filter(|&i| row_labels[i] != -100).map(|i| i as u32).collect();
            let Some(&last) = positions.last() else { continue };
            let e = self.get(&tokens[..=last as usize], &positions).ok_or_else(|| {
                TrainError::Config(format!(
                    "teacher cache: no entry for a training sequence of {} tokens (the cache is of other data)",
                    last + 1
                ))
            })?;
            rows.extend(positions.iter().map(|&p| (r * b.seq) as u32 + p));
            labels.extend(positions.iter().map(|&p| row_labels[p as usize] as u32));
            top.ids.extend_from_slice(&e.top.ids);
            top.log_probs.extend_from_slice(&e.top.log_probs);
            top.log_rest.extend_from_slice(&e.top.log_rest);
        }
        Ok((rows, top, labels))
    }
}
