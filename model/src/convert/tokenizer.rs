//! `tokenizer.ggml.*` metadata from a Hugging Face `tokenizer.json` (byte-level BPE only),
//! as llama.cpp's `convert_hf_to_gguf.py` writes it: the vocabulary padded to the model's
//! vocab size with `[PAD{i}]` tokens, token types (normal, control for special added
//! tokens, user-defined for the other added ones, unused for padding), the merges, the
//! special ids from `tokenizer_config.json` (else `config.json`), the BOS/EOS flags, and
//! the pre-tokenizer's llama.cpp name.
//!
//! `tokenizer.ggml.pre`: llama.cpp's converter names it by hashing the tokenization of a
//! probe text; here it is read off the structure of the `pre_tokenizer`, which is what
//! decides the splitting. Structures it does not recognise are an error rather than a
//! guess, since a wrong name silently changes the token ids.

use crate::error::{ModelError, Result};
use crate::gguf::{MetaArray, MetaValue};
use crate::hf::{read_json, HfModel, TokenIds};
use crate::tokenizer::is_byte_level;
use serde_json::Value;

/// GGUF token types (llama.cpp's `llama_token_type`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const USER_DEFINED: i32 = 4;
const UNUSED: i32 = 5;

/// The split regexes of Llama 3 and Qwen2 as their `tokenizer.json` files write them.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

fn bad(m: &HfModel, msg: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(format!("{}: {msg}", m.dir.join("tokenizer.json").display()))
}

/// The tokenizer metadata for a model with `vocab_size` embedding rows.
pub fn tokenizer_metadata(m: &HfModel, vocab_size: usize) -> Result<Vec<(String, MetaValue)>> {
    let path = m.tokenizer_json.as_ref().ok_or_else(|| {
        ModelError::Missing(format!("{}: no tokenizer.json (needed for the GGUF tokenizer)", m.dir.display()))
    })?;
    let json: Value = read_json(path)?;
    let model = json.get("model").ok_or_else(|| bad(m, "no `model`"))?;
    let kind = model.get("type").and_then(Value::as_str).unwrap_or("?");
    if kind != "BPE" || !is_byte_level(json.get("decoder")) {
        return Err(ModelError::Unsupported(format!(
            "{}: a `{kind}` tokenizer; only byte-level BPE (model BPE, decoder ByteLevel) converts to GGUF here",
            path.display()
        )));
    }
    let pre = pre_tokenizer_name(json.get("pre_tokenizer")).map_err(|e| bad(m, e))?;

    // Tokens by id: the model's vocabulary, then the added tokens, then padding.
    let vocab = model.get("vocab").and_then(Value::as_object).ok_or_else(|| bad(m, "`model.vocab` is not a map"))?;
    let added: Vec<(usize, String, bool)> = match json.get("added_tokens").and_then(Value::as_array) {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .map(|a| {
                let id = a.get("id").and_then(Value::as_u64).ok_or_else(|| bad(m, "an added token without an id"))?;
                let content =
                    a.get("content").and_then(Value::as_str).ok_or_else(|| bad(m, "an added token without content"))?;
                Ok((id as usize, content.to_string(), a.get("special").and_then(Value::as_bool).unwrap_or(false)))
            })
            .collect::<Result<_>>()?,
    };
    let ids = vocab.values().map(|v| v.as_u64().map(|i| i as usize)).chain(added.iter().map(|a| Some(a.0)));
    let mut max_id = 0;
    for id in ids {
        max_id = max_id.max(id.ok_or_else(|| bad(m, "a vocabulary id is not an integer"))?);
    }
    if max_id >= vocab_size {
        return Err(bad(m, format!("token id {max_id} is outside the model's {vocab_size} embedding rows")));
    }
    let mut tokens: Vec<Option<String>> = vec![None; vocab_size];
    let mut types = vec![UNUSED; vocab_size];
    for (text, id) in vocab {
        let id = id.as_u64().expect("checked above") as usize;
        tokens[id] = Some(text.clone());
        types[id] = NORMAL;
    }
    for (id, content, special) in &added {
        tokens[*id] = Some(content.clone());
        types[*id] = if *special || looks_special(content) { CONTROL } else { USER_DEFINED };
    }
    let tokens: Vec<String> =
        tokens.into_iter().enumerate().map(|(i, t)| t.unwrap_or_else(|| format!("[PAD{i}]"))).collect();

    let merges = merges(model.get("merges")).map_err(|e| bad(m, e))?;
    let tc: Value = match m.dir.join("tokenizer_config.json") {
        p if p.is_file() => read_json(&p)?,
        _ => Value::Null,
    };
    let specials = special_ids(m, &tc, &tokens);
    let mut meta = vec![
        ("tokenizer.ggml.model".to_string(), MetaValue::String("gpt2".into())),
        ("tokenizer.ggml.pre".to_string(), MetaValue::String(pre.into())),
        ("tokenizer.ggml.tokens".to_string(), MetaValue::Array(MetaArray::String(tokens))),
        ("tokenizer.ggml.token_type".to_string(), MetaValue::Array(MetaArray::I32(types))),
        ("tokenizer.ggml.merges".to_string(), MetaValue::Array(MetaArray::String(merges))),
    ];
    meta.extend(specials);
    for flag in ["bos", "eos"] {
        if let Some(v) = tc.get(format!("add_{flag}_token")).and_then(Value::as_bool) {
            meta.push((format!("tokenizer.ggml.add_{flag}_token"), MetaValue::Bool(v)));
        }
    }
    if let Some(t) = &m.chat_template {
        meta.push(("tokenizer.chat_template".into(), MetaValue::String(t.clone())));
    }
    Ok(meta)
}

/// The converter's `does_token_look_special`: added tokens some models forget to mark.
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<｜") && t.ends_with("｜>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

/// Merges as `"a b"` strings, from either form `tokenizer.json` uses (`"a b"` or `["a", "b"]`).
fn merges(v: Option<&Value>) -> std::result::Result<Vec<String>, String> {
    let list = v.and_then(Value::as_array).ok_or("`model.merges` is not a list")?;
    list.iter()
        .map(|e| match e {
            Value::String(s) => Ok(s.clone()),
            Value::Array(p) => match (p.first().and_then(Value::as_str), p.get(1).and_then(Value::as_str), p.len()) {
                (Some(a), Some(b), 2) => Ok(format!("{a} {b}")),
                _ => Err(format!("merge {e} is not a pair of strings")),
            },
            _ => Err(format!("merge {e} is not a string or a pair")),
        })
        .collect()
}

/// bos/eos/unk/pad ids: the token `tokenizer_config.json` (`tc`) names (a string or
/// `{"content": ...}`), else `config.json`'s `bos_token_id` / `eos_token_id`.
fn special_ids(m: &HfModel, tc: &Value, tokens: &[String]) -> Vec<(String, MetaValue)> {
    let named = |key: &str| -> Option<u32> {
        let t = tc.get(key)?;
        let text = t.as_str().or_else(|| t.get("content")?.as_str())?;
        tokens.iter().position(|x| x == text).map(|i| i as u32)
    };
    let first = |ids: &Option<TokenIds>| -> Option<u32> {
        match ids.as_ref()? {
            TokenIds::One(i) => u32::try_from(*i).ok(),
            TokenIds::Many(v) => v.first().and_then(|&i| u32::try_from(i).ok()),
        }
    };
    let ids = [
        ("bos", named("bos_token").or_else(|| first(&m.config.bos_token_id))),
        ("eos", named("eos_token").or_else(|| first(&m.config.eos_token_id))),
        ("unknown", named("unk_token")),
        ("padding", named("pad_token")),
    ];
    ids.into_iter()
        .filter_map(|(k, id)| {
            let id = id.filter(|&i| (i as usize) < tokens.len())?;
            Some((format!("tokenizer.ggml.{k}_token_id"), MetaValue::U32(id)))
        })
        .collect()
}

/// The llama.cpp pre-tokenizer with the same splitting as `pre` (a `tokenizer.json`
/// `pre_tokenizer`).
fn pre_tokenizer_name(pre: Option<&Value>) -> std::result::Result<&'static str, String> {
    let mut steps = Vec::new();
    flatten(pre, &mut steps);
    let ty = |v: &Value| v.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    let flag = |v: &Value, k: &str, default: bool| v.get(k).and_then(Value::as_bool).unwrap_or(default);
    let split_regex = |v: &Value| -> Option<String> {
        let isolated = v.get("behavior").and_then(Value::as_str) == Some("Isolated") && !flag(v, "invert", false);
        isolated.then(|| v.get("pattern")?.get("Regex")?.as_str().map(str::to_string)).flatten()
    };
    let kinds: Vec<String> = steps.iter().map(|s| ty(s)).collect();
    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
    let name = match kinds.as_slice() {
        // GPT-2: the byte-level step's own regex does the splitting.
        ["ByteLevel"] if flag(steps[0], "use_regex", true) => Some("gpt-2"),
        // StarCoder, SmolLM: every digit alone, then GPT-2's regex.
        ["Digits", "ByteLevel"] if flag(steps[0], "individual_digits", false) && flag(steps[1], "use_regex", true) => {
            Some("starcoder")
        }
        ["Split", "ByteLevel"] if !flag(steps[1], "use_regex", true) => match split_regex(steps[0]).as_deref() {
            Some(LLAMA3_SPLIT) => Some("llama-bpe"),
            Some(QWEN2_SPLIT) => Some("qwen2"),
            _ => None,
        },
        _ => None,
    };
    name.ok_or_else(|| {
        format!(
            "cannot tell which llama.cpp pre-tokenizer matches pre_tokenizer {} (recognised: GPT-2 byte level, \
             digits + byte level as StarCoder/SmolLM, the Llama 3 and Qwen2 splits)",
            pre.map_or("null".to_string(), |p| p.to_string().chars().take(200).collect())
        )
    })
}

/// The steps of a pre-tokenizer, `Sequence`s flattened.
fn flatten<'a>(v: Option<&'a Value>, out: &mut Vec<&'a Value>) {
    let Some(v) = v else { return };
    if v.get("type").and_then(Value::as_str) == Some("Sequence") {
        for p in v.get("pretokenizers").and_then(Value::as_array).into_iter().flatten() {
            flatten(Some(p), out);
        }
    } else if !v.is_null() {
        out.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pre_tokenizers_are_named_by_structure() {
        let byte_level = |re: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": re});
        let split =
            |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
        let seq = |v: Vec<Value>| json!({"type": "Sequence", "pretokenizers": v});
        let digits = json!({"type": "Digits", "individual_digits": true});
        assert_eq!(pre_tokenizer_name(Some(&byte_level(true))), Ok("gpt-2"));
        assert_eq!(pre_tokenizer_name(Some(&seq(vec![digits.clone(), byte_level(true)]))), Ok("starcoder"));
        assert_eq!(pre_tokenizer_name(Some(&seq(vec![split(LLAMA3_SPLIT), byte_level(false)]))), Ok("llama-bpe"));
        assert_eq!(pre_tokenizer_name(Some(&seq(vec![split(QWEN2_SPLIT), byte_level(false)]))), Ok("qwen2"));
        for unknown in [
            seq(vec![split(r"\p{L}+"), byte_level(false)]),
            seq(vec![json!({"type": "Digits", "individual_digits": false}), byte_level(true)]),
            json!({"type": "Metaspace"}),
            Value::Null,
        ] {
            let err = pre_tokenizer_name(Some(&unknown)).unwrap_err();
            assert!(err.contains("cannot tell"), "{err}");
        }
    }

    #[test]
    fn merges_in_both_forms() {
        assert_eq!(merges(Some(&json!(["a b", ["Ġ", "t"]]))), Ok(vec!["a b".to_string(), "Ġ t".to_string()]));
        assert!(merges(Some(&json!([["a"]]))).is_err());
        assert!(merges(Some(&json!({"a": 1}))).is_err());
    }

    #[test]
    fn special_looking_tokens() {
        assert!(looks_special("<|im_start|>") && looks_special("<pad>") && looks_special("<unused12>"));
        assert!(!looks_special("<repo_name>") && !looks_special("hello"));
    }
}
