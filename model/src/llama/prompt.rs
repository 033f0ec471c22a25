//! Prompt tuning and P-tuning on a LLaMA model: a soft prompt (or P-tuning's embeddings
//! and encoder) attached, trained, saved and loaded in PEFT's layout; put before each sequence of a training batch, and run once into every
//! new KV cache (pinned there) at inference.

use super::block::PassContext;
use super::{Llama, Pass};
use crate::error::{ModelError, Result};
use crate::kv_cache::KvCache;
use crate::prompt::{peft, PTuningConfig, PromptInit, PromptTuningConfig, SoftPrompt};
use lamina_tensor::Tensor;
use std::path::Path;

impl Llama {
    /// Attach fresh virtual tokens (replacing any): N(0, 1) from `seed`, or the embeddings
    /// of `text_ids` (the init text's tokens) cut or repeated to K.
    pub fn attach_prompt(&mut self, cfg: &PromptTuningConfig, text_ids: &[u32], seed: u64) -> Result<()> {
        cfg.validate()?;
        self.check_prompt_support()?;
        let k = cfg.num_virtual_tokens;
        let prompt = match &cfg.init {
            PromptInit::Random => SoftPrompt::random(k, self.config.dim, seed, self.device)?,
            PromptInit::Text(_) => {
                let ids = SoftPrompt::text_ids(text_ids, k)?;
                let e = self.embed.lookup(&ids, self.device)?.detach().contiguous()?;
                SoftPrompt::plain(e.requires_grad_())
            }
        };
        self.prompt = Some(prompt);
        Ok(())
    }

    /// Attach fresh P-tuning embeddings and prompt encoder (replacing any soft prompt).
    pub fn attach_p_tuning(&mut self, cfg: &PTuningConfig, seed: u64) -> Result<()> {
        self.check_prompt_support()?;
        self.prompt = Some(SoftPrompt::p_tuning(cfg, self.config.dim, seed, self.device)?);
        Ok(())
    }

    /// Families that scale their embeddings (Gemma) do it in different places in
    /// transformers (in the model's forward for Gemma 2, so PEFT's prompts are scaled too;
    /// inside the embedding module for Gemma 3, so they are not): refused rather than guessed.
    fn check_prompt_support(&self) -> Result<()> {
        if self.config.embed_scale {
            return Err(ModelError::Unsupported(format!(
                "prompt tuning on {} models (scaled embeddings) is not supported",
                self.config.arch
            )));
        }
        Ok(())
    }

    /// Virtual tokens put before every sequence (0 without a soft prompt).
    pub fn virtual_tokens(&self) -> usize {
        self.prompt.as_ref().map_or(0, SoftPrompt::len)
    }

    /// The soft prompt with its PEFT name.
    pub fn prompt_parameters(&self) -> Vec<(String, Tensor)> {
        self.prompt.iter().flat_map(SoftPrompt::parameters).collect()
    }

    /// Write the soft prompt to `dir` in PEFT's layout.
    pub fn save_prompt(&self, dir: &Path, cfg: &PromptTuningConfig, base_model: &str) -> Result<()> {
        let prompt =
            self.prompt.as_ref().ok_or_else(|| ModelError::Invalid("there is no soft prompt to save".into()))?;
        let c = &self.config;
        let cfg = PromptTuningConfig { num_virtual_tokens: prompt.len(), ..cfg.clone() };
        peft::save(dir, prompt, &peft::config_json(&cfg, base_model, c.dim, c.n_layers, c.n_heads))
    }

    /// Write P-tuning's virtual tokens (the encoder's output) to `dir` in PEFT's layout.
    pub fn save_p_tuning(&self, dir: &Path, cfg: &PTuningConfig, base_model: &str) -> Result<()> {
        let prompt =
            self.prompt.as_ref().ok_or_else(|| ModelError::Invalid("there is no soft prompt to save".into()))?;
        let c = &self.config;
        let cfg = PTuningConfig { num_virtual_tokens: prompt.len(), ..cfg.clone() };
        peft::save(dir, prompt, &peft::p_tuning_config_json(&cfg, base_model, c.dim, c.n_layers, c.n_heads))
    }

    /// Load a PEFT prompt-tuning directory (replacing any soft prompt). Frozen unless
    /// `trainable`.
    pub fn load_prompt(&mut self, dir: &Path, trainable: bool) -> Result<PromptTuningConfig> {
        self.check_prompt_support()?;
        let (cfg, prompt) = peft::load(dir, self.config.dim, self.device)?;
        let embeddings = if trainable { prompt.embeddings.requires_grad_() } else { prompt.embeddings };
        self.prompt = Some(SoftPrompt::plain(embeddings));
        Ok(cfg)
    }

    /// Load a PEFT P-tuning directory (replacing any soft prompt): the virtual tokens its
    /// encoder made, frozen unless `trainable` (then trained directly, as prompt tuning).
    pub fn load_p_tuning(&mut self, dir: &Path, trainable: bool) -> Result<PTuningConfig> {
        self.check_prompt_support()?;
        let (cfg, prompt) = peft::load_p_tuning(dir, self.config.dim, self.device)?;
        let embeddings = if trainable { prompt.embeddings.requires_grad_() } else { prompt.embeddings };
        self.prompt = Some(SoftPrompt::plain(embeddings));
        Ok(cfg)
    }

    /// x (batch * seq, dim) with the virtual tokens before each row: (batch * (K + seq), dim).
    pub(super) fn prepend_prompt(&self, x: Tensor, batch: usize, seq: usize) -> Result<Tensor> {
        let Some(p) = &self.prompt else { return Ok(x) };
        let (k, d) = (p.len(), self.config.dim);
        let virtual_rows = p.tokens()?.unsqueeze(0)?.broadcast_to(&[batch, k, d])?;
        let x = Tensor::cat(&[&virtual_rows, &x.reshape(&[batch, seq, d])?], 1)?;
        Ok(x.reshape(&[batch * (k + seq), d])?)
    }

    /// h (batch * (K + seq), dim) without the virtual tokens' rows: (batch * seq, dim).
    pub(super) fn drop_prompt_rows(&self, h: Tensor, batch: usize, seq: usize) -> Result<Tensor> {
        let k = self.virtual_tokens();
        if k == 0 {
            return Ok(h);
        }
        let d = self.config.dim;
        Ok(h.reshape(&[batch, k + seq, d])?.narrow(1, k, seq)?.contiguous()?.reshape(&[batch * seq, d])?)
    }

    /// Run the virtual tokens into an empty cache and pin them there.
    pub(super) fn fill_prompt(&self, cache: &mut KvCache) -> Result<()> {
        let Some(p) = &self.prompt else { return Ok(()) };
        let k = p.len();
        let mut x = p.tokens()?.detach();
        let ctx = PassContext::new(&self.config, cache.position(), k, self.device)?;
        {
            let segments = [(&*cache, &ctx)];
            for i in 0..self.blocks.len() {
                x = self.block(i, &x, (1, k), &ctx, Pass::Cached(&segments))?;
            }
        }
        cache.advance(k);
        cache.pin_filled();
        Ok(())
    }
}
