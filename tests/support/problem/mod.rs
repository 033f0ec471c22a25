//! `Problem`: one op, its parameters and its input shapes — the row type of the
//! conformance table and of the gradient-check table. A problem knows its inputs (shape,
//! value distribution, whether the op is differentiable in it), its f64 reference
//! (`eval.rs`) and how to run the engine on it (`eval.rs`).

mod eval;

use crate::data::Values;
pub use crate::reference::Reduction;
use lamina_tensor::quant::GgmlType;
use lamina_tensor::{BinaryOp, CmpOp, DType, OpName, RopeConvention, UnaryOp};

/// One input of a problem.
#[derive(Clone, Debug)]
pub struct Input {
    pub shape: Vec<usize>,
    pub values: Values,
    /// The gradient check differentiates with respect to this input.
    pub diff: bool,
    /// For id inputs: I32 or U32. Float inputs take the test dtype.
    pub id_dtype: DType,
}

impl Input {
    fn float(shape: &[usize], values: Values, diff: bool) -> Input {
        Input { shape: shape.to_vec(), values, diff, id_dtype: DType::F32 }
    }
    fn ids(shape: &[usize], values: Values, id_dtype: DType) -> Input {
        Input { shape: shape.to_vec(), values, diff: false, id_dtype }
    }
    pub fn is_ids(&self) -> bool {
        self.values.is_ids()
    }
}

/// An attention mask: its shape (broadcast to (B, Hq, Tq, Tk)) and whether it holds -inf.
#[derive(Clone, Debug)]
pub struct MaskSpec {
    pub shape: Vec<usize>,
    pub neg_inf: bool,
}

#[derive(Clone, Debug)]
pub enum Problem {
    /// `specials`: inputs include 0, +-inf and NaN.
    Unary {
        op: UnaryOp,
        shape: Vec<usize>,
        specials: bool,
    },
    Binary {
        op: BinaryOp,
        a: Vec<usize>,
        b: Vec<usize>,
        specials: bool,
    },
    /// Inputs are small integers (so Eq/Le/Ge see equal pairs), or specials.
    Cmp {
        op: CmpOp,
        a: Vec<usize>,
        b: Vec<usize>,
        specials: bool,
    },
    Where {
        cond: Vec<usize>,
        a: Vec<usize>,
        b: Vec<usize>,
    },
    MaskedFill {
        x: Vec<usize>,
        mask: Vec<usize>,
        value: f32,
    },
    Reduce {
        op: Reduction,
        shape: Vec<usize>,
        axes: Vec<isize>,
        keepdim: bool,
        specials: bool,
    },
    /// Logical operands (..., m, k) and (..., k, n); `ta`/`tb`: the operand is stored
    /// transposed and passed as `.t()` (a strided view the GEMM reads in place).
    Matmul {
        a: Vec<usize>,
        b: Vec<usize>,
        ta: bool,
        tb: bool,
    },
    /// x (..., cols) @ W^T with W (rows, cols) in ggml blocks of `ty` (cols = x's last dim,
    /// whole blocks). W is random blocks drawn from the label (`quant_weight`), so the
    /// engine and the reference (which decodes them in f64) see the same bytes.
    MatmulQt {
        x: Vec<usize>,
        rows: usize,
        ty: GgmlType,
    },
    /// `values`: e.g. `AdditiveMask { neg_inf: true }` for -inf logits (never a whole row;
    /// needs dim = last), or logits past exp's f32 range to test the max subtraction.
    Softmax {
        shape: Vec<usize>,
        dim: isize,
        log: bool,
        values: Values,
    },
    /// `offset`: inputs are offset +- 1.5 rather than N(0, 1) (the mean's cancellation).
    LayerNorm {
        shape: Vec<usize>,
        weight: bool,
        bias: bool,
        eps: f32,
        offset: f32,
    },
    RmsNorm {
        shape: Vec<usize>,
        weight: bool,
        eps: f32,
    },
    /// logits (n, c); every `every`-th target is `ignore_index` (0: none).
    CrossEntropy {
        n: usize,
        c: usize,
        ignore_index: i64,
        every: usize,
    },
    Embedding {
        vocab: usize,
        dim: usize,
        ids: Vec<usize>,
    },
    IndexSelect {
        shape: Vec<usize>,
        dim: usize,
        n_ids: usize,
    },
    Gather {
        shape: Vec<usize>,
        dim: usize,
        index: Vec<usize>,
    },
    IndexAdd {
        shape: Vec<usize>,
        dim: usize,
        n_ids: usize,
    },
    ScatterAdd {
        shape: Vec<usize>,
        dim: usize,
        index: Vec<usize>,
    },
    /// x (..., T, D); the cos/sin tables are for positions start..start+T.
    Rope {
        shape: Vec<usize>,
        convention: RopeConvention,
        start: usize,
        /// The engine side rotates by its own `rope_tables` (the reference always uses the
        /// f64 formula's), so the tables are checked too; otherwise both sides get the
        /// reference tables as inputs (strided in the strided layout).
        engine_tables: bool,
    },
    Attention {
        b: usize,
        hq: usize,
        hkv: usize,
        tq: usize,
        tk: usize,
        d: usize,
        dv: usize,
        causal: bool,
        mask: Option<MaskSpec>,
        scale: Option<f32>,
    },
    Dropout {
        shape: Vec<usize>,
        p: f32,
        seed: u64,
    },
    Cast {
        shape: Vec<usize>,
        to: DType,
        values: Values,
    },
    Reshape {
        shape: Vec<usize>,
        to: Vec<usize>,
    },
    Permute {
        shape: Vec<usize>,
        dims: Vec<usize>,
    },
    Narrow {
        shape: Vec<usize>,
        dim: usize,
        start: usize,
        len: usize,
    },
    BroadcastTo {
        shape: Vec<usize>,
        to: Vec<usize>,
    },
    /// `x.permute(dims).contiguous()`: always a real copy.
    Contiguous {
        shape: Vec<usize>,
        dims: Vec<usize>,
    },
    Concat {
        shapes: Vec<Vec<usize>>,
        dim: usize,
    },
}

fn shape_str(s: &[usize]) -> String {
    format!("{s:?}").replace(' ', "")
}

impl Problem {
    /// The catalog entry this problem covers.
    pub fn op(&self) -> OpName {
        use Problem as P;
        match self {
            P::Unary { op, .. } => match op {
                UnaryOp::Neg => OpName::Neg,
                UnaryOp::Exp => OpName::Exp,
                UnaryOp::Log => OpName::Log,
                UnaryOp::Sqrt => OpName::Sqrt,
                UnaryOp::Rsqrt => OpName::Rsqrt,
                UnaryOp::Tanh => OpName::Tanh,
                UnaryOp::Sigmoid => OpName::Sigmoid,
                UnaryOp::Relu => OpName::Relu,
                UnaryOp::Silu => OpName::Silu,
                UnaryOp::GeluTanh => OpName::GeluTanh,
                UnaryOp::GeluErf => OpName::GeluErf,
                UnaryOp::Abs => OpName::Abs,
                UnaryOp::Recip => OpName::Recip,
                UnaryOp::Square => OpName::Square,
                UnaryOp::Powf(_) => OpName::Powf,
                UnaryOp::Clamp { .. } => OpName::Clamp,
                UnaryOp::Affine { .. } => OpName::Affine,
            },
            P::Binary { op, .. } => match op {
                BinaryOp::Add => OpName::Add,
                BinaryOp::Sub => OpName::Sub,
                BinaryOp::Mul => OpName::Mul,
                BinaryOp::Div => OpName::Div,
                BinaryOp::Maximum => OpName::Maximum,
                BinaryOp::Minimum => OpName::Minimum,
            },
            P::Cmp { .. } => OpName::Cmp,
            P::Where { .. } => OpName::Where,
            P::MaskedFill { .. } => OpName::MaskedFill,
            P::Reduce { op, .. } => match op {
                Reduction::Sum => OpName::Sum,
                Reduction::Mean => OpName::Mean,
                Reduction::Max => OpName::Max,
                Reduction::Min => OpName::Min,
            },
            P::Matmul { .. } => OpName::Matmul,
            P::MatmulQt { .. } => OpName::MatmulQt,
            P::Softmax { log: false, .. } => OpName::Softmax,
            P::Softmax { log: true, .. } => OpName::LogSoftmax,
            P::LayerNorm { .. } => OpName::LayerNorm,
            P::RmsNorm { .. } => OpName::RmsNorm,
            P::CrossEntropy { .. } => OpName::CrossEntropy,
            P::Embedding { .. } => OpName::Embedding,
            P::IndexSelect { .. } => OpName::IndexSelect,
            P::Gather { .. } => OpName::Gather,
            P::IndexAdd { .. } => OpName::IndexAdd,
            P::ScatterAdd { .. } => OpName::ScatterAdd,
            P::Rope { .. } => OpName::Rope,
            P::Attention { .. } => OpName::Attention,
            P::Dropout { .. } => OpName::Dropout,
            P::Cast { .. } => OpName::Cast,
            P::Reshape { .. } => OpName::Reshape,
            P::Permute { .. } => OpName::Permute,
            P::Narrow { .. } => OpName::Narrow,
            P::BroadcastTo { .. } => OpName::BroadcastTo,
            P::Contiguous { .. } => OpName::Contiguous,
            P::Concat { .. } => OpName::Concat,
        }
    }

    /// A short description: op, parameters, input shapes.
    pub fn label(&self) -> String {
        use Problem as P;
        let s = shape_str;
        let sp = |b: &bool| if *b { " specials" } else { "" };
        match self {
            P::Unary { op, shape, specials } => format!("{op:?} {}{}", s(shape), sp(specials)),
            P::Binary { op, a, b, specials } => format!("{op:?} {} {}{}", s(a), s(b), sp(specials)),
            P::Cmp { op, a, b, specials } => format!("cmp {op:?} {} {}{}", s(a), s(b), sp(specials)),
            P::Where { cond, a, b } => format!("where {} {} {}", s(cond), s(a), s(b)),
            P::MaskedFill { x, mask, value } => format!("masked_fill {} {} {value}", s(x), s(mask)),
            P::Reduce { op, shape, axes, keepdim, specials } => {
                format!("{op:?} {} axes={axes:?} keepdim={keepdim}{}", s(shape), sp(specials))
            }
            P::Matmul { a, b, ta, tb } => {
                format!("matmul {}{} {}{}", s(a), if *ta { "ᵀ" } else { "" }, s(b), if *tb { "ᵀ" } else { "" })
            }
            P::MatmulQt { x, rows, ty } => format!("matmul_qt {} W[{rows},{}] {ty}", s(x), x.last().unwrap_or(&0)),
            P::Softmax { shape, dim, log, values } => {
                format!("{} {} dim={dim} {values:?}", if *log { "log_softmax" } else { "softmax" }, s(shape))
            }
            P::LayerNorm { shape, weight, bias, eps, offset } => {
                format!("layer_norm {} w={weight} b={bias} eps={eps} offset={offset}", s(shape))
            }
            P::RmsNorm { shape, weight, eps } => format!("rms_norm {} w={weight} eps={eps}", s(shape)),
            P::CrossEntropy { n, c, ignore_index, every } => {
                format!("cross_entropy [{n},{c}] ignore={ignore_index} every={every}")
            }
            P::Embedding { vocab, dim, ids } => format!("embedding [{vocab},{dim}] ids={}", s(ids)),
            P::IndexSelect { shape, dim, n_ids } => format!("index_select {} dim={dim} ids={n_ids}", s(shape)),
            P::Gather { shape, dim, index } => format!("gather {} dim={dim} index={}", s(shape), s(index)),
            P::IndexAdd { shape, dim, n_ids } => format!("index_add {} dim={dim} ids={n_ids}", s(shape)),
            P::ScatterAdd { shape, dim, index } => format!("scatter_add {} dim={dim} index={}", s(shape), s(index)),
            P::Rope { shape, convention, start, engine_tables } => format!(
                "rope {} {convention:?} start={start}{}",
                s(shape),
                if *engine_tables { " engine tables" } else { "" }
            ),
            P::Attention { b, hq, hkv, tq, tk, d, dv, causal, mask, scale } => format!(
                "attention B={b} Hq={hq} Hkv={hkv} Tq={tq} Tk={tk} D={d} Dv={dv}{}{}{}",
                if *causal { " causal" } else { "" },
                mask.as_ref().map_or(String::new(), |m| format!(
                    " mask={}{}",
                    s(&m.shape),
                    if m.neg_inf { "(-inf)" } else { "" }
                )),
                scale.map_or(String::new(), |v| format!(" scale={v}"))
            ),
            P::Dropout { shape, p, seed } => format!("dropout {} p={p} seed={seed} (self-consistency)", s(shape)),
            P::Cast { shape, to, values } => format!("cast {} to {to} {values:?}", s(shape)),
            P::Reshape { shape, to } => format!("reshape {} to {}", s(shape), s(to)),
            P::Permute { shape, dims } => format!("permute {} {dims:?}", s(shape)),
            P::Narrow { shape, dim, start, len } => format!("narrow {} dim={dim} {start}..{}", s(shape), start + len),
            P::BroadcastTo { shape, to } => format!("broadcast {} to {}", s(shape), s(to)),
            P::Contiguous { shape, dims } => format!("contiguous {} permuted {dims:?}", s(shape)),
            P::Concat { shapes, dim } => {
                format!("cat dim={dim} {}", shapes.iter().map(|x| s(x)).collect::<Vec<_>>().join(" "))
            }
        }
    }

    /// The inputs, in the order `reference` and `run` take them.
    pub fn inputs(&self) -> Vec<Input> {
        use Problem as P;
        use Values as V;
        let f = Input::float;
        match self {
            P::Unary { op, shape, specials } => {
                let v = match op {
                    _ if *specials => V::Specials,
                    UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Rsqrt => V::Positive,
                    UnaryOp::Powf(e) if e.fract() != 0.0 => V::Positive,
                    UnaryOp::Recip => V::NonZero,
                    _ => V::Normal(2.0),
                };
                vec![f(shape, v, true)]
            }
            P::Binary { op, a, b, specials } => {
                let (va, vb) = match op {
                    _ if *specials => (V::Specials, V::Specials),
                    BinaryOp::Div => (V::Normal(2.0), V::NonZero),
                    _ => (V::Normal(2.0), V::Normal(2.0)),
                };
                vec![f(a, va, true), f(b, vb, true)]
            }
            P::Cmp { a, b, specials, .. } => {
                let v = if *specials { V::Specials } else { V::SmallInts(3) };
                vec![f(a, v.clone(), false), f(b, v, false)]
            }
            P::Where { cond, a, b } => {
                vec![f(cond, V::Mask01, false), f(a, V::Normal(1.0), true), f(b, V::Normal(1.0), true)]
            }
            P::MaskedFill { x, mask, .. } => vec![f(x, V::Normal(1.0), true), f(mask, V::Mask01, false)],
            P::Reduce { op, shape, specials, .. } => {
                let v = match op {
                    _ if *specials => V::Specials,
                    Reduction::Max | Reduction::Min => V::Distinct,
                    _ => V::Normal(1.0),
                };
                vec![f(shape, v, true)]
            }
            P::Matmul { a, b, ta, tb } => {
                let stored = |s: &[usize], t: bool| {
                    let mut s = s.to_vec();
                    let r = s.len();
                    if t {
                        s.swap(r - 2, r - 1);
                    }
                    s
                };
                vec![f(&stored(a, *ta), V::Normal(1.0), true), f(&stored(b, *tb), V::Normal(1.0), true)]
            }
            P::MatmulQt { x, .. } => vec![f(x, V::Normal(1.0), true)],
            P::Softmax { shape, values, .. } => vec![f(shape, values.clone(), true)],
            P::LayerNorm { shape, weight, bias, offset, .. } => {
                let d = *shape.last().unwrap();
                let o = *offset as f64;
                let x = if o == 0.0 { V::Normal(1.0) } else { V::Uniform(o - 1.5, o + 1.5) };
                let mut v = vec![f(shape, x, true)];
                if *weight {
                    v.push(f(&[d], V::Normal(1.0), true));
                }
                if *bias {
                    v.push(f(&[d], V::Normal(1.0), true));
                }
                v
            }
            P::RmsNorm { shape, weight, .. } => {
                let mut v = vec![f(shape, V::Normal(1.0), true)];
                if *weight {
                    v.push(f(&[*shape.last().unwrap()], V::Normal(1.0), true));
                }
                v
            }
            P::CrossEntropy { n, c, ignore_index, every } => vec![
                f(&[*n, *c], V::Normal(2.0), true),
                Input::ids(&[*n], V::Targets { classes: *c, ignore: *ignore_index, every: *every }, DType::I32),
            ],
            P::Embedding { vocab, dim, ids } => {
                vec![f(&[*vocab, *dim], V::Normal(1.0), true), Input::ids(ids, V::Ids(*vocab), DType::U32)]
            }
            P::IndexSelect { shape, dim, n_ids } => {
                vec![f(shape, V::Normal(1.0), true), Input::ids(&[*n_ids], V::Ids(shape[*dim]), DType::I32)]
            }
            P::Gather { shape, dim, index } => {
                vec![f(shape, V::Normal(1.0), true), Input::ids(index, V::Ids(shape[*dim]), DType::I32)]
            }
            P::IndexAdd { shape, dim, n_ids } => {
                let mut src = shape.clone();
                src[*dim] = *n_ids;
                vec![
                    f(shape, V::Normal(1.0), false),
                    Input::ids(&[*n_ids], V::Ids(shape[*dim]), DType::I32),
                    f(&src, V::Normal(1.0), false),
                ]
            }
            P::ScatterAdd { shape, dim, index } => vec![
                f(shape, V::Normal(1.0), false),
                Input::ids(index, V::Ids(shape[*dim]), DType::U32),
                f(index, V::Normal(1.0), false),
            ],
            P::Rope { shape, start, .. } => {
                let r = shape.len();
                let table = [shape[r - 2], shape[r - 1] / 2];
                let tab = |sin| V::RopeTable { start: *start, d: shape[r - 1], base: 10000.0, sin };
                vec![f(shape, V::Normal(1.0), true), f(&table, tab(false), false), f(&table, tab(true), false)]
            }
            P::Attention { b, hq, hkv, tq, tk, d, dv, mask, .. } => {
                let mut v = vec![
                    f(&[*b, *hq, *tq, *d], V::Normal(1.0), true),
                    f(&[*b, *hkv, *tk, *d], V::Normal(1.0), true),
                    f(&[*b, *hkv, *tk, *dv], V::Normal(1.0), true),
                ];
                if let Some(m) = mask {
                    v.push(f(&m.shape, V::AdditiveMask { neg_inf: m.neg_inf }, !m.neg_inf));
                }
                v
            }
            P::Dropout { shape, .. } => vec![f(shape, V::Normal(1.0), true)],
            P::Cast { shape, values, .. } => vec![f(shape, values.clone(), true)],
            P::Reshape { shape, .. }
            | P::Permute { shape, .. }
            | P::Narrow { shape, .. }
            | P::BroadcastTo { shape, .. }
            | P::Contiguous { shape, .. } => vec![f(shape, V::Normal(1.0), true)],
            P::Concat { shapes, .. } => shapes.iter().map(|s| f(s, V::Normal(1.0), true)).collect(),
        }
    }

    /// The dtype of the result when the float inputs have dtype `dt`.
    pub fn out_dtype(&self, dt: DType) -> DType {
        match self {
            Problem::Cast { to, .. } => *to,
            Problem::CrossEntropy { .. } => DType::F32,
            _ => dt,
        }
    }
}

impl Problem {
    /// The ggml blocks of a `MatmulQt` weight (rows, cols), drawn from the label.
    pub fn quant_weight(&self) -> Option<(GgmlType, usize, usize, Vec<u8>)> {
        let Problem::MatmulQt { x, rows, ty } = self else { return None };
        let cols = *x.last().expect("x has a last dim");
        let mut rng = crate::data::Rng::for_label(&self.label(), 0x9e1);
        Some((*ty, *rows, cols, crate::reference::quant::random_blocks(*ty, *rows, cols, &mut rng)))
    }

    /// Draw the inputs: the stream depends only on the label, `salt` and the input's
    /// position, so a case's data is the same in every run and every dtype (floats are
    /// then quantised to `dt`, so the reference sees exactly what the engine holds).
    pub fn draw(&self, dt: DType, salt: u64) -> Vec<crate::RefTensor> {
        let label = self.label();
        self.inputs()
            .iter()
            .enumerate()
            .map(|(k, inp)| {
                let mut rng = crate::data::Rng::for_label(&label, salt.wrapping_mul(1000) + k as u64);
                let t = inp.values.generate(&inp.shape, &mut rng);
                if inp.is_ids() {
                    t
                } else {
                    crate::data::quantize(&t, dt)
                }
            })
            .collect()
    }

    /// Engine tensors for drawn inputs: floats as `dt`, ids in their id dtype, all in
    /// `layout` (ids too: index kernels must read strided id tensors in logical order).
    pub fn engine_inputs(
        &self,
        xs: &[crate::RefTensor],
        dt: DType,
        layout: crate::data::InputLayout,
    ) -> lamina_tensor::Result<Vec<lamina_tensor::Tensor>> {
        self.inputs()
            .iter()
            .zip(xs)
            .map(|(inp, x)| crate::data::make_tensor(x, if inp.is_ids() { inp.id_dtype } else { dt }, layout))
            .collect()
    }
}
