//! Test support shared by the workspace's test crates: where the committed fixtures and
//! the reference model are, and the rule for a test that cannot run on this machine
//! (`lamina_tensor::skip_or_fail`: print why and return, or fail under the matching
//! `LAMINA_REQUIRE_*` variable), and the tiny LLaMA GGUF builder (`tiny_llama`). A
//! dev-dependency only, so none of it reaches a library or
//! the `lamina` binary, and its paths may be fixed at build time.

use std::path::PathBuf;

pub mod tiny_llama;

/// The repository root (fixed at build time: tests run from the checkout).
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// A committed file under `tests/fixtures/`.
pub fn fixture(path: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(path)
}

/// The reference model's path: `LAMINA_SMOLLM2`, the library's lookup
/// (`lamina_model::models`), or this checkout's `models/`; whether or not it exists.
pub fn smollm2_path() -> PathBuf {
    lamina_model::models::smollm2()
        .unwrap_or_else(|| repo_root().join("models").join(lamina_model::models::SMOLLM2_FILE))
}

/// For a test that needs the reference model: its path, or `None` after printing how to
/// get it (a failure instead under `LAMINA_REQUIRE_MODEL=1`, as CI sets it).
pub fn smollm2() -> Option<PathBuf> {
    let p = smollm2_path();
    if p.is_file() {
        return Some(p);
    }
    let why = format!("{} is missing: run `scripts/fetch-model.sh` (or set LAMINA_SMOLLM2)", p.display());
    lamina_tensor::skip_or_fail("LAMINA_REQUIRE_MODEL", &why);
    None
}

/// llama.cpp's tokenizer test vocabularies and chat templates
/// (`models/llama.cpp-vocab/`, extracted by `scripts/fetch-llama-vocab.sh`), or `None` after
/// printing how to get them (a failure under `LAMINA_REQUIRE_VOCAB=1`, as CI sets it).
pub fn llama_vocab() -> Option<PathBuf> {
    let dir = repo_root().join("models").join("llama.cpp-vocab");
    if dir.join(".complete").is_file() {
        return Some(dir);
    }
    let why = format!("{} is missing: run `scripts/fetch-llama-vocab.sh`", dir.display());
    lamina_tensor::skip_or_fail("LAMINA_REQUIRE_VOCAB", &why);
    None
}

/// The GPU adapter tests should use, or `None` after printing why (a failure under
/// `LAMINA_REQUIRE_GPU=1`).
pub fn gpu() -> Option<lamina_tensor::Device> {
    lamina_tensor::gpu::test_ordinal().map(lamina_tensor::Device::Gpu)
}

/// The adapter of the Lamina -> PEFT fixture (tests/fixtures/peft/lamina_saved.json) and of
/// the `peft_export` example: rank 4, alpha 8, on every projection of every layer, A from
/// `attach_lora`'s seeded initialisation and B from N(0, 0.02²) with fixed seeds (B starts
/// at zero, which would leave the outputs unchanged). Deterministic, so the bytes
/// `Llama::save_lora` writes for it are fixed.
pub fn reference_adapter(m: &mut lamina_model::Llama) -> lamina_model::Result<lamina_model::lora::LoraConfig> {
    use lamina_model::lora::{LoraConfig, LoraLayer, Target};
    use lamina_tensor::{DType, Tensor};
    let cfg = LoraConfig { rank: 4, alpha: 8.0, dropout: 0.0, rslora: false, targets: Target::LLAMA.to_vec() };
    m.attach_lora(&cfg, 7)?;
    for (i, b) in m.blocks.iter_mut().enumerate() {
        for t in Target::LLAMA {
            let Some(l) = b.lora.get(t).cloned() else { continue };
            let seed = 1000 + 8 * i as u64 + t as u64;
            b.lora.set(t, Some(LoraLayer { b: Tensor::randn(l.b.shape(), 0.0, 0.02, seed, DType::F32)?, ..l }));
        }
    }
    Ok(cfg)
}
