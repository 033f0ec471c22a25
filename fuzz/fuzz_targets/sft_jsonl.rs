//! Any byte string as a fine-tuning data file: read as `lamina finetune --data` reads it
//! (lenient and `--strict`), it gives examples and a report or an error, never a panic.
#![no_main]

use lamina_train::sft::jsonl::read_examples_from;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for strict in [false, true] {
        if let Ok((records, report)) = read_examples_from(data, "fuzz.jsonl", strict) {
            assert_eq!(records.len(), report.kept);
            assert_eq!(report.read, report.kept + report.skipped_total());
            let _ = (report.summary(), report.problem_lines(5), report.to_json());
        }
    }
});
