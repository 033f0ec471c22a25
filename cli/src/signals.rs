//! SIGINT, SIGTERM and SIGHUP: the temporary files and directories of writes in progress
//! (`lamina_model::atomic`: a quantized model, a merged one, a checkpoint) are removed,
//! then the process ends as the signal would have ended it. The old output, if any, is
//! untouched: it is only ever replaced by a rename once the new file is complete.

/// Start the thread that waits for the signals (once, at startup).
#[cfg(unix)]
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return; // no handler: the signals keep their default action
    };
    let spawned = std::thread::Builder::new().name("lamina-signals".into()).stack_size(256 << 10).spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let removed = lamina_model::atomic::remove_temporaries();
            if removed > 0 {
                eprintln!("\ninterrupted: removed {removed} unfinished output file(s); earlier outputs are untouched");
            }
            let _ = signal_hook::low_level::emulate_default_handler(signal);
            std::process::exit(128 + signal);
        }
    });
    if spawned.is_err() {
        eprintln!("warning: no thread for signal handling: an interrupted write may leave a temporary file");
    }
}

#[cfg(not(unix))]
pub fn install() {}
