//! The fine-tuning loop across the ranks of a [`Collective`] (data parallelism, issue 21).
//! Every rank reads the same global batches in the same order (the batcher is seeded
//! the same everywhere, so a resumed run, or a run on another number of ranks, sees the
//! same examples) and trains on its rows of each micro-batch ([`shard`]). Each rank scales
//! its loss by its scored tokens over the step's total, so the all-reduced gradient is
//! the one process's exactly, up to summation order; clipping and the optimizer step then
//! run on every rank from the same sums. Rank 0 alone reads and writes the run directory:
//! it gives the others its starting state ([`share_start`]); validation is split between
//! the ranks ([`validation_loss`]).
//!
//! With dropout, rank 0's rows draw the masks one process would draw for them and the
//! other ranks' rows draw their own, so a run with dropout is not bit-comparable across
//! rank counts (it is statistically the same run; without dropout it is the same run).

use super::resume::LoopState;
use super::{scored_loss_sum, BatchSource, TrainBatch, Trainee};
use crate::dist::{self, shard_rows, Collective};
use crate::optim::Optimizer;
use crate::TrainError;
use lamina_tensor::Tensor;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// This rank's rows of micro-batch `b` with their dropout seed (`seed` is the
/// micro-batch's); `None` when the rows hold no scored token (the rank then adds zeros to
/// the step's sum).
pub(super) fn shard<'b>(group: &dyn Collective, b: &'b TrainBatch, seed: u64) -> Option<(Cow<'b, TrainBatch>, u64)> {
    let rows = shard_rows(b.batch, group.rank(), group.size());
    let mine = if rows.len() == b.batch { Cow::Borrowed(b) } else { Cow::Owned(b.rows(rows.clone())) };
    if mine.scored() == 0 {
        return None;
    }
    // Row 0's shard keeps the micro-batch's seed; another shard's is mixed with its first
    // row, so no two shards draw the same masks.
    let seed = if rows.start == 0 { seed } else { crate::data::Rng::new(seed ^ rows.start as u64).next_u64() };
    Some((mine, seed))
}

/// Every rank leaves with rank 0's loop state, data position, trainable tensors and
/// optimizer state (those of a fresh run, or of the checkpoint rank 0 resumed from).
pub(super) fn share_start(
    group: &dyn Collective,
    params: &[(String, Tensor)],
    opt: &mut Optimizer,
    train: &mut dyn BatchSource,
    state: LoopState,
) -> Result<LoopState, TrainError> {
    if group.size() == 1 {
        return Ok(state);
    }
    let mut header = state.to_json(train.position());
    header["optimizer_steps"] = opt.steps_taken().into();
    dist::share_json(group, &mut header)?;
    let tensors: Vec<Tensor> = params.iter().map(|(_, t)| t.clone()).collect();
    let weights = dist::share_tensors(group, "trainable tensors", &tensors)?;
    let moments = opt.state();
    let values =
        dist::share_tensors(group, "optimizer state", &moments.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>())?;
    if group.rank() == 0 {
        return Ok(state);
    }
    for (p, w) in tensors.iter().zip(&weights) {
        p.assign(w)?;
    }
    let named: BTreeMap<String, Tensor> = moments.into_iter().map(|(n, _)| n).zip(values).collect();
    let steps = header["optimizer_steps"].as_u64().unwrap_or(0);
    opt.load_state(&named, steps)?;
    train.restore(&header["data_position"]).map_err(|e| TrainError::Config(format!("rank 0's data position: {e}")))?;
    Ok(LoopState::from_json(&header))
}

/// The mean validation loss over `batches`, each rank scoring its share of them.
pub(super) fn validation_loss(
    group: &dyn Collective,
    model: &dyn Trainee,
    batches: &[TrainBatch],
) -> Result<f32, TrainError> {
    if group.size() == 1 {
        return super::validation_loss(model, batches);
    }
    let (sum, n) = scored_loss_sum(model, &batches[shard_rows(batches.len(), group.rank(), group.size())])?;
    // The token count in two parts, each summed exactly in f32 (below 2^24) for up to
    // 4096 ranks and 2^36 tokens.
    let mut sums = vec![vec![sum as f32, (n >> 12) as f32, (n & 0xfff) as f32]];
    group.all_reduce_sum(&mut sums)?;
    let n = ((sums[0][1] as u64) << 12) + sums[0][2] as u64;
    if n == 0 {
        return Err(TrainError::Config("the validation set has no scored tokens".into()));
    }
    Ok((sums[0][0] as f64 / n as f64) as f32)
}
