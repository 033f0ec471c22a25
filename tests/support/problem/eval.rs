//! A problem's two evaluations: the f64 reference, and the engine call.

use super::{Problem, Reduction};
use crate::reference as r;
use crate::tensor::RefTensor;
use lamina_tensor::quant::QMatrix;
use lamina_tensor::{scaled_dot_product_attention, DType, Result, Tensor, UnaryOp};

impl Problem {
    /// The f64 result on `xs` (in `inputs()` order; ids as integer-valued f64). `dt` is the
    /// float inputs' dtype: dropout draws its mask in it and masked_fill stores its value
    /// in it.
    pub fn reference(&self, xs: &[RefTensor], dt: DType) -> RefTensor {
        use Problem as P;
        match self {
            P::Unary { op, .. } => r::unary(*op, &xs[0]),
            P::Binary { op, .. } => r::binary(*op, &xs[0], &xs[1]),
            P::Cmp { op, .. } => r::cmp(*op, &xs[0], &xs[1]),
            P::Where { .. } => r::where_cond(&xs[0], &xs[1], &xs[2]),
            P::MaskedFill { value, .. } => r::masked_fill(&xs[0], &xs[1], r::round_to(dt, *value as f64)),
            P::Reduce { op, axes, keepdim, .. } => r::reduce(&xs[0], *op, axes, *keepdim),
            P::Matmul { ta, tb, .. } => {
                let a = if *ta { r::transpose_last(&xs[0]) } else { xs[0].clone() };
                let b = if *tb { r::transpose_last(&xs[1]) } else { xs[1].clone() };
                r::matmul(&a, &b)
            }
            P::MatmulQt { .. } => {
                let (ty, rows, cols, bytes) = self.quant_weight().expect("a matmul_qt problem");
                let w = RefTensor::new(&[rows, cols], r::quant::dequantize(ty, &bytes, rows, cols));
                r::matmul(&xs[0], &r::transpose_last(&w))
            }
            P::Softmax { dim, log: false, .. } => r::softmax(&xs[0], *dim),
            P::Softmax { dim, log: true, .. } => r::log_softmax(&xs[0], *dim),
            P::LayerNorm { weight, bias, eps, .. } => {
                let w = weight.then(|| &xs[1]);
                let b = bias.then(|| &xs[1 + *weight as usize]);
                r::layer_norm(&xs[0], w, b, *eps as f64)
            }
            P::RmsNorm { weight, eps, .. } => r::rms_norm(&xs[0], weight.then(|| &xs[1]), *eps as f64),
            P::CrossEntropy { ignore_index, .. } => r::cross_entropy(&xs[0], &xs[1].ids(), *ignore_index),
            P::Embedding { .. } => r::embedding(&xs[0], &xs[1]),
            P::IndexSelect { dim, .. } => r::index_select(&xs[0], *dim, &xs[1].ids()),
            P::Gather { dim, .. } => r::gather(&xs[0], *dim, &xs[1]),
            P::IndexAdd { dim, .. } => r::index_add(&xs[0], *dim, &xs[1].ids(), &xs[2]),
            P::ScatterAdd { dim, .. } => r::scatter_add(&xs[0], *dim, &xs[1], &xs[2]),
            P::Rope { convention, .. } => r::rope(&xs[0], &xs[1], &xs[2], *convention),
            P::Attention { causal, scale, .. } => {
                r::attention(&xs[0], &xs[1], &xs[2], xs.get(3), *causal, scale.map(|s| s as f64))
            }
            P::Dropout { p, seed, .. } => r::dropout(&xs[0], *p as f64, *seed, dt),
            P::Cast { to, .. } => r::cast(&xs[0], *to),
            P::Reshape { to, .. } => r::reshape(&xs[0], to),
            P::Permute { dims, .. } => r::permute(&xs[0], dims),
            P::Narrow { dim, start, len, .. } => r::narrow(&xs[0], *dim, *start, *len),
            P::BroadcastTo { to, .. } => r::broadcast_to(&xs[0], to),
            P::Contiguous { dims, .. } => r::contiguous(&r::permute(&xs[0], dims)),
            P::Concat { dim, .. } => r::concat(&xs.iter().collect::<Vec<_>>(), *dim),
        }
    }

    /// What an op's rounding error is measured against, where that is not the result
    /// itself. None: measure against the result.
    /// - Sums (sum, mean, matmul): the same op on |inputs| (sum |x_i|, |A| |B|). A blocked
    ///   f32 sum is off by about log2(n) u sum |x_i|, which for a sum that cancels (16 terms
    ///   summing to 0.015) is many ulps of the result and still a correct kernel.
    /// - GELU: |y| max(1, x^2) for x < 0, |y| for x >= 0. In the negative tail y ~ x e^(-x^2/2) (erf) or
    ///   x e^(-0.07 x^3 - 1.6 x) (tanh): the f32 rounding of that exponent's argument, about
    ///   u x^2, becomes a relative error of the result, in every f32 implementation
    ///   (measured 10-12u at x ~ -3.5); a wrong formula (1 + erf cancelling) is off by far more.
    pub fn error_scale(&self, xs: &[RefTensor], dt: DType) -> Option<RefTensor> {
        let on_abs = |xs: &[RefTensor]| {
            let abs: Vec<RefTensor> =
                xs.iter().map(|x| RefTensor::new(&x.shape, x.data.iter().map(|v| v.abs()).collect())).collect();
            self.reference(&abs, dt)
        };
        match self {
            Problem::Reduce { op: Reduction::Sum | Reduction::Mean, .. } | Problem::Matmul { .. } => Some(on_abs(xs)),
            // The CPU rounds x to 8 bits per group and both backends sum in f32: errors of
            // the terms x_k w_k, so measured against |x| |W|^T (a sum that cancels to near
            // zero keeps the error of its terms, not one of its own size).
            Problem::MatmulQt { .. } => {
                let (ty, rows, cols, bytes) = self.quant_weight()?;
                let w_abs = r::quant::dequantize(ty, &bytes, rows, cols).iter().map(|v| v.abs()).collect();
                let x_abs = RefTensor::new(&xs[0].shape, xs[0].data.iter().map(|v| v.abs()).collect());
                Some(r::matmul(&x_abs, &r::transpose_last(&RefTensor::new(&[rows, cols], w_abs))))
            }
            Problem::Unary { op: UnaryOp::GeluErf | UnaryOp::GeluTanh, .. } => {
                let y = self.reference(xs, dt);
                let scale = xs[0]
                    .data
                    .iter()
                    .zip(&y.data)
                    .map(|(&x, y)| y.abs() * if x < 0.0 { (x * x).max(1.0) } else { 1.0 })
                    .collect();
                Some(RefTensor::new(&y.shape, scale))
            }
            _ => None,
        }
    }

    /// The reference without its piecewise-constant steps, for finite differences: a
    /// cast's rounding is dropped (its gradient is the identity, straight through).
    pub fn reference_smooth(&self, xs: &[RefTensor], dt: DType) -> RefTensor {
        match self {
            Problem::Cast { .. } => xs[0].clone(),
            _ => self.reference(xs, dt),
        }
    }

    /// Run the engine on `xs` (float inputs in the test dtype, ids as I32/U32).
    pub fn run(&self, xs: &[Tensor]) -> Result<Tensor> {
        use Problem as P;
        let x = &xs[0];
        match self {
            P::Unary { op, .. } => x.unary(*op),
            P::Binary { op, .. } => x.binary(&xs[1], *op),
            P::Cmp { op, .. } => x.cmp(&xs[1], *op),
            P::Where { .. } => x.where_cond(&xs[1], &xs[2]),
            P::MaskedFill { value, .. } => x.masked_fill(&xs[1], *value),
            P::Reduce { op, axes, keepdim, .. } => match op {
                Reduction::Sum => x.sum(axes, *keepdim),
                Reduction::Mean => x.mean(axes, *keepdim),
                Reduction::Max => x.max(axes, *keepdim),
                Reduction::Min => x.min(axes, *keepdim),
            },
            P::Matmul { ta, tb, .. } => {
                let a = if *ta { x.t()? } else { x.clone() };
                let b = if *tb { xs[1].t()? } else { xs[1].clone() };
                a.matmul(&b)
            }
            P::MatmulQt { .. } => {
                let (ty, rows, cols, bytes) = self.quant_weight().expect("a matmul_qt problem");
                x.matmul_qt(&QMatrix::new(ty, rows, cols, bytes)?)
            }
            P::Softmax { dim, log: false, .. } => x.softmax(*dim),
            P::Softmax { dim, log: true, .. } => x.log_softmax(*dim),
            P::LayerNorm { weight, bias, eps, .. } => {
                let w = weight.then(|| &xs[1]);
                let b = bias.then(|| &xs[1 + *weight as usize]);
                x.layer_norm(w, b, *eps)
            }
            P::RmsNorm { weight, eps, .. } => x.rms_norm(weight.then(|| &xs[1]), *eps),
            P::CrossEntropy { ignore_index, .. } => x.cross_entropy(&xs[1], *ignore_index),
            P::Embedding { .. } => x.embedding(&xs[1]),
            P::IndexSelect { dim, .. } => x.index_select(*dim, &xs[1]),
            P::Gather { dim, .. } => x.gather(*dim, &xs[1]),
            P::IndexAdd { dim, .. } => x.index_add(*dim, &xs[1], &xs[2]),
            P::ScatterAdd { dim, .. } => x.scatter_add(*dim, &xs[1], &xs[2]),
            P::Rope { convention, engine_tables: false, .. } => x.rope(&xs[1], &xs[2], *convention),
            P::Rope { convention, start, engine_tables: true, .. } => {
                let (t, d) = (xs[1].shape()[0], x.shape()[x.rank() - 1]);
                let (cos, sin) = lamina_tensor::rope_tables(*start, t, d, 10000.0, x.dtype())?;
                x.rope(&cos.to_device(x.device())?, &sin.to_device(x.device())?, *convention)
            }
            P::Attention { causal, scale, .. } => {
                scaled_dot_product_attention(x, &xs[1], &xs[2], xs.get(3), *causal, *scale)
            }
            P::Dropout { p, seed, .. } => x.dropout(*p, *seed),
            P::Cast { to, .. } => x.to_dtype(*to),
            P::Reshape { to, .. } => x.reshape(to),
            P::Permute { dims, .. } => x.permute(dims),
            P::Narrow { dim, start, len, .. } => x.narrow(*dim, *start, *len),
            P::BroadcastTo { to, .. } => x.broadcast_to(to),
            P::Contiguous { dims, .. } => x.permute(dims)?.contiguous(),
            P::Concat { dim, .. } => Tensor::cat(&xs.iter().collect::<Vec<_>>(), *dim),
        }
    }
}
