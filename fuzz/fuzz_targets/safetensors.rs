//! Any byte string: `safetensors::parse` returns Ok or Err, never panics; what parses
//! loads or is refused without panicking.
#![no_main]

use lamina_model::safetensors::{self, SafeTensors};
use lamina_tensor::DType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if safetensors::parse(data).is_ok() {
        let file = SafeTensors::from_bytes(data.to_vec()).expect("parsed once already");
        for name in file.names() {
            let _ = file.load(name, DType::F32);
        }
    }
});
