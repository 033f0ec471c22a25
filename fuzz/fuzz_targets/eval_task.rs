//! Any byte string as an evaluation task file (`lamina eval --tasks FILE`): read from a
//! real file, as the CLI reads it, it gives a task or an error, never a panic, hang or
//! runaway allocation (its `data` and `fewshot_data` may name any path).
#![no_main]

use lamina_train::eval::reader::read_task;
use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::dir().join("task.jsonl");
    std::fs::write(&path, data).unwrap();
    let _ = read_task(&path);
});
