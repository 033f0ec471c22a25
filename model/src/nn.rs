//! The building blocks a model is made of: each holds its parameter tensors (leaves that
//! require grad) and has a `forward`. Shapes follow PyTorch, so GPT-2 checkpoints map
//! onto them name for name: a `Linear` weight is (out, in) and is used as `x @ W^T`
//! (a transposed view, no copy).

use lamina_tensor::{DType, Device, Result, Tensor};

/// Seeds for parameter initialisation: one fresh, well-mixed seed per tensor, derived
/// from the model seed, so adding a parameter never changes the values of the others'
/// streams in a surprising way and no two tensors share a stream.
#[derive(Debug)]
pub struct SeedStream {
    base: u64,
    next: u64,
}

impl SeedStream {
    pub fn new(seed: u64) -> SeedStream {
        SeedStream { base: seed, next: 0 }
    }

    pub fn next_seed(&mut self) -> u64 {
        self.next += 1;
        splitmix(self.base ^ splitmix(self.next))
    }
}

pub(crate) use lamina_tensor::random::splitmix64 as splitmix;

/// A parameter: normal(0, std) values, registered for gradients.
pub fn normal_param(shape: &[usize], std: f32, seeds: &mut SeedStream) -> Result<Tensor> {
    Ok(Tensor::randn(shape, 0.0, std, seeds.next_seed(), DType::F32)?.requires_grad_())
}

fn const_param(shape: &[usize], value: f32) -> Result<Tensor> {
    Ok(Tensor::full(shape, value, DType::F32)?.requires_grad_())
}

/// y = x W^T + b over the last dim: x (..., in) -> (..., out).
#[derive(Debug, Clone)]
pub struct Linear {
    pub weight: Tensor,       // (out, in)
    pub bias: Option<Tensor>, // (out)
}

impl Linear {
    /// Weights normal(0, std), bias zero.
    pub fn new(d_in: usize, d_out: usize, bias: bool, std: f32, seeds: &mut SeedStream) -> Result<Linear> {
        let weight = normal_param(&[d_out, d_in], std, seeds)?;
        let bias = if bias { Some(const_param(&[d_out], 0.0)?) } else { None };
        Ok(Linear { weight, bias })
    }

    /// As `torch.nn.Linear` starts (the adapters' encoders follow PEFT, which keeps it):
    /// weight and bias U(-1/sqrt(in), 1/sqrt(in)), on `device`.
    pub fn torch_init(d_in: usize, d_out: usize, seeds: &mut SeedStream, device: Device) -> Result<Linear> {
        let bound = 1.0 / (d_in as f32).sqrt();
        let mut u = |shape: &[usize]| -> Result<Tensor> {
            let t = Tensor::rand_uniform(shape, -bound, bound, seeds.next_seed(), DType::F32)?;
            Ok(t.to_device(device)?.requires_grad_())
        };
        Ok(Linear { weight: u(&[d_out, d_in])?, bias: Some(u(&[d_out])?) })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Flatten the leading dims so the product is one large GEMM (and the weight
        // gradient one GEMM with k = rows) rather than a batch of small ones.
        let d_in = self.weight.shape()[1];
        let lead = &x.shape()[..x.rank().saturating_sub(1)];
        let rows = lead.iter().product();
        let x2 = x.reshape(&[rows, d_in])?; // (N, in)
        let mut y = x2.matmul(&self.weight.t()?)?; // (N, out)
        if let Some(b) = &self.bias {
            y = y.add(b)?; // (N, out) + (out)
        }
        let mut shape = lead.to_vec();
        shape.push(self.weight.shape()[0]);
        y.reshape(&shape) // (..., out)
    }

    pub fn parameters(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        out.push((format!("{prefix}.weight"), self.weight.clone()));
        if let Some(b) = &self.bias {
            out.push((format!("{prefix}.bias"), b.clone()));
        }
    }

    pub fn params_mut(&mut self) -> Vec<&mut Tensor> {
        let mut v = vec![&mut self.weight];
        v.extend(self.bias.as_mut());
        v
    }
}

/// A lookup table: ids (...) -> rows (..., dim).
#[derive(Debug, Clone)]
pub struct Embedding {
    pub weight: Tensor, // (num, dim)
}

impl Embedding {
    pub fn new(num: usize, dim: usize, std: f32, seeds: &mut SeedStream) -> Result<Embedding> {
        Ok(Embedding { weight: normal_param(&[num, dim], std, seeds)? })
    }

    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        self.weight.embedding(ids)
    }

    pub fn parameters(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        out.push((format!("{prefix}.weight"), self.weight.clone()));
    }

    pub fn params_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.weight]
    }
}

/// Layer normalisation over the last dim, with a learned scale and shift.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub weight: Tensor, // (dim), init 1
    pub bias: Tensor,   // (dim), init 0
    pub eps: f32,
}

impl LayerNorm {
    pub fn new(dim: usize) -> Result<LayerNorm> {
        Ok(LayerNorm { weight: const_param(&[dim], 1.0)?, bias: const_param(&[dim], 0.0)?, eps: 1e-5 })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.layer_norm(Some(&self.weight), Some(&self.bias), self.eps) // (..., dim)
    }

    pub fn parameters(&self, prefix: &str, out: &mut Vec<(String, Tensor)>) {
        out.push((format!("{prefix}.weight"), self.weight.clone()));
        out.push((format!("{prefix}.bias"), self.bias.clone()));
    }

    pub fn params_mut(&mut self) -> Vec<&mut Tensor> {
        vec![&mut self.weight, &mut self.bias]
    }
}

/// A parameter moved to `device`: a fresh leaf there, so its gradient and optimizer
/// state live on that device too.
pub fn move_param(p: &mut Tensor, device: Device) -> Result<()> {
    if p.device() != device {
        *p = p.to_device(device)?.detach().requires_grad_();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_matches_manual_product() {
        let mut seeds = SeedStream::new(1);
        let lin = Linear::new(3, 2, true, 0.5, &mut seeds).unwrap();
        lin.bias.as_ref().unwrap().assign(&Tensor::from_vec(vec![1f32, -1.0], &[2]).unwrap()).unwrap();
        let x = Tensor::from_vec(vec![1f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 2, 3]).unwrap();
        let y = lin.forward(&x).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2]);
        let w = lin.weight.to_vec::<f32>().unwrap();
        let xv = x.to_vec::<f32>().unwrap();
        let yv = y.to_vec::<f32>().unwrap();
        for r in 0..2 {
            for o in 0..2 {
                let want: f32 = (0..3).map(|i| xv[r * 3 + i] * w[o * 3 + i]).sum::<f32>() + [1.0, -1.0][o];
                assert!((yv[r * 2 + o] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn seed_stream_gives_distinct_seeds() {
        let mut s = SeedStream::new(7);
        let (a, b) = (s.next_seed(), s.next_seed());
        assert_ne!(a, b);
        assert_ne!(SeedStream::new(8).next_seed(), a);
    }
}
