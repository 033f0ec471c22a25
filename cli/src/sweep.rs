//! `lamina sweep BASE.gguf --types q8_0,q4_0 --sparsity 0.1,0.3,0.5 --pattern unstructured,2:4`:
//! make each quantized and pruned variant of a base model in a temporary directory, score
//! it against the base (perplexity, KL divergence, same top token) on the same chunks,
//! and write `sweep.json` with `ppl_vs_sparsity.svg` and `ppl_vs_bpw.svg`.
//!
//! The base model runs once: its logits at the scored positions are kept in memory when
//! they fit in 1 GiB (4 chunks of 512 with a 49k vocabulary take 200 MB), else it runs
//! next to each variant.

use crate::kl_report;
use crate::llm::{load, CliResult, ModelArgs};
use crate::plot::{self, Chart, Mark, Scale, Series};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use lamina_model::gguf::GgufFile;
use lamina_model::kl::{check_same_tokenizer, kl_divergence, Base, BaseCache, KlOptions, KlReport};
use lamina_model::prune::{prune_gguf, PruneConfig};
use lamina_model::quantize::{quantize_model, Target};
use lamina_model::{BpeTokenizer, CausalLm};
use lamina_tensor::Device;
use std::path::{Path, PathBuf};

const CACHE_LIMIT: u64 = 1 << 30;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The base model: an F16/F32 GGUF (a quantized one needs --allow-requantize).
    #[arg(required_unless_present = "replot")]
    pub base: Option<PathBuf>,
    /// Only redraw the plots into --out from a sweep.json written earlier (no models run).
    #[arg(long, value_name = "SWEEP_JSON", conflicts_with = "base")]
    pub replot: Option<PathBuf>,
    /// Quantization types, comma-separated (any `quantize --type`; empty for none).
    #[arg(long, value_delimiter = ',', default_value = "q8_0,q6_k,q5_k_m,q5_1,q5_0,q4_k_m,q4_1,q4_0")]
    pub types: Vec<String>,
    /// Sparsities of unstructured pruning, comma-separated fractions (empty for none).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3,0.5", allow_negative_numbers = true)]
    pub sparsity: Vec<String>,
    /// Pruning patterns, comma-separated: unstructured (at each --sparsity) and N:M such as 2:4.
    #[arg(long, value_delimiter = ',', default_value = "unstructured,2:4")]
    pub pattern: Vec<String>,
    /// Where unstructured pruning picks the smallest weights.
    #[arg(long, default_value = "row", value_parser = ["row", "tensor", "global"])]
    pub scope: String,
    /// Text to score (default: data/corpus.txt, shipped with the binary).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Tokens per chunk.
    #[arg(long, default_value_t = 512)]
    pub chunk: usize,
    /// Score at most this many chunks (4 takes a few minutes on two cores for SmolLM2).
    #[arg(long)]
    pub chunks: Option<usize>,
    /// Directory for sweep.json and the plots (created if missing).
    #[arg(long, short = 'o', default_value = "sweep")]
    pub out: PathBuf,
    /// Requantize tensors the base already has quantized.
    #[arg(long)]
    pub allow_requantize: bool,
    /// Keep the variant models in OUT/models instead of deleting each after scoring it.
    #[arg(long)]
    pub keep: bool,
    /// Where to run: cpu, gpu or gpu:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
}

/// One model to make and score.
#[derive(Clone, Debug)]
enum Variant {
    Quantize(Target),
    Prune(PruneConfig),
}

impl Variant {
    fn name(&self) -> String {
        match self {
            Variant::Quantize(t) => t.name.to_lowercase(),
            Variant::Prune(c) => match c.pattern {
                lamina_model::prune::Pattern::Unstructured => format!("prune-{}", c.sparsity),
                p => format!("prune-{}", p.to_string().replace(':', "of")),
            },
        }
    }
}

impl Variant {
    /// The line a pruned variant belongs to in the sparsity plot.
    fn group(&self) -> Option<String> {
        match self {
            Variant::Quantize(_) => None,
            Variant::Prune(c) => Some(match c.pattern {
                lamina_model::prune::Pattern::Unstructured => format!("unstructured, per {:?}", c.scope).to_lowercase(),
                p => p.to_string(),
            }),
        }
    }
}

/// Everything the arguments ask for, checked before any work starts.
fn variants(args: &SweepArgs) -> CliResult<Vec<Variant>> {
    let mut v = Vec::new();
    for t in args.types.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let ty = Target::parse(t).map_err(|e| format!("--types: {e}"))?;
        v.push(Variant::Quantize(ty));
    }
    let sparsities: Vec<f64> = args
        .sparsity
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<f64>().map_err(|_| format!("--sparsity: `{s}` is not a number")))
        .collect::<Result<_, _>>()?;
    for p in args.pattern.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        if p.eq_ignore_ascii_case("unstructured") {
            for &s in &sparsities {
                v.push(Variant::Prune(crate::prune::config(Some(s), p, Some(&args.scope), "f16")?));
            }
        } else {
            v.push(Variant::Prune(crate::prune::config(None, p, None, "f16")?));
        }
    }
    if v.is_empty() {
        return Err("nothing to sweep: give --types and/or --sparsity with --pattern".into());
    }
    Ok(v)
}

/// Bits per weight of a GGUF's tensor data.
fn bits_per_weight(f: &GgufFile) -> f64 {
    let bytes: u64 = f.tensors.iter().map(|t| t.n_bytes).sum();
    let params: u64 = f.tensors.iter().map(|t| t.n_elements()).sum();
    bytes as f64 * 8.0 / params.max(1) as f64
}

pub fn run(args: SweepArgs) -> CliResult {
    if let Some(json) = &args.replot {
        return replot(json, &args.out);
    }
    let variants = variants(&args)?;
    crate::perplexity::check_chunks(args.chunk, args.chunks)?;
    let text = match &args.file {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?,
        None => lamina_train::data::SHIPPED_CORPUS.to_string(),
    };
    std::fs::create_dir_all(&args.out).map_err(|e| format!("--out {}: {e}", args.out.display()))?;
    let work = if args.keep {
        args.out.join("models")
    } else {
        std::env::temp_dir().join(format!("lamina-sweep-{}", std::process::id()))
    };
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = sweep(&args, &variants, &text, &work);
    if !args.keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn sweep(args: &SweepArgs, variants: &[Variant], text: &str, work: &Path) -> CliResult {
    let base_path = args.base.as_deref().expect("clap requires the base unless --replot");
    let base_file = GgufFile::open(base_path)?;
    let base_bpw = bits_per_weight(&base_file);
    let base = BaseSide::prepare(args, base_path, text)?;
    println!(
        "{}: {:.2} bits/weight; {} variants, {} chunks of {} ({} tokens scored each)",
        base_path.display(),
        base_bpw,
        variants.len(),
        base.n_chunks,
        args.chunk,
        base.n_chunks * (args.chunk - 1 - args.chunk / 2)
    );
    let mut rows = Vec::new();
    let mut scored: Vec<Scored> = Vec::new();
    let mut base_ppl = None;
    for (i, v) in variants.iter().enumerate() {
        let (row, s, r) = score_variant(args, &base_file, &base, v, work)?;
        println!(
            "[{}/{}] {:<14} {:>6.2} bits/weight  sparsity {:>5.1}%  ppl {:>9.3} ± {:<7.3} (x{:.4})  KLD {:.5} ± {:.5}  same top {:5.1}%  ({:.0} s)",
            i + 1,
            variants.len(),
            v.name(),
            s.bpw,
            100.0 * s.sparsity,
            r.ppl.value,
            r.ppl.err,
            r.ppl_ratio.value,
            r.kld.mean.value,
            r.kld.mean.err,
            100.0 * r.same_top.value,
            row["seconds"].as_f64().unwrap_or(0.0),
        );
        rows.push(row);
        scored.push(s);
        base_ppl = Some(r.ppl_base);
    }
    let base_ppl = base_ppl.expect("at least one variant");
    let json = serde_json::json!({
        "base": { "path": base_path.display().to_string(), "bits_per_weight": base_bpw,
                  "ppl": base_ppl.value, "ppl_err": base_ppl.err },
        "n_ctx": args.chunk, "chunks": base.n_chunks, "tokens_in_text": base.tokens.len(),
        "variants": rows,
    });
    let json_path = args.out.join("sweep.json");
    plot::save(&json_path, &serde_json::to_string_pretty(&json)?)?;
    let (a, b) = write_plots(&scored, base_ppl.value, base_bpw, &args.out)?;
    println!(
        "base perplexity {:.3} ± {:.3}; wrote {}, {}, {}",
        base_ppl.value,
        base_ppl.err,
        json_path.display(),
        a.display(),
        b.display()
    );
    Ok(())
}

fn model_args(args: &SweepArgs, path: &Path) -> ModelArgs {
    ModelArgs {
        model: Some(path.to_path_buf()),
        device: args.device,
        ctx: args.chunk,
        dequantize: false,
        lora: None,
        swap: None,
    }
}

fn bar(n_chunks: usize, prefix: String) -> CliResult<ProgressBar> {
    let style = ProgressStyle::with_template("{prefix:>14} {bar:30} {pos}/{len} chunks  {msg}  eta {eta}")?;
    Ok(ProgressBar::new(n_chunks as u64).with_style(style).with_prefix(prefix))
}

/// The base model's side of every comparison: its tokenizer, the text's tokens, and its
/// logits kept in memory when they fit (the model is then freed), else the model itself.
struct BaseSide {
    tokenizer: BpeTokenizer,
    tokens: Vec<u32>,
    opts: KlOptions,
    n_chunks: usize,
    cache: Option<BaseCache>,
    model: Option<Box<dyn CausalLm>>,
}

impl BaseSide {
    fn prepare(args: &SweepArgs, base_path: &Path, text: &str) -> CliResult<BaseSide> {
        let base = load(&model_args(args, base_path))?;
        let tokens = base.tokenizer.encode(text, false, false)?;
        let bos = if base.tokenizer.adds_bos() { base.tokenizer.bos_id() } else { None };
        let opts = KlOptions { n_ctx: args.chunk, max_chunks: args.chunks, bos };
        let n_chunks = lamina_model::perplexity::chunks(&tokens, args.chunk, args.chunks, bos)?.len();
        let need = BaseCache::bytes_needed(base.model.vocab_size(), args.chunk, n_chunks);
        let (cache, model) = if need <= CACHE_LIMIT {
            let bar = bar(n_chunks, "base".into())?;
            let c = BaseCache::compute(base.model.as_ref(), &tokens, opts, |d, _| bar.set_position(d as u64))?;
            bar.finish_and_clear();
            (Some(c), None)
        } else {
            eprintln!(
                "the base logits would take {} MiB: the base model runs next to each variant instead",
                need >> 20
            );
            (None, Some(base.model))
        };
        Ok(BaseSide { tokenizer: base.tokenizer, tokens, opts, n_chunks, cache, model })
    }

    fn base(&self) -> Base<'_> {
        match (&self.cache, &self.model) {
            (Some(c), _) => Base::Cached(c),
            (None, Some(b)) => Base::Model(b.as_ref()),
            (None, None) => unreachable!("one of the two is kept"),
        }
    }
}

/// Make one variant in `work`, score it against the base, delete it unless --keep: its
/// sweep.json row, its plot point and the comparison.
fn score_variant(
    args: &SweepArgs,
    base_file: &GgufFile,
    base: &BaseSide,
    v: &Variant,
    work: &Path,
) -> CliResult<(serde_json::Value, Scored, KlReport)> {
    let start = std::time::Instant::now();
    let base_path = args.base.as_deref().expect("checked by the caller");
    let path = work.join(format!("{}.gguf", v.name()));
    crate::llm::check_output(&path, &[base_path])?;
    let (sparsity, made) = match v {
        Variant::Quantize(ty) => {
            let r = quantize_model(base_file, &path, ty, args.allow_requantize, |_, _| {})?;
            (0.0, serde_json::json!({ "quantized_tensors": r.quantized_tensors }))
        }
        Variant::Prune(cfg) => {
            let r = prune_gguf(base_file, &path, cfg, |_, _| {})?;
            (r.sparsity(), crate::prune::report_json(&r, base_path, &path, 0.0))
        }
    };
    let file = GgufFile::open(&path)?;
    let (bpw, bytes) = (bits_per_weight(&file), file.file_size());
    drop(file);
    let m = load(&model_args(args, &path))?;
    check_same_tokenizer(&base.tokenizer, &m.tokenizer)?;
    let bar = bar(base.n_chunks, v.name())?;
    let r = kl_divergence(base.base(), m.model.as_ref(), &base.tokens, base.opts, |p| {
        bar.set_position(p.done as u64);
        bar.set_message(format!("ppl {:.3}, KLD {:.5}", p.ppl, p.mean_kld));
    })?;
    bar.finish_and_clear();
    drop(m);
    if !args.keep {
        let _ = std::fs::remove_file(&path);
    }
    let group = v.group();
    let row = serde_json::json!({
        "name": v.name(),
        "kind": if matches!(v, Variant::Quantize(_)) { "quantize" } else { "prune" },
        "group": group,
        "bits_per_weight": bpw, "file_bytes": bytes, "sparsity": sparsity,
        "ppl": r.ppl.value, "ppl_err": r.ppl.err, "ppl_ratio": r.ppl_ratio.value,
        "mean_kld": r.kld.mean.value, "mean_kld_err": r.kld.mean.err, "same_top": r.same_top.value,
        "made": made, "kl": kl_report::to_json(&r), "seconds": start.elapsed().as_secs_f64(),
    });
    Ok((row, Scored { name: v.name(), group, bpw, sparsity, ppl: r.ppl.value }, r))
}

/// What the plots need of one scored variant.
#[derive(Clone, Debug, PartialEq)]
struct Scored {
    name: String,
    /// The pruning pattern's label (one line per pattern); None for quantized variants.
    group: Option<String>,
    bpw: f64,
    sparsity: f64,
    ppl: f64,
}

fn write_plots(scored: &[Scored], base_ppl: f64, base_bpw: f64, out: &Path) -> CliResult<(PathBuf, PathBuf)> {
    let (a, b) = (out.join("ppl_vs_sparsity.svg"), out.join("ppl_vs_bpw.svg"));
    plot::save(&a, &sparsity_chart(scored, base_ppl).to_svg())?;
    plot::save(&b, &bpw_chart(scored, base_ppl, base_bpw).to_svg())?;
    Ok((a, b))
}

/// Read back what the plots need from a sweep.json.
fn read_scored(json: &serde_json::Value) -> Result<(Vec<Scored>, f64, f64), String> {
    let num =
        |v: &serde_json::Value, key: &str| v[key].as_f64().ok_or_else(|| format!("`{key}` is missing or not a number"));
    let (base_ppl, base_bpw) = (num(&json["base"], "ppl")?, num(&json["base"], "bits_per_weight")?);
    let rows = json["variants"].as_array().ok_or("`variants` is missing")?;
    let scored = rows
        .iter()
        .map(|r| {
            Ok(Scored {
                name: r["name"].as_str().ok_or("a variant has no `name`")?.to_string(),
                group: r["group"].as_str().map(String::from),
                bpw: num(r, "bits_per_weight")?,
                sparsity: num(r, "sparsity")?,
                ppl: num(r, "ppl")?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok((scored, base_ppl, base_bpw))
}

fn replot(json_path: &Path, out: &Path) -> CliResult {
    let text = std::fs::read_to_string(json_path).map_err(|e| format!("{}: {e}", json_path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON ({e})", json_path.display()))?;
    let (scored, base_ppl, base_bpw) = read_scored(&json).map_err(|e| format!("{}: {e}", json_path.display()))?;
    std::fs::create_dir_all(out).map_err(|e| format!("--out {}: {e}", out.display()))?;
    let (a, b) = write_plots(&scored, base_ppl, base_bpw, out)?;
    println!("{} variants from {}; wrote {}, {}", scored.len(), json_path.display(), a.display(), b.display());
    Ok(())
}

/// Perplexity against achieved sparsity, one line per pruning pattern, from the base at 0.
fn sparsity_chart(scored: &[Scored], base_ppl: f64) -> Chart {
    let mut chart = Chart::new("perplexity vs sparsity (magnitude pruning)")
        .x_axis("sparsity of the linear layers", Scale::Linear)
        .y_axis("perplexity", Scale::Log)
        .hline(base_ppl, format!("base {base_ppl:.2}"), "#555");
    let mut groups: Vec<&str> = Vec::new();
    for g in scored.iter().filter_map(|s| s.group.as_deref()) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for g in groups {
        let mut pts = vec![(0.0, base_ppl)];
        pts.extend(scored.iter().filter(|s| s.group.as_deref() == Some(g)).map(|s| (s.sparsity, s.ppl)));
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart = chart.series(Series::line(g, pts).mark(Mark::LineAndPoints));
    }
    chart
}

/// Perplexity against bits per weight of the quantized variants (points, not a line: the
/// types are of different families) and the base.
fn bpw_chart(scored: &[Scored], base_ppl: f64, base_bpw: f64) -> Chart {
    let quant: Vec<&Scored> = scored.iter().filter(|s| s.group.is_none()).collect();
    Chart::new("perplexity vs bits per weight (quantization)")
        .x_axis("bits per weight (all tensors)", Scale::Linear)
        .y_axis("perplexity", Scale::Log)
        .series(
            Series::scatter("quantized", quant.iter().map(|q| (q.bpw, q.ppl)).collect())
                .labels(quant.iter().map(|q| q.name.clone()).collect()),
        )
        .series(Series::scatter("base", vec![(base_bpw, base_ppl)]).color("#555").labels(vec!["base".into()]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_redrawn_from_the_json_a_sweep_wrote() {
        let json = serde_json::json!({
            "base": { "ppl": 40.0, "bits_per_weight": 16.0 },
            "variants": [
                { "name": "q8_0", "group": null, "bits_per_weight": 8.5, "sparsity": 0.0, "ppl": 41.0 },
                { "name": "q4_0", "group": null, "bits_per_weight": 4.5, "sparsity": 0.0, "ppl": 66.0 },
                { "name": "prune-0.5", "group": "unstructured, per row", "bits_per_weight": 16.0, "sparsity": 0.5, "ppl": 500.0 },
                { "name": "prune-0.1", "group": "unstructured, per row", "bits_per_weight": 16.0, "sparsity": 0.1, "ppl": 42.0 },
                { "name": "prune-2of4", "group": "2:4", "bits_per_weight": 16.0, "sparsity": 0.5, "ppl": 1700.0 },
            ],
        });
        let (scored, base_ppl, base_bpw) = read_scored(&json).unwrap();
        assert_eq!((scored.len(), base_ppl, base_bpw), (5, 40.0, 16.0));
        let s = sparsity_chart(&scored, base_ppl);
        assert_eq!(s.series.len(), 2, "one line per pattern");
        assert_eq!(s.series[0].points, [(0.0, 40.0), (0.1, 42.0), (0.5, 500.0)], "from the base, by sparsity");
        let b = bpw_chart(&scored, base_ppl, base_bpw);
        assert_eq!(b.series[0].labels, ["q8_0", "q4_0"]);

        let dir = std::env::temp_dir().join(format!("lamina-replot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sweep.json");
        std::fs::write(&path, json.to_string()).unwrap();
        replot(&path, &dir).unwrap();
        let svg = std::fs::read_to_string(dir.join("ppl_vs_bpw.svg")).unwrap();
        assert!(svg.contains(">q4_0<") && svg.contains(">base<"));
        assert!(std::fs::read_to_string(dir.join("ppl_vs_sparsity.svg")).unwrap().contains("2:4"));
        std::fs::write(&path, r#"{"base": {"ppl": 1}}"#).unwrap();
        let e = replot(&path, &dir).unwrap_err().to_string();
        assert!(e.contains("bits_per_weight"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
