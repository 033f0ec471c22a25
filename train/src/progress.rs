//! Progress of a training run on stderr: a live bar on a terminal, otherwise a line each
//! time another tenth of the run is done.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// How a loop reports progress on stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// A live bar on a terminal; a line every 10% of the run otherwise.
    Auto,
    /// Nothing.
    Quiet,
}

pub(crate) struct Reporter {
    bar: Option<ProgressBar>,
    lines: bool,
    total: u64,
    /// Tenths of the run already reported by a line.
    tenths: u64,
}

impl Reporter {
    /// `total`: units of work in the run (steps, or milliseconds of a time budget).
    pub(crate) fn new(mode: Progress, total: u64) -> Reporter {
        let tty = std::io::stderr().is_terminal();
        let bar = (mode == Progress::Auto && tty).then(|| {
            let pb = ProgressBar::new(total);
            let style =
                ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
            pb.set_style(style.progress_chars("=> "));
            pb
        });
        Reporter { bar, lines: mode == Progress::Auto && !tty, total: total.max(1), tenths: 0 }
    }

    /// `done` units of `total` are finished: `msg` goes on the bar, `line()` is printed
    /// when another tenth is complete (and at the end).
    pub(crate) fn update(&mut self, done: u64, msg: impl FnOnce() -> String, line: impl FnOnce() -> String) {
        if let Some(pb) = &self.bar {
            pb.set_message(msg());
            pb.set_position(done.min(self.total));
        } else if self.lines {
            let tenths = (done.min(self.total) * 10) / self.total;
            if tenths > self.tenths {
                self.tenths = tenths;
                eprintln!("{}", line());
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish();
        }
    }
}
