//! A command as one process of an MPI job (`mpirun -np N lamina finetune ...`), or alone.
//! Every process runs the same command; [`in_group`] gives it the group it belongs to
//! (lamina-train's `dist::world`: MPI when an MPI launcher started it and the `mpi`
//! feature is built in, one process otherwise) and ends the group as the job ends.

use crate::llm::CliResult;
use lamina_train::dist::{self, Collective};

/// Runs `job` with this process's group. On success every rank waits for the others
/// (so rank 0's last writes are done before any rank exits). On an error in a job of
/// several processes the error is printed, naming the rank, and the whole job is ended
/// (`MPI_Abort`, through the group's drop): the other ranks would otherwise wait for this
/// one until their collective timeout.
pub fn in_group(job: impl FnOnce(&dyn Collective) -> CliResult) -> CliResult {
    let group = dist::world(dist::timeout_from_env()?)?;
    match job(&*group) {
        Ok(()) => Ok(group.finish()?),
        Err(e) if group.size() > 1 => {
            let msg = e.to_string();
            if msg.starts_with("rank ") {
                eprintln!("error: {msg}"); // it names the rank already
            } else {
                eprintln!("error: rank {} of {}: {msg}", group.rank(), group.size());
            }
            drop(group); // aborts the job; does not return
            Err(e)
        }
        Err(e) => Err(e),
    }
}
