//! Any byte string: `gguf::parse` returns Ok or Err, never panics; what parses loads or
//! is refused without panicking.
#![no_main]

use lamina_model::gguf::{self, GgufFile};
use lamina_tensor::DType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if gguf::parse(data).is_ok() {
        let file = GgufFile::from_bytes(data.to_vec()).expect("parsed once already");
        for t in &file.tensors {
            let _ = file.load(t, DType::F32);
        }
    }
});
