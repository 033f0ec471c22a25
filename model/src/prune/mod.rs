//! Magnitude pruning of a GGUF model's linear layers: the attention projections (q, k, v,
//! output, or GPT-2's fused qkv) and the MLP (gate, up, down) lose their smallest weights;
//! embeddings, the output head, norms and biases are copied untouched. The result is a
//! normal GGUF (same metadata, written atomically); the zeros are stored densely, so the
//! file is not smaller. What the zeros cost is measured with `perplexity --kl-base`.
//!
//! Quantized input is dequantized, pruned and written as F16 by default (or F32). With
//! [`OutType::Same`] it is requantized to its own type; zeros survive the symmetric
//! formats (Q8_0, Q4_0, Q5_0: a zero rounds to the zero code) but generally not Q4_1 / Q5_1,
//! whose blocks decode as `d * q + min`. The report therefore counts the zeros of what was
//! written, decoded back, never what was asked for.

mod select;

pub use select::{key, prune_n_of_m, prune_smallest, RadixSelect, Threshold};

use crate::error::{ModelError, Result};
use crate::gguf::{GgufFile, GgufWriter, MetaValue, TensorInfo};
use lamina_tensor::quant::{dequantize, GgmlType};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::Path;

/// The linear layers pruning touches, by the GGUF tensor-name part after `blk.N.`.
pub const LINEAR_KINDS: [&str; 8] =
    ["attn_q", "attn_k", "attn_v", "attn_output", "attn_qkv", "ffn_gate", "ffn_up", "ffn_down"];

/// How the zeros are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Any weight may go; `Scope` says among which weights the smallest are chosen.
    Unstructured,
    /// Keep `keep` of every `group` consecutive weights of a row (2:4 is keep 2 of 4).
    NOfM { keep: usize, group: usize },
}

/// Among which weights the smallest magnitudes are chosen (unstructured pruning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Each row (one output's input weights) loses the same fraction.
    Row,
    /// One threshold per matrix.
    Tensor,
    /// One threshold over all pruned matrices of the model together.
    Global,
}

/// The type pruned matrices are written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutType {
    F16,
    F32,
    /// The matrix's own type (requantized if it was quantized).
    Same,
}

impl std::str::FromStr for Pattern {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Pattern> {
        if s.eq_ignore_ascii_case("unstructured") {
            return Ok(Pattern::Unstructured);
        }
        let bad = || ModelError::Invalid(format!("pattern `{s}`: use `unstructured` or N:M such as 2:4 (keep N of M)"));
        let (n, m) = s.split_once(':').ok_or_else(bad)?;
        let (keep, group): (usize, usize) =
            (n.trim().parse().map_err(|_| bad())?, m.trim().parse().map_err(|_| bad())?);
        if keep == 0 || keep >= group || group > 256 {
            return Err(ModelError::Invalid(format!("pattern `{s}`: N:M needs 0 < N < M <= 256")));
        }
        Ok(Pattern::NOfM { keep, group })
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pattern::Unstructured => f.write_str("unstructured"),
            Pattern::NOfM { keep, group } => write!(f, "{keep}:{group}"),
        }
    }
}

/// A checked pruning request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PruneConfig {
    /// The fraction of each unit's weights to zero (a row, a matrix, or all of them).
    pub sparsity: f64,
    pub pattern: Pattern,
    pub scope: Scope,
    pub out: OutType,
}

impl PruneConfig {
    /// Check a request. An N:M pattern fixes the sparsity at 1 - N/M (a `sparsity` given
    /// with it must agree) and chooses within groups, so it takes no scope.
    pub fn new(sparsity: Option<f64>, pattern: Pattern, scope: Option<Scope>, out: OutType) -> Result<PruneConfig> {
        if let Some(s) = sparsity {
            if !(0.0..=1.0).contains(&s) {
                return Err(ModelError::Invalid(format!("--sparsity must be a fraction from 0 to 1, got {s}")));
            }
        }
        let (sparsity, scope) = match pattern {
            Pattern::Unstructured => (
                sparsity.ok_or_else(|| ModelError::Invalid("unstructured pruning needs --sparsity".into()))?,
                scope.unwrap_or(Scope::Row),
            ),
            Pattern::NOfM { keep, group } => {
                let fixed = 1.0 - keep as f64 / group as f64;
                if sparsity.is_some_and(|s| (s - fixed).abs() > 1e-9) {
                    return Err(ModelError::Invalid(format!(
                        "the {pattern} pattern zeroes {fixed} of the weights; --sparsity {} disagrees",
                        sparsity.unwrap_or(0.0)
                    )));
                }
                if scope.is_some() {
                    return Err(ModelError::Invalid(format!(
                        "--scope applies to unstructured pruning; {pattern} chooses within groups"
                    )));
                }
                (fixed, Scope::Row)
            }
        };
        Ok(PruneConfig { sparsity, pattern, scope, out })
    }

    /// How many of `n` weights a unit loses.
    pub fn zeros_for(&self, n: u64) -> u64 {
        ((self.sparsity * n as f64).round() as u64).min(n)
    }

    fn describe(&self) -> String {
        match self.pattern {
            Pattern::Unstructured => {
                format!("magnitude, unstructured, per {:?}, sparsity {}", self.scope, self.sparsity)
            }
            p => format!("magnitude, {p}"),
        }
        .to_lowercase()
    }
}

/// The linear-layer kind of a tensor (`attn_q`, `ffn_down`, ...), if pruning touches it.
pub fn linear_kind(info: &TensorInfo) -> Option<&'static str> {
    let rest = info.name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let kind = rest.strip_suffix(".weight")?;
    (info.ne.len() == 2 && layer.parse::<u32>().is_ok()).then_some(())?;
    LINEAR_KINDS.iter().copied().find(|&k| k == kind)
}

/// Achieved sparsity of one kind of matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct KindStats {
    pub kind: &'static str,
    pub tensors: usize,
    pub params: u64,
    /// Zero weights in the input (decoded) and in the output (decoded back from the file).
    pub zeros_in: u64,
    pub zeros_out: u64,
}

impl KindStats {
    pub fn sparsity(&self) -> f64 {
        self.zeros_out as f64 / self.params.max(1) as f64
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneReport {
    pub config: PruneConfig,
    /// Per kind, in [`LINEAR_KINDS`] order (kinds the model lacks left out).
    pub kinds: Vec<KindStats>,
    /// Zeros the selection asked for (before any requantization).
    pub zeros_requested: u64,
    /// Every tensor's elements, and the tensor data in and out.
    pub params: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Input and output types of the pruned matrices (distinct pairs).
    pub conversions: Vec<(GgmlType, GgmlType)>,
}

impl PruneReport {
    pub fn pruned_params(&self) -> u64 {
        self.kinds.iter().map(|k| k.params).sum()
    }

    pub fn zeros_out(&self) -> u64 {
        self.kinds.iter().map(|k| k.zeros_out).sum()
    }

    /// Zeros in the pruned matrices as written, over their weights.
    pub fn sparsity(&self) -> f64 {
        self.zeros_out() as f64 / self.pruned_params().max(1) as f64
    }

    /// Bits per weight of the tensor data (headers excluded), over every tensor.
    pub fn bits_per_weight(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / self.params.max(1) as f64
    }
}

/// llama.cpp's `general.file_type` for a file whose big matrices are all `ty`.
fn file_type(ty: GgmlType) -> Option<u32> {
    match ty {
        GgmlType::F32 => Some(0),
        GgmlType::F16 => Some(1),
        _ => None,
    }
}

/// Prune `input` into `out`. `progress(done, total)` counts tensor visits: each tensor
/// once while writing, plus two reading passes over the pruned ones for a global cut.
pub fn prune_gguf(
    input: &GgufFile,
    out: &Path,
    cfg: &PruneConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<PruneReport> {
    let targets = check_targets(input, cfg)?;
    let visits = input.tensors.len() + if cfg.scope == Scope::Global { 2 * targets.len() } else { 0 };
    let mut done = 0;
    let mut tick = || {
        done += 1;
        progress(done, visits);
    };
    let global = match cfg.scope {
        Scope::Global => Some(global_cut(input, &targets, cfg, &mut tick)?),
        _ => None,
    };
    let (writer, mut report) = layout(input, cfg, targets[0])?;
    let mut ties_left = global.map_or(0, |g| g.ties);
    let mut kinds: Vec<KindStats> = Vec::new();
    writer.write_file(out, |t| {
        let info = input.tensor_info(&t.name).expect("the table was built from the input");
        tick();
        let Some(kind) = linear_kind(info) else {
            return Ok(Cow::Borrowed(input.tensor_bytes(info)));
        };
        let (bytes, stats) = prune_tensor(input, info, t.ty, cfg, global.as_ref(), &mut ties_left)?;
        report.zeros_requested += requested(info, cfg);
        match kinds.iter_mut().find(|k| k.kind == kind) {
            Some(k) => {
                k.tensors += 1;
                k.params += stats.params;
                k.zeros_in += stats.zeros_in;
                k.zeros_out += stats.zeros_out;
            }
            None => kinds.push(KindStats { kind, ..stats }),
        }
        Ok(Cow::Owned(bytes))
    })?;
    kinds.sort_by_key(|k| LINEAR_KINDS.iter().position(|&n| n == k.kind));
    report.kinds = kinds;
    if cfg.scope == Scope::Global {
        report.zeros_requested = cfg.zeros_for(report.pruned_params());
    }
    Ok(report)
}

/// The linear layers to prune, each checked decodable and (for N:M) whole groups per row.
fn check_targets<'f>(input: &'f GgufFile, cfg: &PruneConfig) -> Result<Vec<&'f TensorInfo>> {
    let targets: Vec<&TensorInfo> = input.tensors.iter().filter(|t| linear_kind(t).is_some()).collect();
    if targets.is_empty() {
        return Err(ModelError::Invalid(format!(
            "no linear-layer weights to prune (looked for blk.N.{{{}}}.weight)",
            LINEAR_KINDS.join(",")
        )));
    }
    for t in &targets {
        if !t.ty.can_dequantize() {
            return Err(ModelError::Unsupported(format!("tensor `{}` has type {}", t.name, t.ty)));
        }
        if let Pattern::NOfM { group, .. } = cfg.pattern {
            if !t.ne[0].is_multiple_of(group as u64) {
                return Err(ModelError::Invalid(format!(
                    "tensor `{}` has rows of {} weights, not whole groups of {group} for the {} pattern",
                    t.name, t.ne[0], cfg.pattern
                )));
            }
        }
    }
    Ok(targets)
}

/// The one magnitude threshold over every pruned matrix (two reading passes at most).
fn global_cut(
    input: &GgufFile,
    targets: &[&TensorInfo],
    cfg: &PruneConfig,
    tick: &mut impl FnMut(),
) -> Result<Threshold> {
    let n: u64 = targets.iter().map(|t| t.n_elements()).sum();
    let mut sel = RadixSelect::new(cfg.zeros_for(n));
    if let Some(t) = sel.trivial() {
        return Ok(t);
    }
    loop {
        for t in targets {
            sel.observe(&decode(input, t)?);
            tick();
        }
        if let Some(cut) = sel.end_pass() {
            return Ok(cut);
        }
    }
}

/// The output's metadata and tensor table (pruned matrices in their output type), and
/// the report's sizes and conversions.
fn layout(input: &GgufFile, cfg: &PruneConfig, first: &TensorInfo) -> Result<(GgufWriter, PruneReport)> {
    let out_type = |info: &TensorInfo| match cfg.out {
        OutType::F16 => GgmlType::F16,
        OutType::F32 => GgmlType::F32,
        OutType::Same => info.ty,
    };
    let mut metadata: Vec<(String, MetaValue)> =
        input.metadata_in_order().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let mut set = |key: &str, value: MetaValue| match metadata.iter_mut().find(|(k, _)| k == key) {
        Some((_, v)) => *v = value,
        None => metadata.push((key.to_string(), value)),
    };
    if let (Some(ft), true) = (file_type(out_type(first)), cfg.out != OutType::Same) {
        set("general.file_type", MetaValue::U32(ft));
    }
    set("lamina.pruning", MetaValue::String(cfg.describe()));
    let mut writer = GgufWriter::new(metadata)?;
    let mut report = PruneReport {
        config: *cfg,
        kinds: Vec::new(),
        zeros_requested: 0,
        params: 0,
        bytes_in: 0,
        bytes_out: 0,
        conversions: Vec::new(),
    };
    for info in &input.tensors {
        let ty = if linear_kind(info).is_some() { out_type(info) } else { info.ty };
        let t = writer.add_tensor(&info.name, ty, &info.ne)?;
        report.params += info.n_elements();
        report.bytes_in += info.n_bytes;
        report.bytes_out += t.n_bytes;
        if ty != info.ty || linear_kind(info).is_some() {
            let pair = (info.ty, ty);
            if !report.conversions.contains(&pair) {
                report.conversions.push(pair);
            }
        }
    }
    Ok((writer, report))
}

/// One matrix pruned and encoded as `ty`, with its zeros before and after (decoded back).
fn prune_tensor(
    input: &GgufFile,
    info: &TensorInfo,
    ty: GgmlType,
    cfg: &PruneConfig,
    global: Option<&Threshold>,
    ties_left: &mut u64,
) -> Result<(Vec<u8>, KindStats)> {
    let mut values = decode(input, info)?;
    let zeros_in = count_zeros(&values);
    lamina_tensor::cpu::parallel::install(|| prune_values(&mut values, info.ne[0] as usize, cfg, global, ties_left));
    let bytes = crate::quantize::encode_rows(&info.name, &values, info.ne[0] as usize, ty)?;
    let zeros_out = count_zeros(&dequantize(ty, &bytes, values.len())?);
    let kind = linear_kind(info).unwrap_or("");
    Ok((bytes, KindStats { kind, tensors: 1, params: info.n_elements(), zeros_in, zeros_out }))
}

/// Zeros a per-row, per-group or per-matrix cut asks of one matrix (fixed by its size).
fn requested(info: &TensorInfo, cfg: &PruneConfig) -> u64 {
    let (rows, row) = (info.ne[1], info.ne[0]);
    match (cfg.pattern, cfg.scope) {
        (Pattern::NOfM { keep, group }, _) => rows * row / group as u64 * (group - keep) as u64,
        (Pattern::Unstructured, Scope::Row) => rows * cfg.zeros_for(row),
        (Pattern::Unstructured, _) => cfg.zeros_for(rows * row),
    }
}

fn named(info: &TensorInfo, e: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid(format!("tensor `{}`: {e}", info.name))
}

fn decode(input: &GgufFile, info: &TensorInfo) -> Result<Vec<f32>> {
    dequantize(info.ty, input.tensor_bytes(info), info.n_elements() as usize).map_err(|e| named(info, e))
}

fn count_zeros(values: &[f32]) -> u64 {
    values.iter().filter(|&&v| v == 0.0).count() as u64
}

/// Zero one matrix's weights, rows of `row` values, as `cfg` says.
fn prune_values(values: &mut [f32], row: usize, cfg: &PruneConfig, global: Option<&Threshold>, ties_left: &mut u64) {
    match (cfg.pattern, global) {
        (_, Some(cut)) => cut.apply(values, ties_left),
        (Pattern::NOfM { keep, group }, None) => {
            values.par_chunks_mut(row).for_each(|r| prune_n_of_m(r, keep, group));
        }
        (Pattern::Unstructured, None) if cfg.scope == Scope::Row => {
            let k = cfg.zeros_for(row as u64) as usize;
            values.par_chunks_mut(row).for_each(|r| prune_smallest(r, k));
        }
        (Pattern::Unstructured, None) => {
            let mut sel = RadixSelect::new(cfg.zeros_for(values.len() as u64));
            let cut = sel.trivial().unwrap_or_else(|| loop {
                sel.observe(values);
                if let Some(cut) = sel.end_pass() {
                    break cut;
                }
            });
            cut.apply(values, &mut cut.ties.clone());
        }
    }
}
