//! GPT-2: its own block (`crate::gpt`), loaded from GGUF.

use super::{Family, Kind};

pub const FAMILY: Family = Family { name: "GPT-2", gguf: &["gpt2"], hf: &["gpt2"], kind: Kind::Gpt2 };
