//! The model an LLM command uses when `--model` is not given: SmolLM2-135M-Instruct, found
//! where `lamina_model::models` looks, or downloaded on first use by `fetch-model.sh`
//! (built into the binary, so an installed `lamina` needs no checkout) into
//! `models::download_dir()`.

use crate::llm::CliResult;
use lamina_model::models;
use std::path::PathBuf;

/// The fetch script, run with `LAMINA_MODELS` set to the directory to fill.
const FETCH_SCRIPT: &str = include_str!("../../scripts/fetch-model.sh");

/// The model file to use: the given one, or the default, fetched when missing.
pub fn model_path(arg: &Option<PathBuf>) -> CliResult<PathBuf> {
    if let Some(p) = arg {
        return Ok(p.clone());
    }
    if let Some(p) = models::smollm2() {
        if p.is_file() || std::env::var_os("LAMINA_SMOLLM2").is_some() {
            return Ok(p); // a wrong LAMINA_SMOLLM2 is reported when the file is opened
        }
    }
    let dir = models::download_dir().ok_or("no directory to download the default model into: set LAMINA_MODELS")?;
    eprintln!("{} is not here yet: fetching it into {}", models::SMOLLM2_FILE, dir.display());
    let status = std::process::Command::new("bash").arg("-c").arg(FETCH_SCRIPT).env("LAMINA_MODELS", &dir).status()?;
    let path = dir.join(models::SMOLLM2_FILE);
    if !status.success() || !path.is_file() {
        return Err(format!("fetching the default model failed; run scripts/fetch-model.sh by hand, or set LAMINA_SMOLLM2 to a copy (searched: {})", search_list()).into());
    }
    Ok(path)
}

fn search_list() -> String {
    models::search_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
}
