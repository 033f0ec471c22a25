//! Which type each tensor gets. Every target follows llama.cpp's `src/llama-quant.cpp`
//! (`tensor_allows_quantization`, `llama_tensor_get_type_impl`, `tensor_type_fallback`)
//! for dense models, so a Q4_K_M (or Q4_0) file from Lamina has the tensor types llama.cpp's
//! own Q4_K_M (Q4_0) of the same input has (`model/tests/quant_mix.rs` checks every target
//! against llama.cpp's choices on three models):
//!
//! - the output head (and the token embedding when it doubles as the head) gets Q6_K,
//!   or Q8_0 when the base is Q8_0 or its rows are not whole 256-blocks (Q6_K's fallback);
//! - Q4_K_M / Q5_K_M: attn_v and ffn_down get Q6_K on the "use more bits" layers (the
//!   first and last eighth, and every third layer between); Q4_K_S: Q5_K on the first
//!   four attn_v and on ffn_down in the first eighth of the layers;
//! - a matrix whose rows are not whole 256-blocks falls back to Q5_0 (for Q4_K), Q5_1
//!   (Q5_K) or Q8_0 (Q6_K), and to F16 when they are not whole 32-blocks either.
//!
//! Tensors llama.cpp does not quantize (vectors, norms, position embeddings) are written
//! F32 here, which is what llama.cpp keeps for inputs converted from Hugging Face (its
//! converter stores them F32); a float input's other types would be kept by llama.cpp.

use super::target::{ftype, Mix, Target};
use lamina_tensor::quant::GgmlType;

/// The hyperparameters the mixes look at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelShape {
    pub arch: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
}

/// llama.cpp's tensor categories (`tensor_get_category`), for LLaMA-like names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnV,
    FfnDown,
    Output,
    Other,
}

fn category(name: &str) -> Category {
    if name == "output.weight" {
        Category::Output
    } else if name == "token_embd.weight" {
        Category::TokenEmbd
    } else if ["attn_qkv.weight", "attn_kv_b.weight", "attn_v.weight"].iter().any(|p| name.contains(p)) {
        // What llama.cpp treats as "attn_v-like" (`category_is_attn_v`).
        Category::AttnV
    } else if name.contains("ffn_down") {
        Category::FfnDown
    } else {
        Category::Other
    }
}

/// Dimensions after dropping trailing ones (ggml's `ggml_n_dims`).
fn n_dims(ne: &[u64]) -> usize {
    ne.iter().rposition(|&d| d != 1).map_or(1, |i| i + 1)
}

/// llama.cpp's `tensor_allows_quantization`, minus the names no dense text model has.
fn allows_quantization(name: &str, ne: &[u64]) -> bool {
    const NEVER: [&str; 6] =
        ["_norm.weight", "ffn_gate_inp.weight", "ssm_conv1d", "attn_rel_b.weight", "altup", "laurel"];
    n_dims(ne) >= 2
        && name.ends_with("weight")
        && !NEVER.iter().any(|p| name.contains(p))
        && name != "position_embd.weight"
        && name != "token_types.weight"
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third
/// layer between them.
fn use_more_bits(i: usize, n: usize) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// `tensor_type_fallback`: a type whose blocks fit rows of `cols` elements.
fn fallback(ty: GgmlType, cols: u64) -> GgmlType {
    if cols.is_multiple_of(ty.block_size() as u64) {
        return ty;
    }
    let t = match ty {
        GgmlType::Q2K | GgmlType::Q3K => GgmlType::Q4_0,
        GgmlType::Q4K => GgmlType::Q5_0,
        GgmlType::Q5K => GgmlType::Q5_1,
        GgmlType::Q6K => GgmlType::Q8_0,
        other => other,
    };
    if cols.is_multiple_of(t.block_size() as u64) {
        t
    } else {
        GgmlType::F16
    }
}

/// The layer number of `blk.N.*` names (none for the others).
fn layer_of(name: &str) -> Option<usize> {
    name.strip_prefix("blk.")?.split('.').next()?.parse().ok()
}

/// The type of each tensor `(name, ne)` for `target`, in the order given.
pub fn plan(target: &Target, tensors: &[(&str, &[u64])], shape: &ModelShape) -> Vec<GgmlType> {
    llama_cpp(target, tensors, shape)
}

/// Where the walk over the tensors is: llama.cpp's `quantize_state_impl` counters.
struct Walk {
    tied: bool,
    n_attn_v: usize,
    i_attn_v: usize,
    i_ffn_down: usize,
}

fn llama_cpp(target: &Target, tensors: &[(&str, &[u64])], shape: &ModelShape) -> Vec<GgmlType> {
    // llama.cpp walks the tensors sorted by (layer, name) and counts attn_v tensors as it
    // goes; do the same whatever the input order.
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by_key(|&i| (layer_of(tensors[i].0).map_or(-1, |l| l as i64), tensors[i].0));
    let mut walk = Walk {
        tied: !tensors.iter().any(|(n, _)| *n == "output.weight"),
        n_attn_v: tensors.iter().filter(|(n, _)| category(n) == Category::AttnV).count(),
        i_attn_v: 0,
        i_ffn_down: 0,
    };
    let mut types = vec![GgmlType::F32; tensors.len()];
    for i in order {
        let (name, ne) = tensors[i];
        if !allows_quantization(name, ne) {
            continue;
        }
        let ty = match target.mix {
            Mix::LlamaCpp => mixture_type(target, shape, category(name), ne[0], &mut walk),
            _ => target.base,
        };
        types[i] = fallback(ty, ne[0]);
    }
    types
}

/// `llama_tensor_get_type_impl` on a dense (no experts) model, without an importance
/// matrix: for the 32-block file types only the head's rule applies.
fn mixture_type(target: &Target, shape: &ModelShape, cat: Category, cols: u64, walk: &mut Walk) -> GgmlType {
    let (base, ft) = (target.base, target.file_type);
    match cat {
        Category::Output => head_type(base, cols),
        Category::TokenEmbd if walk.tied => head_type(base, cols),
        Category::AttnV => {
            let i = walk.i_attn_v;
            walk.i_attn_v += 1;
            let mut ty = base;
            if (ft == ftype::Q4_K_M || ft == ftype::Q5_K_M) && use_more_bits(i, walk.n_attn_v) {
                ty = GgmlType::Q6K;
            } else if ft == ftype::Q4_K_S && i < 4 {
                ty = GgmlType::Q5K;
            }
            // LLaMA-2/3 70B (llama.cpp's LLM_TYPE_70B: 80 layers, grouped-query heads)
            // shares each attn_v among 8 query heads, so more bits there cost little.
            let is_70b = shape.arch == "llama" && shape.n_layer == 80 && shape.n_head != shape.n_head_kv;
            if is_70b && matches!(ty, GgmlType::Q3K | GgmlType::Q4K) {
                ty = GgmlType::Q5K;
            }
            ty
        }
        Category::FfnDown => {
            // llama.cpp's layer is the running count, out of the block count.
            let (i, n) = (walk.i_ffn_down, shape.n_layer);
            walk.i_ffn_down += 1;
            if (ft == ftype::Q4_K_M || ft == ftype::Q5_K_M) && use_more_bits(i, n) {
                GgmlType::Q6K
            } else if ft == ftype::Q4_K_S && shape.arch != "falcon" && i < n / 8 {
                GgmlType::Q5K
            } else {
                base
            }
        }
        _ => base,
    }
}

/// The head (or tied embedding): Q8_0 when its rows are not whole blocks of the base
/// format, else Q6_K (unless the base is Q8_0).
fn head_type(base: GgmlType, cols: u64) -> GgmlType {
    if !cols.is_multiple_of(base.block_size() as u64) || base == GgmlType::Q8_0 {
        GgmlType::Q8_0
    } else {
        GgmlType::Q6K
    }
}
