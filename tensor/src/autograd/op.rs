//! What the tape records: the op that made a tensor and the inputs its gradient rule needs.

use crate::ops::{BinaryOp, ReduceOp, RopeConvention, UnaryOp};
use crate::quant::QMatrix;
use crate::{DType, Device, Tensor};

pub(crate) enum Op {
    Unary {
        x: Tensor,
        op: UnaryOp,
    },
    /// Inputs already broadcast to the output shape (broadcasting is a recorded view).
    Binary {
        a: Tensor,
        b: Tensor,
        op: BinaryOp,
    },
    /// `cond` is not differentiable.
    Where {
        cond: Tensor,
        a: Tensor,
        b: Tensor,
    },
    /// `axes` sorted; the output may or may not keep them as size-1 dims.
    Reduce {
        x: Tensor,
        op: ReduceOp,
        axes: Vec<usize>,
    },
    Matmul {
        a: Tensor,
        b: Tensor,
    },
    /// x @ W^T with a frozen quantized W (no gradient).
    MatmulQt {
        x: Tensor,
        w: QMatrix,
    },
    /// x @ W with a frozen quantized W.
    MatmulQ {
        x: Tensor,
        w: QMatrix,
    },
    Softmax {
        x: Tensor,
    },
    LogSoftmax {
        x: Tensor,
    },
    /// `mean` and `rstd` (f32, shape: x's with the last dim set to 1) are saved by the
    /// forward kernel for the backward rule.
    LayerNorm {
        x: Tensor,
        weight: Option<Tensor>,
        bias: Option<Tensor>,
        mean: Tensor,
        rstd: Tensor,
    },
    RmsNorm {
        x: Tensor,
        weight: Option<Tensor>,
        rstd: Tensor,
    },
    CrossEntropy {
        logits: Tensor,
        targets: Tensor,
        ignore_index: i64,
    },
    IndexSelect {
        x: Tensor,
        dim: usize,
        ids: Tensor,
    },
    Gather {
        x: Tensor,
        dim: usize,
        index: Tensor,
    },
    Rope {
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        convention: RopeConvention,
    },
    Attention {
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Option<Tensor>,
        causal: bool,
        scale: f32,
    },
    Cast {
        x: Tensor,
        from: DType,
    },
    ToDevice {
        x: Tensor,
        from: Device,
    },
    Reshape {
        x: Tensor,
    },
    Permute {
        x: Tensor,
        dims: Vec<usize>,
    },
    Narrow {
        x: Tensor,
        dim: usize,
        start: usize,
    },
    Broadcast {
        x: Tensor,
    },
    Copy {
        x: Tensor,
    },
    /// The mask is a function of (seed, element index): nothing but these is kept.
    Dropout {
        x: Tensor,
        p: f32,
        seed: u64,
    },
    Concat {
        xs: Vec<Tensor>,
        dim: usize,
    },
}

impl Op {
    /// Whether this op's gradient rule reads the op's own output (`y` in `input_grads`):
    /// such outputs are never replaced by data-free links.
    pub(crate) fn reads_output(&self) -> bool {
        matches!(
            self,
            Op::Unary { .. }
                | Op::Softmax { .. }
                | Op::LogSoftmax { .. }
                | Op::Reduce { op: ReduceOp::Max | ReduceOp::Min, .. }
                | Op::Binary { op: BinaryOp::Div, .. }
        )
    }

    /// Every tensor input (differentiable or not); the tape walks these.
    pub(crate) fn inputs(&self) -> Vec<&Tensor> {
        match self {
            Op::Unary { x, .. }
            | Op::Reduce { x, .. }
            | Op::Softmax { x }
            | Op::LogSoftmax { x }
            | Op::Cast { x, .. }
            | Op::ToDevice { x, .. }
            | Op::Reshape { x }
            | Op::Permute { x, .. }
            | Op::Narrow { x, .. }
            | Op::Broadcast { x }
            | Op::Copy { x }
            | Op::Dropout { x, .. }
            | Op::MatmulQt { x, .. }
            | Op::MatmulQ { x, .. } => vec![x],
            Op::Binary { a, b, .. } | Op::Matmul { a, b } => vec![a, b],
            Op::Where { cond, a, b } => vec![cond, a, b],
            Op::LayerNorm { x, weight, bias, .. } => {
                let mut v = vec![x];
                v.extend(weight.iter());
                v.extend(bias.iter());
                v
            }
            Op::RmsNorm { x, weight, .. } => {
                let mut v = vec![x];
                v.extend(weight.iter());
                v
            }
            Op::CrossEntropy { logits, targets, .. } => vec![logits, targets],
            Op::IndexSelect { x, ids, .. } => vec![x, ids],
            Op::Gather { x, index, .. } => vec![x, index],
            Op::Rope { x, cos, sin, .. } => vec![x, cos, sin],
            Op::Attention { q, k, v, mask, .. } => {
                let mut out = vec![q, k, v];
                out.extend(mask.iter());
                out
            }
            Op::Concat { xs, .. } => xs.iter().collect(),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Unary { .. } => "unary",
            Op::Binary { .. } => "binary",
            Op::Where { .. } => "where",
            Op::Reduce { .. } => "reduce",
            Op::Matmul { .. } => "matmul",
            Op::MatmulQt { .. } => "matmul_qt",
            Op::MatmulQ { .. } => "matmul_q",
            Op::Softmax { .. } => "softmax",
            Op::LogSoftmax { .. } => "log_softmax",
            Op::LayerNorm { .. } => "layer_norm",
            Op::RmsNorm { .. } => "rms_norm",
            Op::CrossEntropy { .. } => "cross_entropy",
            Op::IndexSelect { .. } => "index_select",
            Op::Gather { .. } => "gather",
            Op::Rope { .. } => "rope",
            Op::Attention { .. } => "attention",
            Op::Cast { .. } => "cast",
            Op::ToDevice { .. } => "to_device",
            Op::Reshape { .. } => "reshape",
            Op::Permute { .. } => "permute",
            Op::Narrow { .. } => "narrow",
            Op::Broadcast { .. } => "broadcast",
            Op::Copy { .. } => "copy",
            Op::Dropout { .. } => "dropout",
            Op::Concat { .. } => "concat",
        }
    }
}
