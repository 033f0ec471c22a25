//! BERT-style encoders (BERT, sentence-transformers models built on it): their own model
//! code (`crate::bert`), from GGUF or a Hugging Face `BertModel` directory.

use super::{Family, Kind};

pub const FAMILY: Family = Family { name: "BERT", gguf: &["bert"], hf: &["bert"], kind: Kind::Encoder };
