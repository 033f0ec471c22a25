//! Reverse-mode autograd on a dynamic tape. Each tensor computed from a grad-tracking input
//! remembers its `Op` (inputs included); `backward` walks that graph in reverse
//! topological order, applying the rules in `grad.rs`, and accumulates into leaves.

mod grad;
mod op;

pub(crate) use grad::unary_grad;
pub(crate) use op::Op;

use crate::error::{Error, Result};
use crate::{Tensor, TensorId};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread record the tape.
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Restores the previous grad mode when dropped.
pub struct NoGradGuard {
    prev: bool,
}

impl NoGradGuard {
    pub fn new() -> NoGradGuard {
        let prev = GRAD_ENABLED.with(|g| g.replace(false));
        NoGradGuard { prev }
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.prev));
    }
}

/// Run `f` without recording: inference holds no activations for backward.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

pub(crate) fn should_track(inputs: &[&Tensor]) -> bool {
    is_grad_enabled() && inputs.iter().any(|t| t.tracks_grad())
}

impl Tensor {
    /// Backpropagate from a scalar (gradient 1).
    pub fn backward(&self) -> Result<()> {
        if self.numel() != 1 {
            return Err(Error::Autograd(format!(
                "backward() needs a scalar, got shape {:?}; use backward_with(grad)",
                self.shape()
            )));
        }
        let one = self.ones_like()?;
        self.backward_with(&one)
    }

    /// Backpropagate with a given upstream gradient of this tensor's shape. Gradients are
    /// added to the `.grad()` of every reachable leaf that `requires_grad`.
    pub fn backward_with(&self, grad: &Tensor) -> Result<()> {
        if grad.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "backward",
                lhs: self.shape().to_vec(),
                rhs: grad.shape().to_vec(),
            });
        }
        if !self.tracks_grad() {
            return Err(Error::Autograd("this tensor does not depend on any tensor that requires grad".to_string()));
        }
        // Rules are written with tensor ops; they must not record a tape themselves.
        let _guard = NoGradGuard::new();
        let order = topological_order(self);
        let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
        grads.insert(self.id(), grad.to_dtype(self.dtype())?.to_device(self.device())?);
        for node in order.iter().rev() {
            let Some(g) = grads.remove(&node.id()) else { continue };
            if node.requires_grad() {
                node.accumulate_grad(g)?;
                continue;
            }
            let Some(op) = node.op() else { continue };
            for (input, gi) in grad::input_grads(op, node, &g)? {
                if !input.tracks_grad() {
                    continue;
                }
                debug_assert_eq!(gi.shape(), input.shape(), "grad rule for {:?}", op.name());
                let gi = if gi.dtype() != input.dtype() { gi.to_dtype(input.dtype())? } else { gi };
                let gi = if gi.device() != input.device() { gi.to_device(input.device())? } else { gi };
                let merged = match grads.remove(&input.id()) {
                    Some(prev) => prev.add(&gi)?,
                    None => gi,
                };
                grads.insert(input.id(), merged);
            }
        }
        Ok(())
    }
}

/// Nodes reachable from `root`, each after all of its inputs (iterative DFS: deep graphs,
/// such as long training unrolls, must not overflow the stack).
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited: HashSet<TensorId> = HashSet::new();
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((node, expanded)) = stack.pop() {
        if expanded {
            order.push(node);
            continue;
        }
        if !visited.insert(node.id()) {
            continue;
        }
        stack.push((node.clone(), true));
        if let Some(op) = node.op() {
            for input in op.inputs() {
                if input.tracks_grad() && !visited.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    fn leaf(shape: &[usize], seed: u64) -> Tensor {
        Tensor::randn(shape, 0.0, 1.0, seed, DType::F32).unwrap().requires_grad_()
    }

    /// An activation that only feeds rules which do not read it (a matmul with a frozen
    /// weight, an add) is freed when the caller drops it, although the tape still needs
    /// its node; backward still gives the right gradients.
    #[test]
    fn the_tape_does_not_keep_inputs_their_rules_do_not_read() {
        let x = leaf(&[8, 16], 1);
        let frozen = Tensor::randn(&[16, 16], 0.0, 1.0, 2, DType::F32).unwrap();
        let h = x.affine(2.0, 0.0).unwrap().mul(&x).unwrap(); // 2 x^2, made by a rule that keeps x
        let storage = h.storage_weak();
        let y = h.matmul(&frozen).unwrap().add(&h).unwrap().sum_all().unwrap();
        drop(h);
        assert!(storage.upgrade().is_none(), "the tape kept the frozen matmul's input alive");
        y.backward().unwrap();
        // dy/dx = 4 x * (rowsum(W) + 1), per element.
        let (xv, wv) = (x.to_vec::<f32>().unwrap(), frozen.to_vec::<f32>().unwrap());
        let g = x.grad().unwrap().to_vec::<f32>().unwrap();
        for (i, (&xi, &gi)) in xv.iter().zip(&g).enumerate() {
            let row: f32 = wv[(i % 16) * 16..(i % 16 + 1) * 16].iter().sum();
            let want = 4.0 * xi * (row + 1.0);
            assert!((gi - want).abs() <= 1e-4 * (1.0 + want.abs()), "element {i}: {gi} vs {want}");
        }
    }

    /// With a trainable weight the same input is kept: dW = h^T g reads it.
    #[test]
    fn inputs_a_rule_reads_are_kept() {
        let x = leaf(&[4, 8], 3);
        let w = leaf(&[8, 8], 4);
        let h = x.affine(2.0, 0.0).unwrap();
        let storage = h.storage_weak();
        let y = h.matmul(&w).unwrap().sum_all().unwrap();
        drop(h);
        assert!(storage.upgrade().is_some());
        y.backward().unwrap();
        assert!(w.grad().is_some() && x.grad().is_some());
    }
}
