//! Examples to token ids and a loss mask.
//!
//! An example is laid out as text cut into pieces, each masked or scored: a conversation
//! is rendered with the model's chat template, and the template's rendering of each prefix
//! (the turns before an assistant turn, with the generation prompt; the turns through it)
//! says where each assistant turn starts and ends in the whole. Each piece is tokenized on
//! its own, which is exactly how inference sees it: the prompt is tokenized alone and the
//! answer is generated after it. Tokenizing the whole text at once can differ only where
//! the pre-tokenizer or BPE would join text across a boundary; the report counts those
//! examples. With ChatML a turn ends at `<|im_end|>`, a control token split out before BPE,
//! and starts after the header's newline, which stays a token of its own unless the answer
//! starts with whitespace (the shipped dataset has none: every example matches).
//!
//! Labels follow PyTorch's `ignore_index` convention, shifted for you: `labels[i]` is the
//! token the model should predict at position `i` (that is, `tokens[i + 1]`) when that token
//! is scored, and `IGNORE` (-100) when it is not. So `logits (T, vocab)` of a forward pass
//! over `tokens` go straight into `cross_entropy(labels, -100)` with no shifting.

use super::jsonl::{Example, Record};
use super::report::{DataReport, Problem, SftError, SkipReason};
use lamina_model::bpe::special::TokenKind;
use lamina_model::chat::{ChatTemplate, Message};
use lamina_model::BpeTokenizer;
use std::ops::Range;

/// The label of a position whose next token is not scored (PyTorch's default ignore_index),
/// as the training loss skips it.
pub use lamina_model::llama::IGNORE;

/// One example as token ids and next-token labels (same length).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    pub tokens: Vec<u32>,
    /// `labels[i]`: `tokens[i + 1]` if that token is learned, else `IGNORE`. After
    /// truncation the last label may name a token that was cut off: it is still the right
    /// target for the last position kept.
    pub labels: Vec<i32>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Positions whose prediction is scored.
    pub fn scored(&self) -> usize {
        self.labels.iter().filter(|&&l| l != IGNORE).count()
    }
}

/// How a prompt/completion example is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptFormat {
    /// As a user turn and an assistant turn of the model's chat template.
    Template,
    /// Prompt and completion concatenated as they are (BOS as the tokenizer says, EOS after
    /// the completion), for base models; put any separator in the data.
    Raw,
}

#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions {
    /// Examples longer than this many tokens are cut (from the end).
    pub max_len: usize,
    pub prompt_format: PromptFormat,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions { max_len: 512, prompt_format: PromptFormat::Template }
    }
}

/// An example's encoding and what happened on the way.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub encoded: Encoded,
    pub truncated: bool,
    /// The pieces tokenized one by one differ from the whole text tokenized at once.
    pub boundary_merge: bool,
}

/// The prompt of a test example, ready to generate from, and the answer expected.
#[derive(Clone, Debug)]
pub struct EvalPrompt {
    pub ids: Vec<u32>,
    pub reference: String,
    /// The last user message (or the raw prompt): what a table of results shows.
    pub question: String,
}

type Skip = (SkipReason, String);

/// How each piece of an example's text counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scoring {
    Masked,
    Scored,
    /// An assistant turn as the template writes it: scored through its first
    /// end-of-generation token (`<|im_end|>`, the token generation stops on), masked after
    /// it (ChatML's trailing newline is never generated). All scored if it has none.
    ThroughEndOfTurn,
}

/// An example as text with scored and masked byte ranges.
struct Layout {
    text: String,
    pieces: Vec<(Range<usize>, Scoring)>,
    /// Chat templates write control tokens as text; plain text and raw prompts are
    /// tokenized literally (no `<|...|>` in data can become a control token).
    parse_special: bool,
    bos: bool,
    /// Append EOS (scored) after the last piece.
    eos: bool,
    /// Evaluation: where the prompt ends (the start of the last scored piece), the
    /// reference answer and the question shown.
    prompt_end: Option<(usize, String, String)>,
}

/// Turns examples into `Encoded` with a tokenizer and (for chat) a chat template.
pub struct Encoder<'a> {
    tokenizer: &'a BpeTokenizer,
    template: Option<&'a ChatTemplate>,
    options: EncodeOptions,
    bos: Option<u32>,
    eos: u32,
}

impl<'a> Encoder<'a> {
    /// `template`: needed for chat examples and for `PromptFormat::Template`.
    pub fn new(
        tokenizer: &'a BpeTokenizer,
        template: Option<&'a ChatTemplate>,
        options: EncodeOptions,
    ) -> Result<Encoder<'a>, SftError> {
        if options.max_len == 0 {
            return Err(SftError::Config("max_len must be at least 1 token".into()));
        }
        let eos = tokenizer
            .eos_id()
            .ok_or_else(|| SftError::Config("the tokenizer has no EOS token to end text examples with".into()))?;
        let bos = match tokenizer.adds_bos() {
            true => Some(
                tokenizer
                    .bos_id()
                    .ok_or_else(|| SftError::Config("the tokenizer adds BOS but has no BOS token".into()))?,
            ),
            false => None,
        };
        Ok(Encoder { tokenizer, template, options, bos, eos })
    }

    pub fn tokenizer(&self) -> &BpeTokenizer {
        self.tokenizer
    }

    pub fn options(&self) -> EncodeOptions {
        self.options
    }

    /// Tokens and labels of one example, cut to `max_len`.
    pub fn encode(&self, example: &Example) -> Result<Outcome, Skip> {
        let layout = self.layout(example)?;
        let (mut tokens, scored) = self.tokenize(&layout, layout.pieces.len())?;
        let whole = self.tokenizer.encode(&layout.text, false, layout.parse_special).map_err(model_skip)?;
        let body = &tokens[usize::from(layout.bos)..tokens.len() - usize::from(layout.eos)];
        let boundary_merge = body != whole.as_slice();
        // labels[i] scores the token after position i; the last position predicts nothing.
        let mut labels: Vec<i32> =
            (1..tokens.len()).map(|j| if scored[j] { tokens[j] as i32 } else { IGNORE }).collect();
        labels.push(IGNORE);
        let truncated = tokens.len() > self.options.max_len;
        tokens.truncate(self.options.max_len);
        labels.truncate(self.options.max_len);
        let encoded = Encoded { tokens, labels };
        if encoded.scored() == 0 {
            return Err((
                SkipReason::NothingScored,
                format!("no scored token within the first {} tokens (raise max_len)", self.options.max_len),
            ));
        }
        Ok(Outcome { encoded, truncated, boundary_merge })
    }

    /// Encode every record, keeping `report` true: skipped ones move from `kept` to
    /// `skipped` (or stop everything under `strict`), truncated ones are counted.
    pub fn encode_all(
        &self,
        records: &[Record],
        report: &mut DataReport,
        strict: bool,
        name: &str,
    ) -> Result<Vec<Encoded>, SftError> {
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            match self.encode(&r.example) {
                Ok(o) => {
                    report.truncated += usize::from(o.truncated);
                    report.boundary_merges += usize::from(o.boundary_merge);
                    out.push(o.encoded);
                }
                Err((reason, message)) => {
                    let problem = Problem { line: r.line, reason, message };
                    if strict {
                        return Err(SftError::Strict { path: name.to_string(), problem });
                    }
                    report.kept -= 1;
                    report.skip(problem);
                }
            }
        }
        report.problems.sort_by_key(|p| p.line);
        Ok(out)
    }

    /// The prompt to generate from for a test example: every turn before the last
    /// assistant turn and the generation prompt (the same tokens training puts before that
    /// answer), and the answer expected.
    pub fn eval_prompt(&self, example: &Example) -> Result<EvalPrompt, Skip> {
        let layout = self.layout(example)?;
        let Some((end, reference, question)) = layout.prompt_end.clone() else {
            return Err((SkipReason::NoReference, "a text example has no answer to compare with".into()));
        };
        let last = layout.pieces.iter().position(|(r, _)| r.start >= end).unwrap_or(layout.pieces.len());
        let (ids, _) = self.tokenize(&Layout { eos: false, ..layout }, last)?;
        Ok(EvalPrompt { ids, reference, question })
    }

    fn layout(&self, example: &Example) -> Result<Layout, Skip> {
        match example {
            Example::Text(text) => Ok(Layout {
                text: text.clone(),
                pieces: vec![(0..text.len(), Scoring::Scored)],
                parse_special: false,
                bos: self.bos.is_some(),
                eos: true,
                prompt_end: None,
            }),
            Example::PromptCompletion { system, prompt, completion } => match self.options.prompt_format {
                PromptFormat::Template => {
                    let mut messages = Vec::with_capacity(3);
                    if let Some(s) = system {
                        messages.push(Message::new("system", s));
                    }
                    messages.push(Message::new("user", prompt));
                    messages.push(Message::new("assistant", completion));
                    self.chat_layout(&messages)
                }
                PromptFormat::Raw => {
                    // A system prompt has no place in raw text; put it in the prompt.
                    let text = format!("{}{prompt}{completion}", system.as_deref().unwrap_or(""));
                    let cut = text.len() - completion.len();
                    Ok(Layout {
                        pieces: vec![(0..cut, Scoring::Masked), (cut..text.len(), Scoring::Scored)],
                        text,
                        parse_special: false,
                        bos: self.bos.is_some(),
                        eos: true,
                        prompt_end: Some((cut, completion.clone(), prompt.clone())),
                    })
                }
            },
            Example::Chat(messages) => self.chat_layout(messages),
        }
    }

    /// Where each assistant turn sits in the rendered conversation.
    fn chat_layout(&self, messages: &[Message]) -> Result<Layout, Skip> {
        let template = self
            .template
            .ok_or_else(|| (SkipReason::Template, "chat examples need the model's chat template".to_string()))?;
        for (i, m) in messages.iter().enumerate() {
            let ids = self.tokenizer.encode(&m.content, false, true).map_err(model_skip)?;
            if let Some(&id) = ids.iter().find(|&&id| self.tokenizer.token_kind(id) == Some(TokenKind::Control)) {
                let t = self.tokenizer.id_to_token(id).unwrap_or("?");
                return Err((SkipReason::SpecialTokenText, format!("messages[{i}] contains the control token {t}")));
            }
        }
        let render =
            |m: &[Message], gen: bool| template.render(m, gen).map_err(|e| (SkipReason::Template, e.to_string()));
        let text = render(messages, false)?;
        let mut pieces = Vec::new();
        let mut done = 0;
        let mut prompt_end = None;
        for (k, m) in messages.iter().enumerate().filter(|(_, m)| m.role == "assistant") {
            let before = render(&messages[..k], true)?;
            let through = render(&messages[..=k], false)?;
            let (start, end) = (before.len(), through.len());
            if !text.starts_with(&before) || !text.starts_with(&through) || start < done || end < start {
                return Err((
                    SkipReason::Template,
                    format!(
                        "the chat template renders messages[..{k}] (+ generation prompt) or messages[..={k}] differently \
                         from the start of the whole conversation, so the assistant turn cannot be located"
                    ),
                ));
            }
            if start > done {
                pieces.push((done..start, Scoring::Masked));
            }
            pieces.push((start..end, Scoring::ThroughEndOfTurn));
            done = end;
            let question = messages[..k].iter().rev().find(|m| m.role == "user").map_or("", |m| &m.content);
            prompt_end = Some((start, m.content.clone(), question.to_string()));
        }
        if done < text.len() {
            pieces.push((done..text.len(), Scoring::Masked));
        }
        // The template writes BOS itself if the model wants one (as `generate --chat` does).
        Ok(Layout { text, pieces, parse_special: true, bos: false, eos: false, prompt_end })
    }

    /// Token ids of the first `n_pieces` pieces (each tokenized alone) and, for each id,
    /// whether it is a scored target.
    fn tokenize(&self, layout: &Layout, n_pieces: usize) -> Result<(Vec<u32>, Vec<bool>), Skip> {
        let mut tokens = Vec::new();
        let mut scored = Vec::new();
        if layout.bos {
            tokens.extend(self.bos);
            scored.push(false);
        }
        for (range, scoring) in &layout.pieces[..n_pieces] {
            let ids =
                self.tokenizer.encode(&layout.text[range.clone()], false, layout.parse_special).map_err(model_skip)?;
            let through = match scoring {
                Scoring::Masked => 0,
                Scoring::Scored => ids.len(),
                Scoring::ThroughEndOfTurn => {
                    ids.iter().position(|&id| self.tokenizer.is_end_of_generation(id)).map_or(ids.len(), |p| p + 1)
                }
            };
            scored.extend((0..ids.len()).map(|i| i < through));
            tokens.extend(ids);
        }
        if layout.eos && n_pieces == layout.pieces.len() {
            tokens.push(self.eos);
            scored.push(true);
        }
        Ok((tokens, scored))
    }
}

fn model_skip(e: lamina_model::ModelError) -> Skip {
    (SkipReason::Tokenizer, e.to_string())
}

/// The id padding uses: the tokenizer's pad token, else EOS (padded positions are never
/// scored and, padded on the right under causal attention, never attended to by real ones).
pub fn pad_id(tokenizer: &BpeTokenizer) -> Result<u32, SftError> {
    tokenizer
        .pad_id()
        .or(tokenizer.eos_id())
        .ok_or_else(|| SftError::Config("the tokenizer has neither a pad nor an EOS token to pad with".into()))
}
