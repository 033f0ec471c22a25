//! LLaMA-family models as things a fine-tuning run trains: LoRA adapters (over float or
//! quantized base weights: QLoRA is LoRA over a `Proj::Quant` base), IA³ vectors, a
//! soft prompt or key/value prefixes, exported in PEFT's layout, or every weight (full fine-tuning) exported as a GGUF next
//! to the source's metadata.

use super::{TrainBatch, Trainee};
use crate::TrainError;
use lamina_model::bottleneck::BottleneckConfig;
use lamina_model::gguf::{write_with_replacements, GgufFile};
use lamina_model::lora::LoraConfig;
use lamina_model::prefix::PrefixTuningConfig;
use lamina_model::prompt::{PTuningConfig, PromptTuningConfig};
use lamina_model::Llama;
use lamina_tensor::quant::GgmlType;
use lamina_tensor::Tensor;
use std::path::Path;

fn loss_of(model: &Llama, b: &TrainBatch, seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
    Ok(model.loss(&b.tokens, &b.labels, b.batch, seed)?)
}

/// LoRA (or QLoRA) on a LLaMA model that has adapters attached.
pub struct LlamaLora<'a> {
    pub model: &'a Llama,
    pub config: LoraConfig,
    /// `base_model_name_or_path` in the adapter's config.
    pub base_name: String,
}

impl Trainee for LlamaLora<'_> {
    fn loss(&self, b: &TrainBatch, seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        loss_of(self.model, b, seed)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.lora_parameters()
    }

    fn export(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.model.save_lora(dir, &self.config, &self.base_name)?)
    }
}

/// IA³ vectors on a LLaMA model that has them attached.
pub struct LlamaIa3<'a> {
    pub model: &'a Llama,
    /// `base_model_name_or_path` in the adapter's config.
    pub base_name: String,
}

impl Trainee for LlamaIa3<'_> {
    fn loss(&self, b: &TrainBatch, seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        loss_of(self.model, b, seed)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.ia3_parameters()
    }

    fn export(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.model.save_ia3(dir, &self.base_name)?)
    }
}

/// A soft prompt (prompt tuning) on a LLaMA model that has one attached.
pub struct LlamaPrompt<'a> {
    pub model: &'a Llama,
    pub config: PromptTuningConfig,
    /// `base_model_name_or_path` in the adapter's config.
    pub base_name: String,
}

impl Trainee for LlamaPrompt<'_> {
    fn loss(&self, b: &TrainBatch, seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        loss_of(self.model, b, seed)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.prompt_parameters()
    }

    fn export(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.model.save_prompt(dir, &self.config, &self.base_name)?)
    }
}

/// P-tuning's embeddings and prompt encoder on a LLaMA model that has them attached.
pub struct LlamaPTuning<'a> {
    pub model: &'a Llama,
    pub config: PTuningConfig,
    /// `base_model_name_or_path` in the adapter's config.
    pub base_name: String,
}

impl Trainee for LlamaPTuning<'_> {
    fn loss(&self, b: &TrainBatch, seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        loss_of(self.model, b, seed)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.prompt_parameters()
    }

    fn export(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.model.save_p_tuning(dir, &self.config, &self.base_name)?)
    }
}

/// Bottleneck adapters on a LLaMA model that has them attached.
pub struct LlamaBottleneck<'a> {
    pub model: &'a Llama,
    pub config: BottleneckConfig,
    /// `base_model_name_or_path` in the adapter's config.
    pub base_name: String,
}

impl Trainee for LlamaBottleneck<'_> {
    fn loss(&self, b: &TrainBatch, seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        loss_of(self.model, b, seed)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.bottleneck_parameters()
    }

    fn export(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.model.save_bottleneck(dir, &self.config, &self.base_name)?)
    }
}

/// Key/value prefixes (prefix tuning) on a LLaMA model that has them attached.
pub struct LlamaPrefix<'a> {
    pub model: &'a Llama,
    pub config: PrefixTuningConfig,
    /// `base_model_name_or_path` in the adapter's config.
    pub base_name: String,
}

impl Trainee for LlamaPrefix<'_> {
    fn loss(&self, b: &TrainBatch, seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        loss_of(self.model, b, seed)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.model.prefix_parameters()
    }

    fn export(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(self.model.save_prefix(dir, &self.config, &self.base_name)?)
    }
}

/// Every weight of a LLaMA model (float weights, made trainable by `make_trainable`).
pub struct LlamaFull<'a> {
    pub model: &'a Llama,
    pub params: Vec<(String, Tensor)>,
    /// The GGUF the model came from: its metadata and layout are kept on export.
    pub source: &'a GgufFile,
}

impl Trainee for LlamaFull<'_> {
    fn loss(&self, b: &TrainBatch, seed: Option<u64>) -> Result<(Tensor, usize), TrainError> {
        loss_of(self.model, b, seed)
    }

    fn parameters(&self) -> Vec<(String, Tensor)> {
        self.params.clone()
    }

    /// `model.gguf`: matrices in F16, vectors in F32 (llama.cpp needs F32 norms).
    fn export(&self, dir: &Path) -> Result<(), TrainError> {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let replace = self.params.iter().map(|(n, t)| (n.clone(), t.detach())).collect();
        write_with_replacements(
            self.source,
            &dir.join("model.gguf"),
            &replace,
            |info| if info.ne.len() == 2 { GgmlType::F16 } else { GgmlType::F32 },
            |_, _| {},
        )?;
        Ok(())
    }
}
