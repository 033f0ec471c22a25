//! Every decoder family against Hugging Face transformers: tiny random checkpoints that
//! transformers itself saved, converted to GGUF by llama.cpp's own converter, with
//! transformers' logits and greedy tokens (tests/fixtures/arch/, made by
//! scripts/reference/arch_reference.py). For each family, Lamina loads the Hugging Face
//! directory and the GGUF file, on the CPU and the GPU, and must give transformers'
//! logits at every position of two prompts and its greedy continuation, decoded token
//! by token through the KV cache.
//!
//! Tolerance: |Lamina - transformers| <= 2e-5 * (1 + |transformers|) per logit. Both run
//! in f32 on the same f16-rounded weights; the difference is summation order (measured
//! at most 5.4e-6 on the CPU and lavapipe). Greedy tokens must be identical; the fixture records the
//! smallest top-1/top-2 gap on the way (at least 1e-3) so a tie cannot decide them.

mod support;

use lamina_model::LoadOptions;
use lamina_tensor::{Device, NoGradGuard};
use lamina_testkit::gpu;
use support::arch_fixture::{all_logits, greedy, load, prompts, reference_of, worst_error, Source};

const TOLERANCE: f64 = 2e-5;

fn check(family: &str, source: Source, device: Device) {
    let _g = NoGradGuard::new();
    let m = load(family, source, LoadOptions::on(device)).into_causal_lm().unwrap();
    for p in prompts(family, reference_of(family, source)) {
        let got = all_logits(m.as_ref(), &p.ids);
        let err = worst_error(&got, &p.logits);
        eprintln!("{family} {source:?} {device:?} {}: worst logit error {err:.2e}", p.name);
        assert!(err <= TOLERANCE, "{family} {source:?} {device:?} prompt {}: logits off by {err:.3e}", p.name);
        let tokens = greedy(m.as_ref(), &p.ids, p.greedy.len());
        assert_eq!(tokens, p.greedy, "{family} {source:?} {device:?} prompt {}: greedy tokens", p.name);
    }
}

macro_rules! family {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[test]
            fn hf_cpu() {
                check(stringify!($name), Source::Hf, Device::Cpu);
            }

            #[test]
            fn gguf_cpu() {
                check(stringify!($name), Source::Gguf, Device::Cpu);
            }

            #[test]
            fn hf_gpu() {
                if let Some(d) = gpu() {
                    check(stringify!($name), Source::Hf, d);
                }
            }

            #[test]
            fn gguf_gpu() {
                if let Some(d) = gpu() {
                    check(stringify!($name), Source::Gguf, d);
                }
            }
        }
    };
}

family!(llama);
family!(qwen2);
family!(qwen3);
family!(mistral);
family!(phi3);
family!(gemma2);
family!(gemma3);
