//! Rank 0's values given to every rank, and a check that the ranks still agree: what a
//! data-parallel run needs beyond the per-step all-reduce. Every rank must start from the
//! same weights, optimizer state and data position (rank 0's, fresh or read from a
//! checkpoint, so only rank 0 needs the run directory), and, since every rank then takes
//! the same steps from the same sums, stays identical to rank 0; [`same_on_every_rank`]
//! checks that cheaply (a fingerprint, not the tensors) at each checkpoint.

use super::{Collective, DistError};
use lamina_tensor::Tensor;
use serde_json::Value;

/// The most bytes one broadcast call carries: 256 MiB, well inside MPI's `int` counts.
const CHUNK_BYTES: usize = 1 << 28;

/// `root`'s `bytes` copied into every rank's, in calls of at most [`CHUNK_BYTES`].
pub fn broadcast_bytes(group: &dyn Collective, bytes: &mut [u8], root: usize) -> Result<(), DistError> {
    if bytes.is_empty() {
        return group.broadcast(bytes, root);
    }
    bytes.chunks_mut(CHUNK_BYTES).try_for_each(|chunk| group.broadcast(chunk, root))
}

/// Rank 0's `value` on every rank (its length first, then its JSON text).
pub fn share_json(group: &dyn Collective, value: &mut Value) -> Result<(), DistError> {
    if group.size() == 1 {
        return Ok(());
    }
    let mut text = if group.rank() == 0 { value.to_string().into_bytes() } else { Vec::new() };
    let mut len = (text.len() as u64).to_le_bytes();
    group.broadcast(&mut len, 0)?;
    text.resize(u64::from_le_bytes(len) as usize, 0);
    broadcast_bytes(group, &mut text, 0)?;
    if group.rank() != 0 {
        *value = serde_json::from_slice(&text)
            .map_err(|e| DistError::Usage(format!("rank 0 sent JSON this rank cannot read: {e}")))?;
    }
    Ok(())
}

/// Rank 0's values of `tensors` (f32, the same shapes on every rank), as new host tensors
/// on every rank (on rank 0, its own tensors). The ranks first compare their element
/// counts, so ranks that built different models fail with a clear error rather than in
/// MPI.
pub fn share_tensors(group: &dyn Collective, what: &str, tensors: &[Tensor]) -> Result<Vec<Tensor>, DistError> {
    if group.size() == 1 {
        return Ok(tensors.to_vec());
    }
    let total: usize = tensors.iter().map(Tensor::numel).sum();
    let mut count = (total as u64).to_le_bytes();
    group.broadcast(&mut count, 0)?;
    let root_total = u64::from_le_bytes(count);
    if root_total != total as u64 {
        return Err(DistError::Usage(format!(
            "rank {} has {total} numbers of {what}, rank 0 has {root_total}: every rank must run the same \
             command on the same model",
            group.rank()
        )));
    }
    let mut bytes = Vec::with_capacity(total * 4);
    if group.rank() == 0 {
        for t in tensors {
            bytes.extend(t.to_vec_f32()?.iter().flat_map(|x| x.to_le_bytes()));
        }
    } else {
        bytes.resize(total * 4, 0);
    }
    broadcast_bytes(group, &mut bytes, 0)?;
    if group.rank() == 0 {
        return Ok(tensors.to_vec());
    }
    let mut at = 0;
    tensors
        .iter()
        .map(|t| {
            let end = at + t.numel() * 4;
            let values = bytes[at..end].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            at = end;
            Ok(Tensor::from_vec(values, t.shape())?)
        })
        .collect()
}

/// A 64-bit fingerprint of the tensors' f32 bits (FNV-1a over each value's bits, then
/// mixed): any changed value changes it with overwhelming probability.
fn fingerprint(tensors: &[Tensor]) -> Result<u64, DistError> {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for t in tensors {
        for x in t.to_vec_f32()? {
            h = (h ^ u64::from(x.to_bits())).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h = (h ^ t.numel() as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    Ok(h)
}

/// Fails on every rank whose `tensors` differ from rank 0's (bit for bit): ranks that
/// should be identical after `step` steps but are not have diverged, and carrying on
/// would train N different models while rank 0 saves one of them.
pub fn same_on_every_rank(
    group: &dyn Collective,
    what: &str,
    tensors: &[Tensor],
    step: usize,
) -> Result<(), DistError> {
    if group.size() == 1 {
        return Ok(());
    }
    let mine = fingerprint(tensors)?;
    let mut root = mine.to_le_bytes();
    group.broadcast(&mut root, 0)?;
    if u64::from_le_bytes(root) != mine {
        return Err(DistError::Usage(format!(
            "rank {}'s {what} differ from rank 0's after step {step}: the ranks have diverged (each must see \
             the same data, settings and model files)",
            group.rank()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_see_one_changed_value() {
        let a = Tensor::from_vec(vec![1f32, 2.0, 3.0], &[3]).unwrap();
        let b = Tensor::from_vec(vec![1f32, 2.0, 3.0000002], &[3]).unwrap();
        let a2 = Tensor::from_vec(vec![1f32, 2.0, 3.0], &[3]).unwrap();
        assert_ne!(fingerprint(std::slice::from_ref(&a)).unwrap(), fingerprint(&[b]).unwrap());
        assert_eq!(fingerprint(&[a]).unwrap(), fingerprint(&[a2]).unwrap());
        // The boundary between tensors counts: [1, 2 | 3] is not [1 | 2, 3].
        let split = |n: usize| {
            let v = [1f32, 2.0, 3.0];
            fingerprint(&[
                Tensor::from_vec(v[..n].to_vec(), &[n]).unwrap(),
                Tensor::from_vec(v[n..].to_vec(), &[3 - n]).unwrap(),
            ])
            .unwrap()
        };
        assert_ne!(split(1), split(2));
    }
}
