//! `lamina eval --tasks ...`: read every task first (a bad file fails before the model
//! loads), run them in order with a progress bar each, then print the table (or the JSON)
//! and write the report as DIR/LABEL.json and DIR/LABEL.html.

use crate::eval::EvalArgs;
use crate::eval_report;
use crate::llm::{load, peak_memory_mib, CliResult, ModelArgs};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lamina_train::eval::{expand, run_task, Env, JudgeModel, Kind, Memory, Report, RunOptions};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// Where task names are looked up: `data/eval` under the working directory, then the one
/// of the source checkout the binary was built in (`models::checkout_dir`), if any.
pub fn task_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("data/eval")];
    if let Some(repo) = lamina_model::models::checkout_dir().map(|d| d.join("data/eval")) {
        if repo.canonicalize().ok() != dirs[0].canonicalize().ok() {
            dirs.push(repo);
        }
    }
    dirs
}

/// The task names the directories hold, for the message when none is given.
fn known_tasks(dirs: &[PathBuf]) -> Vec<String> {
    let mut names: Vec<String> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".jsonl").map(String::from))
        .collect();
    names.sort();
    names.dedup();
    names
}

pub fn run(args: EvalArgs) -> CliResult {
    let dirs = task_dirs();
    if args.tasks.is_empty() {
        return Err(format!(
            "say what to evaluate: --tasks NAME,... (task files in data/eval: {}), or --data FILE for exact match",
            known_tasks(&dirs).join(", ")
        )
        .into());
    }
    if args.limit == Some(0) {
        return Err("--limit must be at least 1".into());
    }
    let tasks = expand(&args.tasks, &dirs)?;
    if tasks.iter().any(|t| t.spec.kind == Kind::Kl) && args.kl_base.is_none() {
        return Err("a `kl` task needs the base model to compare with: --kl-base PATH".into());
    }
    let m = load(&args.model)?;
    let other = |p: &Option<PathBuf>| -> CliResult<Option<crate::llm::Loaded>> {
        match p {
            Some(p) => Ok(Some(load(&ModelArgs { model: Some(p.clone()), lora: None, ..args.model.clone() })?)),
            None => Ok(None),
        }
    };
    let base = other(&args.kl_base)?;
    let judge_loaded = other(&args.judge)?;
    let judge = judge_loaded.as_ref().map(|j| JudgeModel {
        model: j.model.as_ref(),
        tokenizer: &j.tokenizer,
        template: &j.template,
        name: j.path.display().to_string(),
    });
    let memory = || Memory { rss_mib: peak_memory_mib(), heap_mib: Some(crate::heap::peak_heap_mib()) };
    let options = RunOptions {
        num_fewshot: args.num_fewshot,
        seed: args.seed,
        limit: args.limit,
        ctx: args.model.ctx,
        samples: args.samples,
    };
    let mut env = Env::new(m.model.as_ref(), &m.tokenizer, &m.template, options);
    env.base = base.as_ref().map(|b| b.model.as_ref());
    env.base_tokenizer = base.as_ref().map(|b| &b.tokenizer);
    env.memory = Some(&memory);
    env.judge = judge.as_ref();

    let mut report = Report { settings: settings(&args, &m.path), tasks: Vec::new() };
    for task in &tasks {
        let bar = ProgressBar::new(0);
        if args.json {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(ProgressStyle::with_template("{prefix:>16} {bar:30} {pos}/{len}  {msg}  eta {eta}")?);
        bar.set_prefix(task.spec.name.clone());
        let result = run_task(&env, task, &mut |p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(p.message.clone());
        })?;
        bar.finish_and_clear();
        report.tasks.push(result);
    }
    let label = report.label();
    let json_path = args.out.join(format!("{label}.json"));
    let html_path = args.out.join(format!("{label}.html"));
    write(&args.out, &json_path, &(serde_json::to_string_pretty(&report.to_json())? + "\n"))?;
    write(&args.out, &html_path, &eval_report::html(std::slice::from_ref(&report)))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", eval_report::table(std::slice::from_ref(&report), args.breakdown));
        println!("report: {} and {}", json_path.display(), html_path.display());
    }
    Ok(())
}

fn write(dir: &Path, path: &Path, text: &str) -> CliResult {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::plot::save(path, text)?;
    Ok(())
}

/// What the report records about the run: enough to reproduce it and to name it.
fn settings(args: &EvalArgs, model: &Path) -> Map<String, Value> {
    let stem = |p: &Path| p.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let label = args.label.clone().unwrap_or_else(|| {
        let mut l = stem(model).trim_end_matches(".gguf").to_string();
        if let Some(lora) = &args.model.lora {
            l = format!("{l}+{}", stem(lora.canonicalize().as_deref().unwrap_or(lora)));
        }
        l
    });
    let v = json!({
        "label": label,
        "model": model.display().to_string(),
        "lora": args.model.lora.as_ref().map(|p| p.display().to_string()),
        "device": format!("{:?}", args.model.device),
        "dequantize": args.model.dequantize,
        "tasks_requested": args.tasks,
        "num_fewshot": args.num_fewshot,
        "seed": args.seed,
        "limit": args.limit,
        "ctx": args.model.ctx,
        "kl_base": args.kl_base.as_ref().map(|p| p.display().to_string()),
        "judge": args.judge.as_ref().map(|p| p.display().to_string()),
        "threads": lamina_tensor::threads(),
        "cpu": crate::bench::cpu_model(),
        "lamina": env!("CARGO_PKG_VERSION"),
    });
    v.as_object().cloned().unwrap_or_default()
}
