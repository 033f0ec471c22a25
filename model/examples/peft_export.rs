//! Writes an adapter saved by Lamina, for Hugging Face PEFT to load (the Lamina -> PEFT
//! direction of scripts/reference/peft_reference.py). Checked by hand (Lamina's logits
//! against PEFT's), or made into the committed fixture that model/tests/peft_interop.rs
//! checks without Python:
//!
//!     cargo run --release -p lamina-model --example peft_export -- /tmp/lamina-adapter
//!     python3 scripts/reference/peft_reference.py \
//!         --model models/SmolLM2-135M-Instruct.Q4_1.gguf --check-lamina /tmp/lamina-adapter
//!     python3 scripts/reference/peft_reference.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
//!         --lamina-fixture /tmp/lamina-adapter --out tests/fixtures/peft/lamina_saved.json
//!
//! The adapter (`lamina_testkit::reference_adapter`: rank 4, alpha 8, every projection of
//! every layer, B random so that it changes the outputs) goes on SmolLM2 with f32 weights
//! and is saved with `Llama::save_lora`; a DIR that already holds an adapter (`lamina finetune`'s
//! `final/`, say) is used as it is instead. It is loaded back with `Llama::load_lora`
//! (the `--lora` path of the CLI), and that model's top-5 logits and 16 greedy tokens
//! for a prompt go to `lamina_logits.json` in DIR.

use lamina_model::causal_lm::{CausalLm, LogitsFor};
use lamina_model::gguf::GgufFile;
use lamina_model::sampling::argmax;
use lamina_model::{BpeTokenizer, Llama, LoadOptions};
use lamina_tensor::Device;
use serde_json::json;
use std::path::{Path, PathBuf};

/// The ChatML turn "What is the capital of France?" (tests/fixtures/smollm2).
const PROMPT: [u32; 16] = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198];
const GREEDY: usize = 16;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: peft_export DIR")?);
    let f = GgufFile::open(lamina_testkit::smollm2_path())?;
    let load = || Llama::from_gguf_with(&f, LoadOptions { device: Device::Cpu, keep_quantized: false });
    if dir.join("adapter_config.json").exists() {
        eprintln!("{} already holds an adapter (from `lamina finetune`?): checking that one", dir.display());
    } else {
        write_random_adapter(load()?, &dir)?;
    }

    let mut m = load()?;
    m.load_lora(&dir, false)?;
    let _g = lamina_tensor::NoGradGuard::new();
    let mut cache = m.new_cache(PROMPT.len() + GREEDY)?;
    let mut logits = m.forward(&PROMPT, &mut cache, LogitsFor::Last)?.to_vec_f32()?;
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let top5: Vec<_> = order[..5].iter().map(|&i| json!([i, logits[i]])).collect();
    let mut greedy = Vec::new();
    for _ in 0..GREEDY {
        let next = argmax(&logits);
        greedy.push(next);
        logits = m.forward(&[next], &mut cache, LogitsFor::Last)?.to_vec_f32()?;
    }
    let text = BpeTokenizer::from_gguf(&f)?.decode(&greedy, false)?;
    println!("top-5 {}\ngreedy {text:?}", json!(top5));
    let out = json!({ "cases": [{ "name": "chatml", "ids": PROMPT, "top5": top5, "greedy": greedy, "text": text }] });
    std::fs::write(dir.join("lamina_logits.json"), serde_json::to_string_pretty(&out)?)?;
    Ok(())
}

/// The fixture's deterministic adapter (`lamina_testkit::reference_adapter`), written with
/// `Llama::save_lora`.
fn write_random_adapter(mut m: Llama, dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let cfg = lamina_testkit::reference_adapter(&mut m)?;
    m.save_lora(dir, &cfg, "HuggingFaceTB/SmolLM2-135M-Instruct")?;
    Ok(())
}
