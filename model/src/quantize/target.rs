//! What `lamina quantize --type` can produce: a target is a base block format plus the
//! rule that picks each tensor's type (`plan.rs`), and the `general.file_type` it writes.

use lamina_tensor::quant::GgmlType;

/// How tensors get their types: always as llama.cpp's `llama-quantize` gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// llama.cpp's `--pure` (and its float targets): every tensor it would quantize in the
    /// base format, with its fallback types for rows that are not whole blocks.
    Pure,
    /// llama.cpp's mixture for this `llama_ftype` (`llama_tensor_get_type`): the output
    /// head (and a tied token embedding) get more bits, and in the K mixes attn_v /
    /// ffn_down on some layers.
    LlamaCpp,
}

/// A quantization target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The `--type` name.
    pub name: &'static str,
    /// The format most matrices get.
    pub base: GgmlType,
    pub mix: Mix,
    /// llama.cpp's `general.file_type` (`LLAMA_FTYPE_MOSTLY_*`).
    pub file_type: u32,
}

const fn target(name: &'static str, base: GgmlType, mix: Mix, file_type: u32) -> Target {
    Target { name, base, mix, file_type }
}

/// Every target, in the order `--help` lists them.
pub const TARGETS: [Target; 14] = [
    target("q8_0", GgmlType::Q8_0, Mix::LlamaCpp, 7),
    target("q6_k", GgmlType::Q6K, Mix::LlamaCpp, 18),
    target("q5_k_m", GgmlType::Q5K, Mix::LlamaCpp, 17),
    target("q5_k_s", GgmlType::Q5K, Mix::LlamaCpp, 16),
    // Pure K formats: llama.cpp writes the Q*_K_S file type for `--pure` runs too.
    target("q5_k", GgmlType::Q5K, Mix::Pure, 16),
    target("q5_1", GgmlType::Q5_1, Mix::LlamaCpp, 9),
    target("q5_0", GgmlType::Q5_0, Mix::LlamaCpp, 8),
    target("q4_k_m", GgmlType::Q4K, Mix::LlamaCpp, 15),
    target("q4_k_s", GgmlType::Q4K, Mix::LlamaCpp, 14),
    target("q4_k", GgmlType::Q4K, Mix::Pure, 14),
    target("q4_1", GgmlType::Q4_1, Mix::LlamaCpp, 3),
    target("q4_0", GgmlType::Q4_0, Mix::LlamaCpp, 2),
    target("f16", GgmlType::F16, Mix::Pure, 1),
    // No rounding at all: converts a Hugging Face directory to GGUF as it is.
    target("f32", GgmlType::F32, Mix::Pure, 0),
];

/// llama.cpp's `LLAMA_FTYPE_MOSTLY_*` numbers for the K mixes.
pub(crate) mod ftype {
    pub const Q4_K_S: u32 = 14;
    pub const Q4_K_M: u32 = 15;
    pub const Q5_K_M: u32 = 17;
}

impl Target {
    /// The target called `name` (case-insensitive), or an error listing the names.
    pub fn parse(name: &str) -> Result<Target, String> {
        TARGETS.iter().copied().find(|t| t.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
            let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
            format!("unknown quantization type `{name}` (choose one of {})", names.join(", "))
        })
    }

    /// The target named after a format (`q8_0` for Q8_0, ..., `f16`), if there is one.
    pub fn of_type(ty: GgmlType) -> Option<Target> {
        TARGETS.iter().copied().find(|t| t.base == ty && t.name.eq_ignore_ascii_case(ty.name()))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}
