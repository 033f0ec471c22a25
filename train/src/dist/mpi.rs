//! The MPI group (`Collective` over `MPI_COMM_WORLD`), for processes started by `mpirun`.
//!
//! rsmpi initialises and finalises MPI (`MPI_Init_thread` with `MPI_THREAD_FUNNELED`: the
//! kernels' rayon threads never call MPI). The collectives go through its raw bindings
//! (`mpi::ffi`) because rsmpi's safe wrappers discard MPI's return codes and abort the
//! process on an unfinished request, and here a dead or hung rank must become an error:
//! the error handler is `MPI_ERRORS_RETURN`, every call's code is checked, and each
//! collective is started non-blocking and polled (`MPI_Testall`) against a deadline.
//!
//! After a failed or timed-out collective, MPI may still write into the buffers it was
//! given, so they are kept (never freed) and the group is marked broken; dropping a group
//! that is broken, or that was not `finish`ed, prints why and calls `MPI_Abort`, which
//! ends every rank instead of leaving the others blocked.

use super::{check_root, Collective, DistError};
use mpi::ffi;
use std::any::Any;
use std::cell::RefCell;
use std::os::raw::{c_char, c_int, c_void};
use std::time::{Duration, Instant};

pub struct MpiWorld {
    /// Finalises MPI when dropped; `None` once `finish` or `Drop` has taken it.
    universe: Option<mpi::environment::Universe>,
    rank: usize,
    size: usize,
    timeout: Duration,
    /// Why the group can no longer be used, and the buffers MPI may still write into.
    broken: RefCell<Option<Broken>>,
}

struct Broken {
    why: String,
    in_flight: Box<dyn Any>,
}

fn world() -> ffi::MPI_Comm {
    // SAFETY: an immutable handle the C shim initialises before main.
    unsafe { ffi::RSMPI_COMM_WORLD }
}

/// MPI's description of an error code.
fn error_string(code: c_int) -> String {
    let mut buf = vec![0 as c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: the buffer holds MPI_MAX_ERROR_STRING characters, as the call requires.
    let rc = unsafe { ffi::MPI_Error_string(code, buf.as_mut_ptr(), &mut len) };
    if rc != 0 {
        return format!("MPI error code {code}");
    }
    let bytes: Vec<u8> = buf[..len.max(0) as usize].iter().map(|&c| c as u8).collect();
    format!("{} (code {code})", String::from_utf8_lossy(&bytes))
}

impl MpiWorld {
    /// Initialises MPI (once per process) and returns `MPI_COMM_WORLD` with errors
    /// returned to the caller and `timeout` on every collective.
    pub fn init(timeout: Duration) -> Result<Self, DistError> {
        let (universe, _threading) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| DistError::Init("MPI is already initialised in this process".into()))?;
        let init = |op, rc: c_int| match rc {
            0 => Ok(()),
            code => Err(DistError::Init(format!("{op}: {}", error_string(code)))),
        };
        // SAFETY: MPI is initialised; the out-pointers are valid c_ints.
        let (rank, size) = unsafe {
            init("MPI_Comm_set_errhandler", ffi::MPI_Comm_set_errhandler(world(), ffi::RSMPI_ERRORS_RETURN))?;
            let (mut rank, mut size) = (0, 0);
            init("MPI_Comm_rank", ffi::MPI_Comm_rank(world(), &mut rank))?;
            init("MPI_Comm_size", ffi::MPI_Comm_size(world(), &mut size))?;
            (rank as usize, size as usize)
        };
        Ok(MpiWorld { universe: Some(universe), rank, size, timeout, broken: RefCell::new(None) })
    }

    fn usable(&self) -> Result<(), DistError> {
        match &*self.broken.borrow() {
            None => Ok(()),
            Some(b) => Err(DistError::Usage(format!("the MPI group is unusable after an earlier failure: {}", b.why))),
        }
    }

    fn check(&self, op: &'static str, rc: c_int) -> Result<(), DistError> {
        match rc {
            0 => Ok(()),
            code => Err(DistError::Mpi { op, rank: self.rank, message: error_string(code) }),
        }
    }

    /// Polls `requests` until all complete, the deadline passes or MPI reports an error,
    /// yielding the core between polls but never sleeping: MPI moves a non-blocking
    /// collective forward only inside MPI calls, and a rank that slept between polls
    /// (50 µs doubling to 2 ms, as this did first) took 3.3 ms to sum 1 MiB that it sums
    /// in 0.4 ms this way (docs/SCALING.md). On an idle core a yield returns at once (a
    /// busy poll, as `MPI_Wait`'s); on a busy machine the others run meanwhile.
    fn wait(&self, op: &'static str, requests: &mut [ffi::MPI_Request]) -> Result<(), DistError> {
        let start = Instant::now();
        loop {
            let mut done: c_int = 0;
            // SAFETY: the requests are live (or null) and the statuses are ignored.
            let rc = unsafe {
                ffi::MPI_Testall(requests.len() as c_int, requests.as_mut_ptr(), &mut done, ffi::RSMPI_STATUSES_IGNORE)
            };
            self.check(op, rc)?;
            if done != 0 {
                return Ok(());
            }
            let waited = start.elapsed();
            if waited >= self.timeout {
                return Err(DistError::Timeout { op, rank: self.rank, size: self.size, waited });
            }
            std::thread::yield_now();
        }
    }

    /// Records a failure: the group is unusable from now on, and `in_flight` (memory MPI
    /// may still write) is never freed.
    fn poison(&self, err: DistError, in_flight: Box<dyn Any>) -> DistError {
        *self.broken.borrow_mut() = Some(Broken { why: err.to_string(), in_flight });
        err
    }

    /// Starts `requests` operations (`start(buffers, i, request)` starts the i-th, on any
    /// of `buffers`), then waits for them all. The buffers are returned on success and
    /// handed to `poison` on any failure, so MPI never writes into freed memory.
    fn run<T: Copy + 'static>(
        &self,
        op: &'static str,
        mut buffers: Vec<Vec<T>>,
        requests: usize,
        start: impl Fn(&mut [Vec<T>], usize, &mut ffi::MPI_Request) -> c_int,
    ) -> Result<Vec<Vec<T>>, DistError> {
        self.usable()?;
        // SAFETY: a null request is what MPI_Testall accepts for a slot never started.
        let mut reqs = vec![unsafe { ffi::RSMPI_REQUEST_NULL }; requests];
        let started = reqs.iter_mut().enumerate().try_for_each(|(i, req)| self.check(op, start(&mut buffers, i, req)));
        match started.and_then(|()| self.wait(op, &mut reqs)) {
            Ok(()) => Ok(buffers),
            Err(e) => Err(self.poison(e, Box::new(buffers))),
        }
    }
}

fn count(op: &'static str, len: usize) -> Result<c_int, DistError> {
    c_int::try_from(len).map_err(|_| DistError::Usage(format!("{op}: a buffer of {len} elements is over MPI's limit")))
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, buffers: &mut [Vec<f32>]) -> Result<(), DistError> {
        const OP: &str = "all-reduce";
        let n = buffers.len();
        for b in buffers.iter() {
            count(OP, b.len())?;
        }
        // Receive buffers, then the send buffers (MPI_IN_PLACE's value differs between MPI
        // libraries, so the reduction is not in place).
        let mut owned: Vec<Vec<f32>> = buffers.iter().map(|b| vec![0.0; b.len()]).collect();
        owned.extend(buffers.iter_mut().map(std::mem::take));
        let mut sums = self.run(OP, owned, n, |bufs, i, req| {
            let (recv, send) = bufs.split_at_mut(n);
            // SAFETY: both buffers stay alive until the request completes (`run` owns
            // them, or `poison` keeps them); their length fits a c_int (checked above).
            unsafe {
                ffi::MPI_Iallreduce(
                    send[i].as_ptr().cast::<c_void>(),
                    recv[i].as_mut_ptr().cast::<c_void>(),
                    recv[i].len() as c_int,
                    ffi::RSMPI_FLOAT,
                    ffi::RSMPI_SUM,
                    world(),
                    req,
                )
            }
        })?;
        sums.truncate(n);
        for (out, sum) in buffers.iter_mut().zip(sums) {
            *out = sum;
        }
        Ok(())
    }

    fn broadcast(&self, bytes: &mut [u8], root: usize) -> Result<(), DistError> {
        const OP: &str = "broadcast";
        check_root(root, self.size)?;
        let len = count(OP, bytes.len())?;
        let out = self.run(OP, vec![bytes.to_vec()], 1, |bufs, _, req| {
            // SAFETY: the buffer stays alive until the request completes (see `run`).
            unsafe {
                ffi::MPI_Ibcast(
                    bufs[0].as_mut_ptr().cast::<c_void>(),
                    len,
                    ffi::RSMPI_UINT8_T,
                    root as c_int,
                    world(),
                    req,
                )
            }
        })?;
        bytes.copy_from_slice(&out[0]);
        Ok(())
    }

    fn barrier(&self) -> Result<(), DistError> {
        self.run::<u8>("barrier", Vec::new(), 1, |_, _, req| {
            // SAFETY: a barrier has no buffer.
            unsafe { ffi::MPI_Ibarrier(world(), req) }
        })
        .map(drop)
    }

    fn finish(mut self: Box<Self>) -> Result<(), DistError> {
        self.barrier()?;
        // Finalised by Universe's drop; with it gone, our Drop has nothing to abort.
        drop(self.universe.take());
        Ok(())
    }
}

impl Drop for MpiWorld {
    fn drop(&mut self) {
        let Some(universe) = self.universe.take() else { return };
        let why = match self.broken.get_mut().take() {
            Some(b) => {
                // MPI may still write into these: never free them.
                std::mem::forget(b.in_flight);
                b.why
            }
            None => "it stopped before the end of the run (an error or a panic on this rank)".into(),
        };
        eprintln!("lamina: rank {} of {} is aborting the MPI job: {why}", self.rank, self.size);
        // No MPI_Finalize: it waits for every rank, which may never come.
        std::mem::forget(universe);
        // SAFETY: MPI is initialised and not finalised.
        unsafe {
            ffi::MPI_Abort(world(), 1);
        }
    }
}
