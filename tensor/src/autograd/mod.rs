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
