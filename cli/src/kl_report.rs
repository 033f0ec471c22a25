//! `lamina perplexity --kl-base BASE`: the model and a base model score the same chunks;
//! the report is llama-perplexity `--kl-divergence`'s, as a table or as JSON.

use crate::llm::{load, CliResult, ModelArgs};
use indicatif::{ProgressBar, ProgressStyle};
use lamina_model::kl::{kl_divergence, tokenize_for_both, Base, Distribution, KlOptions, KlReport};
use std::path::Path;

/// Run the comparison of `margs.model` against `base` on `text`.
pub fn run(margs: &ModelArgs, base: &Path, text: &str, chunks: Option<usize>, json: bool) -> CliResult {
    // The base runs as it is: a --lora adapter applies to the model under test only, so
    // `-m BASE --lora ADAPTER --kl-base BASE` measures how far fine-tuning moved it.
    let b = load(&ModelArgs { model: Some(base.to_path_buf()), lora: None, ..margs.clone() })?;
    let m = load(margs)?;
    let tokens = tokenize_for_both(&b.tokenizer, &m.tokenizer, text)?;
    let bos = if m.tokenizer.adds_bos() { m.tokenizer.bos_id() } else { None };
    let opts = KlOptions { n_ctx: margs.ctx, max_chunks: chunks, bos };
    let bar = ProgressBar::new(1);
    if json {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} chunks  {msg}  eta {eta}")?);
    let start = std::time::Instant::now();
    let r = kl_divergence(Base::Model(b.model.as_ref()), m.model.as_ref(), &tokens, opts, |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(format!("ppl {:.4}, base {:.4}, KLD {:.5}", p.ppl, p.ppl_base, p.mean_kld));
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    if json {
        let mut v = to_json(&r);
        v["model"] = m.path.display().to_string().into();
        v["base"] = b.path.display().to_string().into();
        v["tokens_in_text"] = tokens.len().into();
        v["seconds"] = secs.into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "{} against the base {}: {} tokens, {} chunks of {}, {} scored, in {secs:.1} s",
            m.path.display(),
            b.path.display(),
            tokens.len(),
            r.chunks,
            r.n_ctx,
            r.tokens_scored
        );
        print_table(&r);
    }
    Ok(())
}

fn estimate(e: lamina_model::kl::Estimate) -> serde_json::Value {
    serde_json::json!({ "value": e.value, "err": e.err })
}

fn distribution(d: &Distribution) -> serde_json::Value {
    let mut v = serde_json::json!({
        "mean": d.mean.value, "mean_err": d.mean.err, "min": d.min, "max": d.max, "median": d.median,
    });
    for &(p, x) in &d.percentiles {
        v[format!("p{}", 100.0 * p)] = x.into();
    }
    v
}

/// The report as JSON (probabilities as fractions, not percentages).
pub fn to_json(r: &KlReport) -> serde_json::Value {
    serde_json::json!({
        "n_ctx": r.n_ctx, "chunks": r.chunks, "tokens_scored": r.tokens_scored,
        "ppl": estimate(r.ppl), "ppl_base": estimate(r.ppl_base),
        "nll_correlation": r.nll_correlation,
        "ln_ppl_ratio": estimate(r.ln_ppl_ratio), "ppl_ratio": estimate(r.ppl_ratio), "ppl_diff": estimate(r.ppl_diff),
        "kld": distribution(&r.kld), "delta_p": distribution(&r.dp),
        "delta_p_rms": estimate(r.dp_rms), "same_top": estimate(r.same_top),
    })
}

/// The table llama-perplexity prints (its labels, so the two can be read side by side).
pub fn print_table(r: &KlReport) {
    println!("\n====== Perplexity statistics ======");
    println!("Mean PPL(Q)                   : {:10.6} ± {:10.6}", r.ppl.value, r.ppl.err);
    println!("Mean PPL(base)                : {:10.6} ± {:10.6}", r.ppl_base.value, r.ppl_base.err);
    println!("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2}%", 100.0 * r.nll_correlation);
    println!("Mean ln(PPL(Q)/PPL(base))     : {:10.6} ± {:10.6}", r.ln_ppl_ratio.value, r.ln_ppl_ratio.err);
    println!("Mean PPL(Q)/PPL(base)         : {:10.6} ± {:10.6}", r.ppl_ratio.value, r.ppl_ratio.err);
    println!("Mean PPL(Q)-PPL(base)         : {:10.6} ± {:10.6}", r.ppl_diff.value, r.ppl_diff.err);

    println!("\n====== KL divergence statistics ======");
    println!("Mean    KLD: {:10.6} ± {:10.6}", r.kld.mean.value, r.kld.mean.err);
    println!("Maximum KLD: {:10.6}", r.kld.max);
    for &(p, v) in &r.kld.percentiles {
        println!("{:<8}KLD: {v:10.6}", percentile_label(p));
    }
    println!("Minimum KLD: {:10.6}", r.kld.min);

    println!("\n====== Token probability statistics ======");
    println!("Mean    Δp: {:6.3} ± {:5.3} %", 100.0 * r.dp.mean.value, 100.0 * r.dp.mean.err);
    println!("Maximum Δp: {:6.3}%", 100.0 * r.dp.max);
    for &(p, v) in &r.dp.percentiles {
        println!("{:<8}Δp: {:6.3}%", percentile_label(p), 100.0 * v);
    }
    println!("Minimum Δp: {:6.3}%", 100.0 * r.dp.min);
    println!("RMS Δp    : {:6.3} ± {:5.3} %", 100.0 * r.dp_rms.value, 100.0 * r.dp_rms.err);
    println!("Same top p: {:6.3} ± {:5.3} %", 100.0 * r.same_top.value, 100.0 * r.same_top.err);
}

fn percentile_label(p: f64) -> String {
    if p == 0.5 {
        "Median".into()
    } else {
        format!("{:4.1}%", 100.0 * p)
    }
}
