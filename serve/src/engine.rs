//! The loaded model and what turns requests into its tokens: the scheduler thread owns
//! one `Engine` (it is built there, so nothing in it has to cross threads).

use crate::api::Prompt;
use crate::error::ApiError;
use crate::scheduler::job::{TokenLogprob, TokenText};
use lamina_model::bert::Bert;
use lamina_model::chat::ChatTemplate;
use lamina_model::chat_encode::{encode_chat, Content};
use lamina_model::{BpeTokenizer, CausalLm};

/// The network behind the server.
pub enum Network {
    /// Generates text; its embeddings are its last hidden states mean-pooled.
    Decoder(Box<dyn CausalLm>),
    /// An embedding model (BERT-style): serves `/v1/embeddings` only, pooled as the
    /// model declares (sentence-transformers' `modules.json`, GGUF's `bert.pooling_type`).
    Encoder(Bert),
}

pub struct Engine {
    pub model: Network,
    pub tokenizer: BpeTokenizer,
    pub template: ChatTemplate,
    /// The model's id in `/v1/models` and in responses.
    pub name: String,
}

impl Engine {
    /// The decoder, or an error saying this model only embeds.
    pub fn decoder(&self) -> Result<&dyn CausalLm, ApiError> {
        match &self.model {
            Network::Decoder(m) => Ok(m.as_ref()),
            Network::Encoder(_) => Err(ApiError::invalid(
                "model",
                format!("{} is an embedding model (a BERT encoder): it serves /v1/embeddings only", self.name),
            )),
        }
    }

    /// The longest input the model takes.
    pub fn context_length(&self) -> usize {
        match &self.model {
            Network::Decoder(m) => m.context_length(),
            Network::Encoder(b) => b.config.context_length,
        }
    }

    pub fn vocab_size(&self) -> usize {
        match &self.model {
            Network::Decoder(m) => m.vocab_size(),
            Network::Encoder(b) => b.config.vocab_size,
        }
    }

    /// Token ids of a prompt to generate from (an error for an encoder).
    pub fn tokenize(&self, prompt: &Prompt) -> Result<Vec<u32>, ApiError> {
        self.decoder()?;
        self.prompt_ids(prompt)
    }

    /// Token ids of a prompt: chat messages through the template with their content as
    /// plain text (`chat_encode`, as `lamina generate --chat --no-special`: a message cannot
    /// forge a turn); raw text as `lamina generate` encodes it; ids checked against the vocabulary.
    fn prompt_ids(&self, prompt: &Prompt) -> Result<Vec<u32>, ApiError> {
        let (param, ids) = match prompt {
            Prompt::Chat(messages) => {
                ("messages", encode_chat(&self.template, &self.tokenizer, messages, true, Content::PlainText))
            }
            Prompt::Text(text) => ("prompt", self.tokenizer.encode(text, true, true)),
            Prompt::Tokens(ids) => ("prompt", Ok(ids.clone())),
        };
        let ids = ids.map_err(|e| ApiError::invalid(param, e.to_string()))?;
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&t| t as usize >= vocab) {
            return Err(ApiError::invalid(param, format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        if ids.is_empty() {
            return Err(ApiError::invalid(param, "the prompt tokenizes to nothing"));
        }
        Ok(ids)
    }

    /// Text of one token for log-probabilities.
    pub fn token_text(&self, id: u32) -> TokenText {
        let bytes = self.tokenizer.token_to_piece(id, true).unwrap_or_default();
        TokenText { text: String::from_utf8_lossy(&bytes).into_owned(), bytes }
    }

    /// Log-probabilities of `chosen` and the `top` most likely tokens under `logits`.
    pub fn logprobs(&self, logits: &[f32], chosen: u32, top: usize) -> TokenLogprob {
        let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
        let lse = max + logits.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
        let lp = |id: u32| (logits[id as usize] as f64 - lse) as f32;
        let mut best: Vec<u32> = (0..logits.len() as u32).collect();
        let top = top.min(best.len());
        let by_logit = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
        if top > 0 && top < best.len() {
            best.select_nth_unstable_by(top - 1, by_logit);
        }
        best.truncate(top);
        best.sort_by(by_logit);
        TokenLogprob {
            token: self.token_text(chosen),
            logprob: lp(chosen),
            top: best.into_iter().map(|id| (self.token_text(id), lp(id))).collect(),
        }
    }

    /// The embedding of one input, L2-normalised: a decoder's last hidden state
    /// mean-pooled over the input's tokens, an encoder's pooled as the model declares.
    /// Returns it with the input's token count.
    pub fn embed(&self, input: &Prompt, ctx: usize) -> Result<(Vec<f32>, usize), ApiError> {
        let ids = match input {
            Prompt::Text(t) => {
                self.tokenizer.encode(t, true, false).map_err(|e| ApiError::invalid("input", e.to_string()))?
            }
            other => self.prompt_ids(other)?,
        };
        if ids.len() > ctx {
            return Err(ApiError::invalid(
                "input",
                format!("an input of {} tokens is longer than the context of {ctx}", ids.len()),
            )
            .with_code("context_length_exceeded"));
        }
        if ids.is_empty() {
            return Err(ApiError::invalid("input", "an input tokenizes to nothing"));
        }
        let _no_grad = lamina_tensor::NoGradGuard::new();
        let pooled = match &self.model {
            Network::Decoder(m) => m.hidden_states(&ids).and_then(|h| Ok(h.mean(&[0], false)?.to_vec_f32()?)),
            Network::Encoder(b) => b.embed(&ids),
        }
        .map_err(|e| ApiError::invalid("model", format!("embeddings: {e}")))?;
        Ok((l2_normalised(pooled), ids.len()))
    }
}

fn l2_normalised(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
    }
    v
}
