//! Any byte string as a Hugging Face `tokenizer.json`: loaded as `lamina` loads a model
//! directory's tokenizer, it gives a tokenizer or an error, never a panic or runaway
//! allocation; a tokenizer that loads encodes and decodes a short text.
#![no_main]

use lamina_model::Tokenizer;
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::dir().join("tokenizer.json");
    std::fs::write(&path, data).unwrap();
    if let Ok(tok) = Tokenizer::from_file(&path) {
        for parse_special in [false, true] {
            if let Ok(ids) = tok.encode("Hello <|im_start|> wörld 123", true, parse_special) {
                let _ = tok.decode(&ids, false);
            }
        }
    }
});
