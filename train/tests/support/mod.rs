//! What the fine-tuning data tests share: a tiny byte-level BPE tokenizer written to a
//! temporary directory (no model needed), SmolLM2's tokenizer and chat template when the
//! model is present, and helpers to read a loss mask back as text.
#![allow(dead_code)]

use lamina_model::bpe::byte_level::byte_to_char;
use lamina_model::chat::ChatTemplate;
use lamina_model::gguf::GgufFile;
use lamina_model::BpeTokenizer;
use lamina_train::sft::{Encoded, IGNORE};
use std::path::PathBuf;

/// A directory under the system temp dir, removed on drop; unique per call (tests run in
/// parallel threads of one process).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("lamina-sft-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const ENDOFTEXT: u32 = 256;
pub const IM_START: u32 = 257;
pub const IM_END: u32 = 258;

/// 256 byte tokens, three control tokens (`<|endoftext|>` = BOS = EOS, `<|im_start|>`,
/// `<|im_end|>`), a few merges ("b c" lets a raw prompt "ab" + completion "cd" merge across
/// the boundary), BOS added, no pad token.
pub fn tiny_tokenizer() -> BpeTokenizer {
    let dir = TempDir::new("tok");
    let vocab: serde_json::Map<String, serde_json::Value> =
        byte_to_char().iter().enumerate().map(|(i, c)| (c.to_string(), i.into())).collect();
    let mut vocab = vocab;
    let merges = ["b c", "Ġ t", "t h", "Ġt h"];
    for (id, m) in (259u32..).zip(merges) {
        vocab.insert(m.replace(' ', ""), id.into());
    }
    let added: Vec<serde_json::Value> =
        [(ENDOFTEXT, "<|endoftext|>"), (IM_START, "<|im_start|>"), (IM_END, "<|im_end|>")]
            .iter()
            .map(|(id, t)| serde_json::json!({"id": id, "content": t, "special": true}))
            .collect();
    let byte_level =
        serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let json = serde_json::json!({
        "version": "1.0", "added_tokens": added, "normalizer": null, "pre_tokenizer": byte_level,
        "post_processor": null, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": merges},
    });
    std::fs::write(dir.path("tokenizer.json"), json.to_string()).unwrap();
    let config = serde_json::json!({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": true});
    std::fs::write(dir.path("tokenizer_config.json"), config.to_string()).unwrap();
    BpeTokenizer::from_file(dir.path("tokenizer.json")).unwrap()
}

/// SmolLM2's tokenizer and its own chat template (None when the model is absent).
pub fn smollm2() -> Option<(BpeTokenizer, ChatTemplate)> {
    let path = lamina_testkit::smollm2()?;
    let gguf = GgufFile::open(path).unwrap();
    let tok = BpeTokenizer::from_gguf(&gguf).unwrap();
    let source = gguf.get("tokenizer.chat_template").and_then(|v| v.as_str()).unwrap().to_string();
    let name = |id: Option<u32>| tok.id_to_token(id.unwrap()).unwrap().to_string();
    let template = ChatTemplate::new(&source, &name(tok.bos_id()), &name(tok.eos_id())).unwrap();
    Some((tok, template))
}

/// The scored targets in order, and a check that each is the next token.
pub fn targets(e: &Encoded) -> Vec<u32> {
    assert_eq!(e.tokens.len(), e.labels.len());
    assert_eq!(*e.labels.last().unwrap_or(&IGNORE), IGNORE, "the last position of an uncut example predicts nothing");
    let mut out = Vec::new();
    for (i, &l) in e.labels.iter().enumerate() {
        if l != IGNORE {
            if i + 1 < e.tokens.len() {
                assert_eq!(l as u32, e.tokens[i + 1], "label {i} is not the next token");
            }
            out.push(l as u32);
        }
    }
    out
}

/// The scored text (control tokens written out).
pub fn scored_text(tok: &BpeTokenizer, e: &Encoded) -> String {
    tok.decode(&targets(e), false).unwrap()
}
