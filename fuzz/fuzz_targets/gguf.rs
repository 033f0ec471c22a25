//! Any byte string: `gguf::parse` returns Ok or Err, never panics; what parses loads or
//! is refused without panicking, and so do the things read from its metadata: the model's
//! configuration (through the architecture registry) and its tokenizer, which then
//! encodes and decodes a short text.
#![no_main]

use lamina_model::gguf::{self, GgufFile};
use lamina_model::{LlamaConfig, Tokenizer};
use lamina_tensor::DType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if gguf::parse(data).is_err() {
        return;
    }
    let file = GgufFile::from_bytes(data.to_vec()).expect("parsed once already");
    for t in &file.tensors {
        let _ = file.load(t, DType::F32);
    }
    let _ = LlamaConfig::from_gguf(&file);
    if let Ok(tok) = Tokenizer::from_gguf(&file) {
        for parse_special in [false, true] {
            if let Ok(ids) = tok.encode("Hello <|im_start|> wörld 123", true, parse_special) {
                let _ = tok.decode(&ids, false);
            }
        }
    }
});
