//! `lamina eval --data FILE`: exact-match accuracy of a model on a fine-tuning JSONL test
//! set (the answers of the last assistant turns), by greedy generation, with a table of the
//! first mistakes.

use crate::eval::EvalArgs;
use crate::llm::{load, CliResult};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lamina_train::sft::{evaluate, read_examples, EncodeOptions, Encoder, EvalOptions, EvalRecord, PromptFormat};
use std::path::Path;

pub fn run(args: EvalArgs, data: &Path) -> CliResult {
    if args.max_tokens == 0 {
        return Err("--max-tokens must be at least 1".into());
    }
    if args.limit == Some(0) {
        return Err("--limit must be at least 1".into());
    }
    // Read the data before loading the model: a bad file fails in milliseconds.
    let (records, data_report) = read_examples(data, args.strict)?;
    for p in &data_report.problems {
        eprintln!("{}: skipped {p}", data.display());
    }
    if records.is_empty() {
        return Err(format!("{}: no usable example ({})", data.display(), data_report.summary()).into());
    }
    let m = load(&args.model)?;
    let format = if args.raw { PromptFormat::Raw } else { PromptFormat::Template };
    let encoder = Encoder::new(
        &m.tokenizer,
        Some(&m.template),
        EncodeOptions { max_len: args.model.ctx, prompt_format: format },
    )?;
    let total = args.limit.map_or(records.len(), |n| n.min(records.len()));
    let bar = ProgressBar::new(total as u64);
    if args.json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} examples  {msg}  eta {eta}")?);
    let (mut done, mut right) = (0usize, 0usize);
    let options = EvalOptions { max_new_tokens: args.max_tokens, limit: args.limit, ctx: args.model.ctx };
    let report = evaluate(m.model.as_ref(), &encoder, &records, &options, |r| {
        done += 1;
        right += usize::from(r.correct);
        bar.inc(1);
        bar.set_message(format!("accuracy {:.1}%", 100.0 * right as f64 / done as f64));
    })?;
    bar.finish_and_clear();
    let skipped: Vec<(String, Vec<usize>)> =
        report.skipped.iter().map(|(reason, lines)| (reason.name().to_string(), lines.clone())).collect();

    if args.json {
        let records: Vec<serde_json::Value> = report.records.iter().map(record_json).collect();
        let v = serde_json::json!({
            "model": m.path.display().to_string(),
            "data": data.display().to_string(),
            "evaluated": report.records.len(),
            "correct": report.correct(),
            "accuracy": report.accuracy(),
            "skipped": skipped.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "data_report": data_report.to_json(),
            "prompt_tokens": report.prompt_tokens(),
            "generated_tokens": report.generated_tokens(),
            "seconds": report.seconds,
            "tokens_per_s": report.tokens_per_s(),
            "max_tokens": args.max_tokens,
            "records": records,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }

    print_mistakes(&report.records, args.show);
    for (reason, lines) in &skipped {
        println!("skipped {} example(s), {reason}: lines {}", lines.len(), list(lines));
    }
    println!(
        "exact match {}/{} = {:.1}%  ({} generated tokens in {:.1} s, {:.1} tokens/s; data: {})",
        report.correct(),
        report.records.len(),
        100.0 * report.accuracy(),
        report.generated_tokens(),
        report.seconds,
        report.tokens_per_s(),
        data_report.summary()
    );
    Ok(())
}

fn record_json(r: &EvalRecord) -> serde_json::Value {
    serde_json::json!({
        "line": r.line, "question": r.question, "reference": r.reference, "output": r.output,
        "correct": r.correct, "prompt_tokens": r.prompt_tokens, "generated_tokens": r.generated_tokens,
        "finished": r.finished,
    })
}

/// A table of the first `k` wrong answers: line, expected, got, question.
fn print_mistakes(records: &[EvalRecord], k: usize) {
    let wrong: Vec<&EvalRecord> = records.iter().filter(|r| !r.correct).take(k).collect();
    if wrong.is_empty() {
        return;
    }
    let total = records.iter().filter(|r| !r.correct).count();
    println!("first {} of {} mistakes:", wrong.len(), total);
    println!("{:>6}  {:<24}  {:<32}  question", "line", "expected", "got");
    for r in wrong {
        let got = if r.finished { cell(&r.output, 32) } else { cell(&format!("{}…", r.output), 32) };
        println!("{:>6}  {:<24}  {:<32}  {}", r.line, cell(&r.reference, 24), got, cell(&r.question, 60));
    }
}

/// One table cell: newlines and tabs escaped (so a row stays a row), cut to `width` characters.
fn cell(s: &str, width: usize) -> String {
    let flat = s.replace('\n', "\\n").replace('\t', "\\t");
    if flat.chars().count() <= width {
        return flat;
    }
    let mut out: String = flat.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// "3, 7, 9" (at most 20, then "... (N more)").
fn list(lines: &[usize]) -> String {
    let shown: Vec<String> = lines.iter().take(20).map(usize::to_string).collect();
    let more = lines.len().saturating_sub(20);
    if more > 0 {
        format!("{} ... ({more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_on_one_line_and_within_width() {
        assert_eq!(cell("a\nb", 10), "a\\nb");
        assert_eq!(cell("abcdefghij", 5), "abcd…");
        assert_eq!(cell("ééééé", 5), "ééééé");
        assert_eq!(list(&[1, 2]), "1, 2");
        assert!(list(&(0..25).collect::<Vec<_>>()).ends_with("(5 more)"));
    }
}
