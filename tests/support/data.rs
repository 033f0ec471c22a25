//! Problem data: a seeded generator, the value distributions ops need (positive for log,
//! away from zero for division, tie-free for max, ids, masks, IEEE specials), rounding
//! to the test dtype, and the two input layouts (contiguous, strided view).

use crate::reference::round_to;
use crate::tensor::{ravel, unravel, RefTensor};
use lamina_tensor::random::SplitMix64;
use lamina_tensor::{DType, Result, Tensor};

/// Test data's generator: the engine's SplitMix64 stream (independent of what it tests:
/// the ops never draw from it), plus a label-derived seed and normals.
pub struct Rng(SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(SplitMix64::new(seed))
    }

    /// A generator whose stream depends only on `label` and `k` (stable across runs).
    pub fn for_label(label: &str, k: u64) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a
        for b in label.bytes().chain(k.to_le_bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng::new(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.uniform()
    }

    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Uniform integer in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize
    }
}

/// How an input's values are drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// N(0, s^2).
    Normal(f64),
    Uniform(f64, f64),
    /// U(0.1, 4): the domain of log, sqrt, rsqrt, fractional powers.
    Positive,
    /// +-U(0.5, 2): denominators.
    NonZero,
    /// All different and at least 0.05 apart (a shuffled grid): max/min have no ties.
    Distinct,
    /// 0.0 or 1.0 (conditions, masks).
    Mask01,
    /// Integers in -n..=n as floats (exact in every dtype): comparisons meet ties.
    SmallInts(i64),
    /// A RoPE cos (or sin) table (T, D/2) for positions start..start+T.
    RopeTable {
        start: usize,
        d: usize,
        base: f64,
        sin: bool,
    },
    /// N(0, 4) with about one element in five replaced by 0, +inf, -inf or NaN.
    Specials,
    /// Integer ids in 0..n.
    Ids(usize),
    /// Class ids in 0..classes; every `every`-th row is `ignore` instead.
    Targets {
        classes: usize,
        ignore: i64,
        every: usize,
    },
    /// An additive attention mask (last dim = keys): N(0, 1), plus -inf with
    /// probability 0.3 when `neg_inf` — never at key 0, so no row is fully masked.
    AdditiveMask {
        neg_inf: bool,
    },
}

impl Values {
    pub fn is_ids(&self) -> bool {
        matches!(self, Values::Ids(_) | Values::Targets { .. })
    }

    pub fn generate(&self, shape: &[usize], rng: &mut Rng) -> RefTensor {
        let n: usize = shape.iter().product();
        let data: Vec<f64> = match self {
            Values::Normal(s) => (0..n).map(|_| s * rng.normal()).collect(),
            Values::Uniform(lo, hi) => (0..n).map(|_| lo + (hi - lo) * rng.uniform()).collect(),
            Values::Positive => (0..n).map(|_| 0.1 + 3.9 * rng.uniform()).collect(),
            Values::NonZero => {
                (0..n).map(|_| if rng.uniform() < 0.5 { -1.0 } else { 1.0 } * (0.5 + 1.5 * rng.uniform())).collect()
            }
            Values::Distinct => {
                // A random permutation of a grid: spacing 1/8 survives bf16 rounding.
                let mut v: Vec<f64> = (0..n).map(|i| (i as f64 - n as f64 / 2.0) / 8.0).collect();
                for i in (1..n).rev() {
                    v.swap(i, rng.below(i + 1));
                }
                v
            }
            Values::Mask01 => (0..n).map(|_| if rng.uniform() < 0.5 { 0.0 } else { 1.0 }).collect(),
            Values::SmallInts(k) => (0..n).map(|_| (rng.below(2 * *k as usize + 1) as i64 - k) as f64).collect(),
            Values::RopeTable { start, d, base, sin } => {
                let (c, s) = crate::reference::rope_tables(*start, shape[0], *d, *base);
                if *sin {
                    s.data
                } else {
                    c.data
                }
            }
            Values::Specials => (0..n)
                .map(|_| match rng.below(20) {
                    0 => 0.0,
                    1 => f64::INFINITY,
                    2 => f64::NEG_INFINITY,
                    3 => f64::NAN,
                    _ => 2.0 * rng.normal(),
                })
                .collect(),
            Values::Ids(upper) => (0..n).map(|_| rng.below(*upper) as f64).collect(),
            Values::Targets { classes, ignore, every } => (0..n)
                .map(|i| if *every > 0 && i % every == every - 1 { *ignore as f64 } else { rng.below(*classes) as f64 })
                .collect(),
            Values::AdditiveMask { neg_inf } => (0..n)
                .map(|i| {
                    let key0 = shape.last().is_none_or(|&tk| i % tk.max(1) == 0);
                    if *neg_inf && !key0 && rng.uniform() < 0.3 {
                        f64::NEG_INFINITY
                    } else {
                        rng.normal()
                    }
                })
                .collect(),
        };
        RefTensor::new(shape, data)
    }
}

/// The values as `dtype` would hold them: what the engine and the reference both see.
pub fn quantize(t: &RefTensor, dtype: DType) -> RefTensor {
    t.map(|v| round_to(dtype, v))
}

/// How an input tensor is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputLayout {
    /// Row-major, offset 0.
    Contiguous,
    /// A view into a bigger NaN-filled buffer: dims stored in reverse order (so the view
    /// is a permute), every stride at least 2, a nonzero offset. A kernel that assumes
    /// contiguity, or reads outside the view, sees NaN.
    Strided,
}

impl InputLayout {
    pub const ALL: [InputLayout; 2] = [InputLayout::Contiguous, InputLayout::Strided];

    pub fn name(self) -> &'static str {
        match self {
            InputLayout::Contiguous => "contig",
            InputLayout::Strided => "strided",
        }
    }
}

/// An engine tensor of `dtype` with these values (exact when `t` is already quantised to
/// the dtype, or integer-valued for I32/U32) in the given layout.
pub fn make_tensor(t: &RefTensor, dtype: DType, layout: InputLayout) -> Result<Tensor> {
    match layout {
        InputLayout::Contiguous => t.to_tensor(dtype),
        InputLayout::Strided => strided_view(t, dtype),
    }
}

/// See [`InputLayout::Strided`]. Parent buffer (D_{r-1}+1, ..., D_0+1, 2); element x[i] sits at
/// parent[rev(i) + 1, 1]; the view narrows every dim by one, drops the trailing pair and
/// permutes the dims back.
pub fn strided_view(t: &RefTensor, dtype: DType) -> Result<Tensor> {
    let r = t.rank();
    let rev: Vec<usize> = t.shape.iter().rev().copied().collect();
    let mut pshape: Vec<usize> = rev.iter().map(|&d| d + 1).collect();
    pshape.push(2);
    let mut pdata = vec![f32::NAN; pshape.iter().product()];
    for (i, &v) in t.data.iter().enumerate() {
        let mut pidx: Vec<usize> = unravel(i, &t.shape).iter().rev().map(|&x| x + 1).collect();
        pidx.push(1);
        pdata[ravel(&pidx, &pshape)] = v as f32;
    }
    let mut view = Tensor::from_vec(pdata, &pshape)?.to_dtype(dtype)?.narrow(r, 1, 1)?.squeeze(r)?;
    for (d, &len) in rev.iter().enumerate() {
        view = view.narrow(d, 1, len)?;
    }
    let back: Vec<usize> = (0..r).rev().collect();
    view.permute(&back)
}
