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
use lamina_tensor::Device;
use std::path::{Path, PathBuf};

const CACHE_LIMIT: u64 = 1 << 30;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The base model: an F16/F32 GGUF (a quantized one needs --allow-requantize).
    pub base: PathBuf,
    /// Quantization types, comma-separated (any `quantize --type`; empty for none).
    #[arg(long, value_delimiter = ',', default_value = "q8_0,q5_1,q5_0,q4_1,q4_0")]
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
                lamina_model::prune::Pattern::Unstructured => format!("prune-{:.2}", c.sparsity),
                p => format!("prune-{}", p.to_string().replace(':', "of")),
            },
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
    let variants = variants(&args)?;
    if args.chunk < 4 {
        return Err("--chunk must be at least 4 tokens".into());
    }
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
    let margs = |p: &Path| ModelArgs {
        model: Some(p.to_path_buf()),
        device: args.device,
        ctx: args.chunk,
        dequantize: false,
        lora: None,
    };
    let base_file = GgufFile::open(&args.base)?;
    let base_bpw = bits_per_weight(&base_file);
    let base = load(&margs(&args.base))?;
    let tokens = base.tokenizer.encode(text, false, false)?;
    let bos = if base.tokenizer.adds_bos() { base.tokenizer.bos_id() } else { None };
    let opts = KlOptions { n_ctx: args.chunk, max_chunks: args.chunks, bos };
    let n_chunks = lamina_model::perplexity::chunks(&tokens, args.chunk, args.chunks, bos)?.len();
    let bar_style = ProgressStyle::with_template("{prefix:>14} {bar:30} {pos}/{len} chunks  {msg}  eta {eta}")?;

    let need = BaseCache::bytes_needed(base.model.vocab_size(), args.chunk, n_chunks);
    let cache = if need <= CACHE_LIMIT {
        let bar = ProgressBar::new(n_chunks as u64).with_style(bar_style.clone()).with_prefix("base");
        let c = BaseCache::compute(base.model.as_ref(), &tokens, opts, |d, _| bar.set_position(d as u64))?;
        bar.finish_and_clear();
        Some(c)
    } else {
        eprintln!("the base logits would take {} MiB: the base model runs next to each variant instead", need >> 20);
        None
    };
    println!(
        "{}: {:.2} bits/weight; {} variants, {n_chunks} chunks of {} ({} tokens scored each)",
        args.base.display(),
        base_bpw,
        variants.len(),
        args.chunk,
        n_chunks * (args.chunk - 1 - args.chunk / 2)
    );

    let mut rows = Vec::new();
    let mut results: Vec<(Variant, f64, f64, KlReport)> = Vec::new();
    for (i, v) in variants.iter().enumerate() {
        let start = std::time::Instant::now();
        let path = work.join(format!("{}.gguf", v.name()));
        let (sparsity, made) = match v {
            Variant::Quantize(ty) => {
                let r = quantize_model(&base_file, &path, ty, args.allow_requantize, |_, _| {})?;
                (0.0, serde_json::json!({ "quantized_tensors": r.quantized_tensors }))
            }
            Variant::Prune(cfg) => {
                let r = prune_gguf(&base_file, &path, cfg, |_, _| {})?;
                (r.sparsity(), crate::prune::report_json(&r, &args.base, &path, 0.0))
            }
        };
        let file = GgufFile::open(&path)?;
        let (bpw, bytes) = (bits_per_weight(&file), file.file_size());
        drop(file);
        let m = load(&margs(&path))?;
        check_same_tokenizer(&base.tokenizer, &m.tokenizer)?;
        let bar = ProgressBar::new(n_chunks as u64).with_style(bar_style.clone()).with_prefix(v.name());
        let kl_base = match &cache {
            Some(c) => Base::Cached(c),
            None => Base::Model(base.model.as_ref()),
        };
        let r = kl_divergence(kl_base, m.model.as_ref(), &tokens, opts, |p| {
            bar.set_position(p.done as u64);
            bar.set_message(format!("ppl {:.3}, KLD {:.5}", p.ppl, p.mean_kld));
        })?;
        bar.finish_and_clear();
        drop(m);
        if !args.keep {
            let _ = std::fs::remove_file(&path);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "[{}/{}] {:<14} {:>6.2} bits/weight  sparsity {:>5.1}%  ppl {:>9.3} ± {:<7.3} (x{:.4})  KLD {:.5} ± {:.5}  same top {:5.1}%  ({secs:.0} s)",
            i + 1,
            variants.len(),
            v.name(),
            bpw,
            100.0 * sparsity,
            r.ppl.value,
            r.ppl.err,
            r.ppl_ratio.value,
            r.kld.mean.value,
            r.kld.mean.err,
            100.0 * r.same_top.value
        );
        rows.push(serde_json::json!({
            "name": v.name(),
            "kind": if matches!(v, Variant::Quantize(_)) { "quantize" } else { "prune" },
            "bits_per_weight": bpw, "file_bytes": bytes, "sparsity": sparsity,
            "ppl": r.ppl.value, "ppl_err": r.ppl.err, "ppl_ratio": r.ppl_ratio.value,
            "mean_kld": r.kld.mean.value, "mean_kld_err": r.kld.mean.err, "same_top": r.same_top.value,
            "made": made, "kl": kl_report::to_json(&r), "seconds": secs,
        }));
        results.push((v.clone(), bpw, sparsity, r));
    }

    let base_ppl = results[0].3.ppl_base;
    let json = serde_json::json!({
        "base": { "path": args.base.display().to_string(), "bits_per_weight": base_bpw,
                  "ppl": base_ppl.value, "ppl_err": base_ppl.err },
        "n_ctx": args.chunk, "chunks": n_chunks, "tokens_in_text": tokens.len(),
        "variants": rows,
    });
    let json_path = args.out.join("sweep.json");
    plot::save(&json_path, &serde_json::to_string_pretty(&json)?)?;
    let (a, b) = (args.out.join("ppl_vs_sparsity.svg"), args.out.join("ppl_vs_bpw.svg"));
    plot::save(&a, &sparsity_chart(&results, base_ppl.value).to_svg())?;
    plot::save(&b, &bpw_chart(&results, base_ppl.value, base_bpw).to_svg())?;
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

/// Perplexity against achieved sparsity, one line per pruning pattern, from the base at 0.
fn sparsity_chart(results: &[(Variant, f64, f64, KlReport)], base_ppl: f64) -> Chart {
    let mut chart = Chart::new("perplexity vs sparsity (magnitude pruning)")
        .x_axis("sparsity of the linear layers", Scale::Linear)
        .y_axis("perplexity", Scale::Log)
        .hline(base_ppl, format!("base {base_ppl:.2}"), "#555");
    let mut patterns: Vec<String> = Vec::new();
    for (v, _, _, _) in results {
        if let Variant::Prune(c) = v {
            let name = match c.pattern {
                lamina_model::prune::Pattern::Unstructured => format!("unstructured, per {:?}", c.scope).to_lowercase(),
                p => p.to_string(),
            };
            if !patterns.contains(&name) {
                patterns.push(name);
            }
        }
    }
    for name in patterns {
        let mut pts = vec![(0.0, base_ppl)];
        for (v, _, s, r) in results {
            if let Variant::Prune(c) = v {
                let this = match c.pattern {
                    lamina_model::prune::Pattern::Unstructured => {
                        format!("unstructured, per {:?}", c.scope).to_lowercase()
                    }
                    p => p.to_string(),
                };
                if this == name {
                    pts.push((*s, r.ppl.value));
                }
            }
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart = chart.series(Series::line(name, pts).mark(Mark::LineAndPoints));
    }
    chart
}

/// Perplexity against bits per weight for the quantization types, and the base.
fn bpw_chart(results: &[(Variant, f64, f64, KlReport)], base_ppl: f64, base_bpw: f64) -> Chart {
    let mut quant: Vec<(f64, f64, String)> = results
        .iter()
        .filter_map(|(v, bpw, _, r)| match v {
            Variant::Quantize(t) => Some((*bpw, r.ppl.value, t.name.to_lowercase())),
            _ => None,
        })
        .collect();
    quant.sort_by(|a, b| a.0.total_cmp(&b.0));
    Chart::new("perplexity vs bits per weight (quantization)")
        .x_axis("bits per weight (all tensors)", Scale::Linear)
        .y_axis("perplexity", Scale::Log)
        .series(
            Series::line("quantized", quant.iter().map(|q| (q.0, q.1)).collect())
                .mark(Mark::LineAndPoints)
                .labels(quant.iter().map(|q| q.2.clone()).collect()),
        )
        .series(Series::scatter("base", vec![(base_bpw, base_ppl)]).color("#555").labels(vec!["base".into()]))
}
