//! The architecture registry: one table ([`FAMILIES`]) maps a GGUF `general.architecture`
//! and a Hugging Face `config.json` `model_type` to a family, and a family to the code
//! that loads it. LLaMA-shaped families (Mistral, Qwen2/3, Phi-3, Gemma 2/3) are
//! configuration of one decoder (`crate::llama`): a [`Decoder`] value saying how their
//! hyperparameters, tensor names and block options differ from LLaMA's. Families with a
//! genuinely different block have their own model code (`gpt.rs`, `bert.rs`).
//!
//! Adding a family: one file here defining its `FAMILY`, and one line in [`FAMILIES`].

mod bert;
mod decoder;
mod gemma2;
mod gemma3;
pub(crate) mod gguf_hparams;
mod gpt2;
pub(crate) mod hf_hparams;
mod llama;
mod mistral;
mod phi3;
mod qwen2;
mod qwen3;

pub use decoder::{Decoder, LLAMA_SHAPED};

use crate::bert::Bert;
use crate::causal_lm::CausalLm;
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::gpt::Gpt;
use crate::hf::{HfConfig, HfModel};
use crate::llama::{Llama, LoadOptions};

/// A family of architectures and where its loader is.
pub struct Family {
    /// The family's name in messages and in the README's table.
    pub name: &'static str,
    /// GGUF `general.architecture` values it loads.
    pub gguf: &'static [&'static str],
    /// Hugging Face `model_type` values it loads.
    pub hf: &'static [&'static str],
    pub kind: Kind,
}

/// What kind of model a family is, which decides the loader.
pub enum Kind {
    /// A LLaMA-shaped decoder (`crate::llama::Llama`), described by configuration.
    Decoder(Decoder),
    /// GPT-2 (`crate::gpt::Gpt`): learned positions, LayerNorm, fused qkv, GELU MLP.
    Gpt2,
    /// A BERT-style encoder (`crate::bert::Bert`): bidirectional, pooled embeddings.
    Encoder,
}

/// Every family Lamina runs, one line each.
pub const FAMILIES: &[&Family] = &[
    &llama::FAMILY,
    &mistral::FAMILY,
    &qwen2::FAMILY,
    &qwen3::FAMILY,
    &phi3::FAMILY,
    &gemma2::FAMILY,
    &gemma3::FAMILY,
    &gpt2::FAMILY,
    &bert::FAMILY,
];

fn supported(names: impl Fn(&Family) -> &'static [&'static str]) -> String {
    FAMILIES.iter().flat_map(|f| names(f).iter().copied()).collect::<Vec<_>>().join(", ")
}

/// The family of a GGUF architecture name.
pub fn by_gguf_arch(arch: &str) -> Result<&'static Family> {
    FAMILIES.iter().copied().find(|f| f.gguf.contains(&arch)).ok_or_else(|| {
        ModelError::Unsupported(format!(
            "GGUF architecture `{arch}` (general.architecture); supported: {}",
            supported(|f| f.gguf)
        ))
    })
}

/// The family of a Hugging Face `config.json`.
pub fn by_hf(h: &HfConfig) -> Result<&'static Family> {
    let ty = h.model_type.as_deref().unwrap_or("");
    FAMILIES.iter().copied().find(|f| f.hf.contains(&ty)).ok_or_else(|| {
        ModelError::Unsupported(format!(
            "Hugging Face model_type `{ty}` (config.json; architectures {:?}); supported: {}",
            h.architectures,
            supported(|f| f.hf)
        ))
    })
}

impl Family {
    /// The decoder description, or an error naming `what` needs one.
    pub fn decoder(&self, what: &str) -> Result<&Decoder> {
        match &self.kind {
            Kind::Decoder(d) => Ok(d),
            Kind::Gpt2 | Kind::Encoder => Err(ModelError::Unsupported(format!(
                "{what}: {} is not a LLaMA-shaped decoder (supported: {})",
                self.name,
                FAMILIES
                    .iter()
                    .filter(|f| matches!(f.kind, Kind::Decoder(_)))
                    .map(|f| f.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// The decoder family of a GGUF file (an error for GPT-2 or an unknown architecture).
pub fn decoder_for_gguf(f: &GgufFile) -> Result<&'static Decoder> {
    let arch = f.architecture()?;
    by_gguf_arch(arch)?.decoder(&format!("GGUF architecture `{arch}`"))
}

/// The decoder family of a Hugging Face config.
pub fn decoder_for_hf(h: &HfConfig) -> Result<&'static Decoder> {
    let ty = h.model_type.as_deref().unwrap_or("");
    by_hf(h)?.decoder(&format!("Hugging Face model_type `{ty}`"))
}

/// A loaded model of any family.
#[allow(clippy::large_enum_variant)] // one per process, moved once
pub enum Model {
    Decoder(Llama),
    Gpt2(Gpt),
    Encoder(Bert),
}

impl Model {
    /// For generation, chat, perplexity and benchmarks (an error for an encoder).
    pub fn into_causal_lm(self) -> Result<Box<dyn CausalLm>> {
        match self {
            Model::Decoder(m) => Ok(Box::new(m)),
            Model::Gpt2(m) => Ok(Box::new(m)),
            Model::Encoder(_) => Err(ModelError::Unsupported(
                "a BERT encoder does not generate text: it gives embeddings (`Bert::embed`)".into(),
            )),
        }
    }

    /// The decoder (for LoRA, merging, training), or an error naming what needed it.
    pub fn into_decoder(self, what: &str) -> Result<Llama> {
        match self {
            Model::Decoder(m) => Ok(m),
            Model::Gpt2(_) => Err(ModelError::Unsupported(format!("{what}: GPT-2 models have no adapters"))),
            Model::Encoder(_) => Err(ModelError::Unsupported(format!("{what}: BERT encoders have no adapters here"))),
        }
    }

    /// The encoder (for embeddings), or an error naming what needed it.
    pub fn into_encoder(self, what: &str) -> Result<Bert> {
        match self {
            Model::Encoder(m) => Ok(m),
            _ => Err(ModelError::Unsupported(format!("{what}: needs a BERT-style encoder (an embedding model)"))),
        }
    }
}

/// Load any supported GGUF model.
pub fn load_gguf(f: &GgufFile, opts: LoadOptions) -> Result<Model> {
    let family = by_gguf_arch(f.architecture()?)?;
    Ok(match &family.kind {
        Kind::Decoder(_) => Model::Decoder(Llama::from_gguf_with(f, opts)?),
        Kind::Gpt2 => Model::Gpt2(Gpt::from_gguf(f, opts.device)?),
        Kind::Encoder => Model::Encoder(Bert::from_gguf(f, opts)?),
    })
}

/// Load any supported Hugging Face directory.
pub fn load_hf(m: &HfModel, opts: LoadOptions) -> Result<Model> {
    let family = by_hf(&m.config)?;
    Ok(match &family.kind {
        Kind::Decoder(_) => Model::Decoder(Llama::from_hf(m, opts.device)?),
        Kind::Encoder => Model::Encoder(Bert::from_hf(m, opts.device)?),
        Kind::Gpt2 => {
            return Err(ModelError::Unsupported(format!(
                "{}: GPT-2 loads from GGUF only (convert the directory with llama.cpp's convert_hf_to_gguf.py)",
                m.dir.display()
            )))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_belongs_to_one_family() {
        let mut seen = std::collections::BTreeSet::new();
        for f in FAMILIES {
            for g in f.gguf {
                assert!(seen.insert(format!("gguf:{g}")), "GGUF `{g}` is claimed twice");
            }
            for h in f.hf {
                assert!(seen.insert(format!("hf:{h}")), "model_type `{h}` is claimed twice");
            }
        }
        assert_eq!(by_gguf_arch("qwen2").unwrap().name, "Qwen2");
        let err = by_gguf_arch("mamba").err().unwrap().to_string();
        assert!(err.contains("`mamba`") && err.contains("general.architecture") && err.contains("gemma2"), "{err}");
    }
}
