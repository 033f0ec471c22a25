//! The key/value cache: per layer, K and V buffers of shape (1, kv_heads, capacity,
//! head_dim), allocated once. Each forward pass writes its new positions in place and
//! attends over the filled prefix, a view that needs no copy.
//!
//! A model may pin positions of its own at the front (a prompt-tuning adapter's virtual
//! tokens, filled when the cache is made): they come before every sequence, so `len`,
//! `capacity`, `truncate` and `clear` count only the caller's tokens and never drop them.

use crate::error::{ModelError, Result};
use lamina_tensor::{DType, Device, Tensor};

pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Filled positions, the pinned ones included.
    len: usize,
    capacity: usize,
    /// Leading positions that belong to the model, not to the caller's tokens.
    pinned: usize,
}

impl KvCache {
    pub fn new(
        n_layers: usize,
        kv_heads: usize,
        head_dim: usize,
        capacity: usize,
        dtype: DType,
        device: Device,
    ) -> Result<KvCache> {
        let shape = [1, kv_heads, capacity, head_dim];
        let alloc = || -> Result<Vec<Tensor>> {
            (0..n_layers).map(|_| Ok(Tensor::zeros(&shape, dtype)?.to_device(device)?)).collect()
        };
        Ok(KvCache { k: alloc()?, v: alloc()?, len: 0, capacity, pinned: 0 })
    }

    /// The caller's tokens already cached (pinned positions not counted).
    pub fn len(&self) -> usize {
        self.len - self.pinned
    }

    pub fn is_empty(&self) -> bool {
        self.len == self.pinned
    }

    /// How many tokens of the caller's fit (pinned positions not counted).
    pub fn capacity(&self) -> usize {
        self.capacity - self.pinned
    }

    /// The position the next token takes: filled positions, pinned ones included (what
    /// the model's rotary embeddings and masks count from).
    pub fn position(&self) -> usize {
        self.len
    }

    /// Make every filled position the model's own: kept through `clear` and `truncate`.
    pub fn pin_filled(&mut self) {
        self.pinned = self.len;
    }

    /// Forget the caller's tokens (a new conversation); pinned positions stay.
    pub fn clear(&mut self) {
        self.len = self.pinned;
    }

    /// Keep the caller's first `n` tokens (roll back to a shared prefix).
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(self.pinned + n);
    }

    /// Refuse a pass of `t` tokens that would run past the context.
    pub fn check_room(&self, t: usize) -> Result<()> {
        if self.len + t > self.capacity {
            return Err(ModelError::Invalid(format!(
                "context limit reached: {} cached + {t} new tokens > context of {} (start a new conversation or raise --ctx)",
                self.len(),
                self.capacity()
            )));
        }
        Ok(())
    }

    /// Store layer `layer`'s new keys and values, (1, kv_heads, t, head_dim), after the
    /// filled positions, and return the views over everything cached so far.
    pub fn append(&self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.shape()[2];
        self.check_room(t)?;
        self.k[layer].write_at(2, self.len, k)?;
        self.v[layer].write_at(2, self.len, v)?;
        let end = self.len + t;
        Ok((self.k[layer].narrow(2, 0, end)?, self.v[layer].narrow(2, 0, end)?))
    }

    /// Mark `t` more positions as filled (after every layer has appended them).
    pub fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// Bytes held by the cache.
    pub fn bytes(&self) -> usize {
        self.k.iter().chain(&self.v).map(|t| t.numel() * t.dtype().size_in_bytes()).sum()
    }
}
