//! A Hugging Face model directory as `transformers` saves it: `config.json` (the
//! hyperparameters), `tokenizer.json`, `tokenizer_config.json` (special tokens, the chat
//! template) or `chat_template.jinja`, and the weights in `model.safetensors` or shards
//! listed by `model.safetensors.index.json`.

use crate::atomic::io_err;
use crate::error::{format_err, ModelError, Result};
use crate::safetensors::SafeTensorsSet;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};

/// Side files larger than this are refused (the largest real `tokenizer.json` files are
/// ~35 MB, `tokenizer.model` files a few MB).
const MAX_SIDE_FILE: u64 = 256 << 20;

/// The bytes of a side file of a model directory (`what`: its kind, for errors). Only a
/// regular file is read (a link to `/dev/zero` or a FIFO in a downloaded directory would
/// never end), and never more than `MAX_SIDE_FILE` bytes of it.
pub(crate) fn read_side_file(path: &Path, what: &'static str) -> Result<Vec<u8>> {
    use std::io::Read;
    let over = |size: u64| {
        format_err(what, format!("{}: {size} bytes is over the {MAX_SIDE_FILE}-byte limit", path.display()))
    };
    let meta = std::fs::metadata(path).map_err(|e| io_err(path, e))?;
    if !meta.is_file() {
        return Err(format_err(what, format!("{}: not a regular file", path.display())));
    }
    if meta.len() > MAX_SIDE_FILE {
        return Err(over(meta.len()));
    }
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
    file.take(MAX_SIDE_FILE + 1).read_to_end(&mut bytes).map_err(|e| io_err(path, e))?;
    if bytes.len() as u64 > MAX_SIDE_FILE {
        return Err(over(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Read and deserialize a JSON side file (see [`read_side_file`]).
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = read_side_file(path, "JSON")?;
    serde_json::from_slice(&text).map_err(|e| format_err("JSON", format!("{}: {e}", path.display())))
}

/// A token id given as a number or a list of numbers (`eos_token_id: [1, 2]`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u64),
    Many(Vec<u64>),
}

/// The hyperparameters of `config.json` for the families Lamina runs (LLaMA-shaped
/// decoders, GPT-2, BERT). Keys a model does not use are `None`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct HfConfig {
    pub architectures: Vec<String>,
    pub model_type: Option<String>,
    pub hidden_size: Option<u64>,
    pub intermediate_size: Option<u64>,
    pub num_hidden_layers: Option<u64>,
    pub num_attention_heads: Option<u64>,
    pub num_key_value_heads: Option<u64>,
    pub head_dim: Option<u64>,
    pub rms_norm_eps: Option<f64>,
    pub rope_theta: Option<f64>,
    pub max_position_embeddings: Option<u64>,
    pub vocab_size: Option<u64>,
    pub tie_word_embeddings: Option<bool>,
    /// Qwen2 has biases on the q/k/v projections.
    pub attention_bias: Option<bool>,
    pub hidden_act: Option<String>,
    /// Gemma's name for `hidden_act`.
    pub hidden_activation: Option<String>,
    pub mlp_bias: Option<bool>,
    /// RoPE settings as transformers 5 writes them: `{rope_theta, rope_type, ...}`, or one
    /// such map per attention kind (`full_attention`, `sliding_attention`).
    pub rope_parameters: Option<serde_json::Value>,
    /// RoPE scaling as transformers 4 writes it (`{type | rope_type, factor, ...}`).
    pub rope_scaling: Option<serde_json::Value>,
    pub partial_rotary_factor: Option<f64>,
    /// Gemma 3 (transformers 4): the sliding layers' RoPE base.
    pub rope_local_base_freq: Option<f64>,
    pub sliding_window: Option<u64>,
    /// Qwen2: whether `sliding_window` applies at all, and from which layer on.
    pub use_sliding_window: Option<bool>,
    pub max_window_layers: Option<u64>,
    /// Per layer, `sliding_attention` or `full_attention` (transformers 5).
    pub layer_types: Option<Vec<String>>,
    /// Gemma 3 (transformers 4): every n-th layer is global.
    pub sliding_window_pattern: Option<u64>,
    /// Gemma: attention scores are scaled by this to the -1/2 instead of head_dim.
    pub query_pre_attn_scalar: Option<f64>,
    pub attn_logit_softcapping: Option<f64>,
    pub final_logit_softcapping: Option<f64>,
    pub torch_dtype: Option<String>,
    pub bos_token_id: Option<TokenIds>,
    pub eos_token_id: Option<TokenIds>,
    // GPT-2 names.
    pub n_embd: Option<u64>,
    pub n_layer: Option<u64>,
    pub n_head: Option<u64>,
    pub n_positions: Option<u64>,
    pub n_inner: Option<u64>,
    pub layer_norm_epsilon: Option<f64>,
    // BERT names.
    pub layer_norm_eps: Option<f64>,
    pub type_vocab_size: Option<u64>,
    pub position_embedding_type: Option<String>,
}

impl HfConfig {
    pub fn embedding_length(&self) -> Option<u64> {
        self.hidden_size.or(self.n_embd)
    }
    pub fn block_count(&self) -> Option<u64> {
        self.num_hidden_layers.or(self.n_layer)
    }
    pub fn head_count(&self) -> Option<u64> {
        self.num_attention_heads.or(self.n_head)
    }
    /// Key/value heads: as many as query heads unless grouped-query attention says otherwise.
    pub fn head_count_kv(&self) -> Option<u64> {
        self.num_key_value_heads.or(self.head_count())
    }
    /// The MLP width; GPT-2 leaves `n_inner` null to mean 4 × n_embd.
    pub fn feed_forward_length(&self) -> Option<u64> {
        self.intermediate_size.or(self.n_inner).or_else(|| self.n_embd.map(|e| 4 * e))
    }
    pub fn context_length(&self) -> Option<u64> {
        self.max_position_embeddings.or(self.n_positions)
    }
    pub fn norm_eps(&self) -> Option<f64> {
        self.rms_norm_eps.or(self.layer_norm_epsilon).or(self.layer_norm_eps)
    }
    /// The MLP activation's name (`hidden_act`, or Gemma's `hidden_activation`).
    pub fn activation(&self) -> Option<&str> {
        self.hidden_activation.as_deref().or(self.hidden_act.as_deref())
    }
    /// The RoPE settings of one attention kind (`full_attention` or `sliding_attention`)
    /// from `rope_parameters`, else the single map, else `rope_scaling`.
    pub fn rope_settings(&self, kind: &str) -> Option<&serde_json::Value> {
        match &self.rope_parameters {
            Some(p) => p.get(kind).or(Some(p)),
            None => self.rope_scaling.as_ref(),
        }
    }
    /// The RoPE base of the full-attention layers.
    pub fn rope_base(&self) -> Option<f64> {
        self.rope_settings("full_attention").and_then(|p| p.get("rope_theta")?.as_f64()).or(self.rope_theta)
    }
    /// The RoPE base of the sliding-window layers, where the config gives them their own.
    pub fn rope_base_swa(&self) -> Option<f64> {
        let params = self.rope_parameters.as_ref().and_then(|p| p.get("sliding_attention"));
        params.and_then(|p| p.get("rope_theta")?.as_f64()).or(self.rope_local_base_freq)
    }
}

/// A special token in `tokenizer_config.json`: a string or `{"content": ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum SpecialToken {
    Text(String),
    Added { content: String },
}

impl SpecialToken {
    pub fn content(&self) -> &str {
        match self {
            SpecialToken::Text(s) | SpecialToken::Added { content: s } => s,
        }
    }
}

/// A chat template: one string, or named templates (`[{"name": "default", "template": ...}]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
enum ChatTemplates {
    One(String),
    Named(Vec<NamedTemplate>),
}

#[derive(Clone, Debug, Deserialize)]
struct NamedTemplate {
    name: String,
    template: String,
}

/// The parts of `tokenizer_config.json` a loader needs.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenizerConfig {
    pub bos_token: Option<SpecialToken>,
    pub eos_token: Option<SpecialToken>,
    pub add_bos_token: Option<bool>,
    pub tokenizer_class: Option<String>,
    chat_template: Option<ChatTemplates>,
}

/// What `tokenizer.json` says about itself, read without building the tokenizer.
#[derive(Clone, Debug, Default)]
pub struct TokenizerSummary {
    /// `BPE`, `Unigram`, `WordPiece`, ...
    pub model: String,
    /// Entries in the model's vocabulary (added tokens not counted).
    pub vocab_size: usize,
    /// Added tokens: (id, content, special).
    pub added_tokens: Vec<(u64, String, bool)>,
}

/// A Hugging Face model directory.
pub struct HfModel {
    pub dir: PathBuf,
    pub config: HfConfig,
    /// `config.json` as written, for listings of every key.
    pub config_json: serde_json::Map<String, serde_json::Value>,
    pub tokenizer_json: Option<PathBuf>,
    pub tokenizer_config: TokenizerConfig,
    pub chat_template: Option<String>,
    pub weights: SafeTensorsSet,
}

impl HfModel {
    pub fn open(dir: impl AsRef<Path>) -> Result<HfModel> {
        let dir = dir.as_ref().to_path_buf();
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            return Err(ModelError::Missing(format!(
                "{}: no config.json (not a Hugging Face model directory)",
                dir.display()
            )));
        }
        let config_json: serde_json::Map<String, serde_json::Value> = read_json(&config_path)?;
        let config = HfConfig::deserialize(serde_json::Value::Object(config_json.clone()))
            .map_err(|e| format_err("JSON", format!("{}: {e}", config_path.display())))?;
        let tokenizer_json = Some(dir.join("tokenizer.json")).filter(|p| p.is_file());
        let tc_path = dir.join("tokenizer_config.json");
        let tokenizer_config: TokenizerConfig =
            if tc_path.is_file() { read_json(&tc_path)? } else { Default::default() };
        let chat_template = chat_template(&dir, &tokenizer_config)?;
        let weights = SafeTensorsSet::open(&dir)?;
        Ok(HfModel { dir, config, config_json, tokenizer_json, tokenizer_config, chat_template, weights })
    }

    /// Model type, vocabulary size and added tokens from `tokenizer.json`, if there is one.
    pub fn tokenizer_summary(&self) -> Result<Option<TokenizerSummary>> {
        #[derive(Deserialize)]
        struct Added {
            id: u64,
            content: String,
            #[serde(default)]
            special: bool,
        }
        #[derive(Deserialize)]
        struct Model {
            #[serde(rename = "type", default)]
            ty: Option<String>,
            #[serde(default)]
            vocab: Count,
        }
        #[derive(Deserialize)]
        struct File {
            model: Model,
            #[serde(default)]
            added_tokens: Vec<Added>,
        }
        let Some(path) = &self.tokenizer_json else { return Ok(None) };
        let f: File = read_json(path)?;
        Ok(Some(TokenizerSummary {
            model: f.model.ty.unwrap_or_else(|| "unknown".into()),
            vocab_size: f.model.vocab.0,
            added_tokens: f.added_tokens.into_iter().map(|a| (a.id, a.content, a.special)).collect(),
        }))
    }
}

/// `chat_template.jinja` (newer `transformers`), `chat_template.json`, else the template in
/// `tokenizer_config.json` (the one named `default`, or the first, when there are several).
fn chat_template(dir: &Path, tc: &TokenizerConfig) -> Result<Option<String>> {
    let jinja = dir.join("chat_template.jinja");
    if jinja.is_file() {
        return std::fs::read_to_string(&jinja).map(Some).map_err(|e| io_err(&jinja, e));
    }
    let json = dir.join("chat_template.json");
    if json.is_file() {
        #[derive(Deserialize)]
        struct T {
            chat_template: String,
        }
        return Ok(Some(read_json::<T>(&json)?.chat_template));
    }
    Ok(match &tc.chat_template {
        None => None,
        Some(ChatTemplates::One(s)) => Some(s.clone()),
        Some(ChatTemplates::Named(v)) => {
            v.iter().find(|t| t.name == "default").or(v.first()).map(|t| t.template.clone())
        }
    })
}

/// The number of entries of a JSON map or list, counted without keeping them
/// (a BPE vocabulary is a map, a Unigram one a list of `[piece, score]`).
#[derive(Default)]
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Count, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map or a list")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> std::result::Result<Count, A::Error> {
                let mut n = 0;
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> std::result::Result<Count, A::Error> {
                let mut n = 0;
                while s.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
            fn visit_unit<E>(self) -> std::result::Result<Count, E> {
                Ok(Count(0))
            }
        }
        d.deserialize_any(V)
    }
}
