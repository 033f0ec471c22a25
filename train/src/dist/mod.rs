//! Data parallelism across processes: the collective operations a training step needs
//! (rank, size, a summing all-reduce of f32 buffers, broadcast, barrier), behind
//! [`Collective`], so the training loop is written once for one process and for N.
//!
//! - [`SingleProcess`]: rank 0 of 1, every collective a no-op (a run without `mpirun`).
//! - `MpiWorld` (cargo feature `mpi`, `mpi.rs`): the processes `mpirun` started, through
//!   rsmpi. MPI's error handler is set to return, and every collective waits with a
//!   deadline, so a dead or hung rank becomes a [`DistError`] naming the rank and the
//!   operation instead of a hang.
//!
//! [`world`] picks the one that matches how the process was started. [`GradBuckets`] packs
//! many gradient tensors into a few large buffers so that a step costs a few all-reduce
//! calls, not one per tensor; [`GradSync`] does that for a model's trainable tensors
//! (their gradients, plus per-step scalars such as the summed loss), and [`shard_rows`]
//! says which rows of a global batch a rank trains on. `share.rs` gives every rank rank
//! 0's starting state and checks that the ranks stay identical.

mod buckets;
mod grads;
#[cfg(feature = "mpi")]
mod mpi;
mod share;

pub use buckets::{GradBuckets, DEFAULT_BUCKET_ELEMS};
pub use grads::{shard_rows, GradSync};
#[cfg(feature = "mpi")]
pub use mpi::MpiWorld;
pub use share::{broadcast_bytes, same_on_every_rank, share_json, share_tensors};

use std::fmt;
use std::time::Duration;

/// The collective operations of a group of processes that train one model together. Every
/// rank must make the same calls in the same order with buffers of the same lengths (what
/// MPI requires); a rank that does not arrive within the group's timeout makes the call
/// fail on the others.
pub trait Collective {
    /// This process's place in the group, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Sums each buffer element-wise across the ranks, in place. The buffers are reduced
    /// concurrently (one non-blocking all-reduce each, then one wait for all of them).
    /// Each buffer's length must be the same on every rank and at most `i32::MAX`.
    fn all_reduce_sum(&self, buffers: &mut [Vec<f32>]) -> Result<(), DistError>;
    /// Copies `root`'s `bytes` into every other rank's `bytes` (same length everywhere).
    fn broadcast(&self, bytes: &mut [u8], root: usize) -> Result<(), DistError>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<(), DistError>;
    /// Ends the group after a successful run (MPI: a barrier, then `MPI_Finalize`). A
    /// group dropped without `finish` (an error, a panic) aborts the other ranks instead
    /// of leaving them waiting.
    fn finish(self: Box<Self>) -> Result<(), DistError>;
}

/// One process training alone: rank 0 of 1.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Collective for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _buffers: &mut [Vec<f32>]) -> Result<(), DistError> {
        Ok(())
    }
    fn broadcast(&self, _bytes: &mut [u8], root: usize) -> Result<(), DistError> {
        check_root(root, 1)
    }
    fn barrier(&self) -> Result<(), DistError> {
        Ok(())
    }
    fn finish(self: Box<Self>) -> Result<(), DistError> {
        Ok(())
    }
}

fn check_root(root: usize, size: usize) -> Result<(), DistError> {
    if root < size {
        Ok(())
    } else {
        Err(DistError::Usage(format!("broadcast from rank {root} in a group of {size}")))
    }
}

/// How long a rank waits in one collective before it gives up on the others: 10 minutes
/// (PyTorch's default for its process groups), or `LAMINA_DIST_TIMEOUT` seconds.
pub const TIMEOUT_VAR: &str = "LAMINA_DIST_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The collective timeout: `LAMINA_DIST_TIMEOUT` (seconds, > 0) or 600 s.
pub fn timeout_from_env() -> Result<Duration, DistError> {
    match std::env::var(TIMEOUT_VAR) {
        Err(_) => Ok(DEFAULT_TIMEOUT),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s > 0.0 && s.is_finite() && s <= 1e7 => Ok(Duration::from_secs_f64(s)),
            _ => Err(DistError::Usage(format!("{TIMEOUT_VAR}={v:?}: expected a number of seconds > 0"))),
        },
    }
}

/// The number of processes of the MPI job this process was started in, read from the
/// variables the launchers set (Open MPI's `mpirun`, MPICH's Hydra, PMIx launchers such
/// as Slurm's `srun --mpi=pmix`); `None` when no launcher started it.
pub fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"].iter().find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
}

/// How many processes of the MPI job run on this machine (Open MPI's, MPICH's and PMIx's
/// variables); `None` when no launcher started this process or it does not say. The
/// CPU threads of each process default to the cores divided by this, as `torchrun` sets
/// one OpenMP thread per process, so N ranks on one machine do not oversubscribe it.
pub fn launched_local_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
        .filter(|&n| n > 0)
}

/// The group this process belongs to: the MPI job that started it (feature `mpi`), or
/// [`SingleProcess`] when it was not started by an MPI launcher. A process started by
/// `mpirun` in a build without the feature is an error rather than N copies of the same
/// single-process run writing to the same files.
pub fn world(timeout: Duration) -> Result<Box<dyn Collective>, DistError> {
    match launched_size() {
        None => Ok(Box::new(SingleProcess)),
        #[cfg(feature = "mpi")]
        Some(_) => Ok(Box::new(MpiWorld::init(timeout)?)),
        #[cfg(not(feature = "mpi"))]
        Some(size) => {
            let _ = timeout;
            Err(DistError::NotBuiltIn { size })
        }
    }
}

#[derive(Debug)]
pub enum DistError {
    /// Started by an MPI launcher, in a build without the `mpi` feature.
    NotBuiltIn { size: usize },
    /// MPI could not be initialised.
    Init(String),
    /// An MPI call returned an error.
    Mpi { op: &'static str, rank: usize, message: String },
    /// A collective did not complete in time: another rank died, hangs or lags.
    Timeout { op: &'static str, rank: usize, size: usize, waited: Duration },
    /// A call the group cannot make (a bad root, a buffer too long, ranks that disagree).
    Usage(String),
    /// A gradient could not be read or written back.
    Tensor(lamina_tensor::Error),
}

impl From<lamina_tensor::Error> for DistError {
    fn from(e: lamina_tensor::Error) -> Self {
        DistError::Tensor(e)
    }
}

impl fmt::Display for DistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistError::NotBuiltIn { size } => write!(
                f,
                "started by an MPI launcher as one of {size} processes, but this lamina was built without MPI: \
                 rebuild with `--features mpi` (needs Open MPI's libopenmpi-dev and libclang), or run it without mpirun"
            ),
            DistError::Init(m) => write!(f, "MPI initialisation failed: {m}"),
            DistError::Mpi { op, rank, message } => write!(f, "rank {rank}: MPI {op} failed: {message}"),
            DistError::Timeout { op, rank, size, waited } => write!(
                f,
                "rank {rank} of {size}: {op} did not complete within {:.1} s: another rank has died, hangs or is far \
                 slower (set {TIMEOUT_VAR}=SECONDS if a step legitimately takes longer)",
                waited.as_secs_f64()
            ),
            DistError::Usage(m) => write!(f, "distributed training: {m}"),
            DistError::Tensor(e) => write!(f, "distributed training: gradients: {e}"),
        }
    }
}

impl std::error::Error for DistError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_process_collectives_leave_buffers_alone() {
        let g = SingleProcess;
        let mut b = vec![vec![1.0, 2.0], vec![3.0]];
        g.all_reduce_sum(&mut b).unwrap();
        assert_eq!(b, vec![vec![1.0, 2.0], vec![3.0]]);
        let mut bytes = *b"abc";
        g.broadcast(&mut bytes, 0).unwrap();
        assert_eq!(&bytes, b"abc");
        assert!(g.broadcast(&mut bytes, 1).is_err());
        g.barrier().unwrap();
        Box::new(g).finish().unwrap();
    }
}
