//! Any byte string as a SentencePiece `tokenizer.model` (the protobuf `ModelProto`), alone
//! in a Hugging Face directory: loaded as `lamina` loads such a directory's tokenizer
//! (`Tokenizer::from_hf_dir`), it gives a tokenizer or an error, never a panic or runaway
//! allocation; a tokenizer that loads encodes and decodes a short text.
#![no_main]

use lamina_model::Tokenizer;
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let dir = scratch::dir();
    std::fs::write(dir.join("tokenizer.model"), data).unwrap();
    if let Ok(tok) = Tokenizer::from_hf_dir(dir) {
        for parse_special in [false, true] {
            if let Ok(ids) = tok.encode("Hello <s> wörld 123\n\t  x", true, parse_special) {
                let _ = tok.decode(&ids, false);
            }
        }
    }
});
