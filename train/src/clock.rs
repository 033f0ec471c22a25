//! What "training time" means for a time budget: the wall clock, or the CPU time the
//! process has used.
//!
//! On a machine others share, the wall clock charges a model for the time it spent
//! waiting for a core; two runs of the same budget then train for different numbers of
//! steps, and an equal-time comparison depends on what else ran. The process's CPU time
//! (`CLOCK_PROCESS_CPUTIME_ID`: every thread of the process, the CPU kernels' pool
//! included) counts only the work done, so it is the fair clock for comparing CPU
//! training under load, with the kernels' thread count fixed: each extra thread adds its
//! own CPU time, and threads that wait for a descheduled sibling spin. It does not count
//! work on a GPU, so a GPU run needs the wall clock.
//!
//! (The training thread's own CPU time would miss the work: every CPU kernel runs in
//! the rayon pool, see `lamina_tensor::cpu::parallel`, while the caller waits.)

use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    Wall,
    /// CPU time of the whole process (user + system, all threads).
    ProcessCpu,
}

impl Clock {
    /// Time on this clock since a fixed origin (the first reading of the wall clock; the
    /// process's start for CPU time); subtract two readings for an interval. `None` where
    /// the platform has no process CPU clock.
    pub fn now(self) -> Option<Duration> {
        match self {
            Clock::Wall => {
                static ORIGIN: OnceLock<Instant> = OnceLock::new();
                Some(ORIGIN.get_or_init(Instant::now).elapsed())
            }
            Clock::ProcessCpu => process_cpu_time(),
        }
    }

    /// Fails where the platform cannot read this clock (said once, before training).
    pub fn check(self) -> Result<(), String> {
        match self.now() {
            Some(_) => Ok(()),
            None => Err(format!("this platform has no {self} clock; use the wall clock")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Clock::Wall => "wall",
            Clock::ProcessCpu => "cpu",
        }
    }

    pub fn parse(s: &str) -> Option<Clock> {
        [Clock::Wall, Clock::ProcessCpu].into_iter().find(|c| c.name() == s)
    }

    /// How a table states it: "wall-clock time" / "process CPU time".
    pub fn describe(self) -> &'static str {
        match self {
            Clock::Wall => "wall-clock time",
            Clock::ProcessCpu => "process CPU time",
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(unix)]
fn process_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(not(unix))]
fn process_cpu_time() -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // Whether the CPU clock skips waiting: tests/train_clock.rs, a binary of its own so
    // that no other test's threads run in the process it measures.

    #[test]
    fn names_round_trip() {
        for c in [Clock::Wall, Clock::ProcessCpu] {
            assert_eq!(Clock::parse(c.name()), Some(c));
        }
        assert_eq!(Clock::parse("gpu"), None);
    }
}
