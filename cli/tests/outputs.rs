//! Output files through the binary, tried as a careless or hostile user would: a FIFO, a
//! directory or a symbolic link as the output; the input under another name (`..`, a
//! link, a hard link); a missing directory; SIGINT, SIGTERM and SIGHUP in the middle of a
//! write; temporaries a killed run left behind. Nothing may replace what is not a regular
//! file, destroy an input, or leave a temporary.

mod support;

use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{lamina, lamina_bin, s, scratch, tiny_in, Tiny};

fn quantize(input: &str, out: &Path) -> (bool, String, String) {
    lamina(&["quantize", input, s(out), "--type", "f16"])
}

/// The hidden temporaries in `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp"))
        .collect()
}

#[test]
fn outputs_that_are_not_regular_files_are_refused_and_links_are_followed() {
    let dir = scratch("out-kinds");
    let input = tiny_in(&dir, "in.gguf", &Tiny::default());
    let fifo = dir.join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (ok, _, err) = quantize(&input, &fifo);
    assert!(!ok && err.contains("is a FIFO") && err.contains("only a regular file"), "{err}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO is still there");
    // A device (as root, a rename would turn /dev/null into a regular file).
    let (ok, _, err) = quantize(&input, Path::new("/dev/null"));
    assert!(!ok && err.contains("is a character device"), "{err}");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());

    // A directory is refused before any work (the message names it, not a temporary).
    std::fs::create_dir(dir.join("d")).unwrap();
    let (ok, _, err) = quantize(&input, &dir.join("d"));
    assert!(!ok && err.contains("is a directory") && !err.contains(".tmp"), "{err}");
    let (ok, _, err) = quantize(&input, &dir.join("missing").join("o.gguf"));
    assert!(!ok && err.contains("missing") && err.contains("does not exist") && !err.contains(".tmp"), "{err}");

    // A link to a directory is refused; a link to a file has its target replaced, and stays a link.
    std::os::unix::fs::symlink(dir.join("d"), dir.join("dlink")).unwrap();
    let (ok, _, err) = quantize(&input, &dir.join("dlink"));
    assert!(!ok && err.contains("symbolic link") && err.contains("directory"), "{err}");
    std::fs::write(dir.join("target.gguf"), b"old").unwrap();
    std::os::unix::fs::symlink("target.gguf", dir.join("link.gguf")).unwrap();
    let (ok, _, err) = quantize(&input, &dir.join("link.gguf"));
    assert!(ok, "{err}");
    assert!(err.contains("symbolic link: writing the file it points to"), "the user is told: {err}");
    assert!(std::fs::symlink_metadata(dir.join("link.gguf")).unwrap().file_type().is_symlink());
    assert!(std::fs::read(dir.join("target.gguf")).unwrap().starts_with(b"GGUF"));
    assert!(temporaries(&dir).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_input_under_another_name_is_never_overwritten() {
    let dir = scratch("out-same");
    let input = tiny_in(&dir, "in.gguf", &Tiny::default());
    let before = std::fs::read(&input).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::hard_link(&input, dir.join("hard.gguf")).unwrap();
    std::os::unix::fs::symlink("in.gguf", dir.join("soft.gguf")).unwrap();
    for other in [dir.join("sub").join("..").join("in.gguf"), dir.join("hard.gguf"), dir.join("soft.gguf")] {
        for cmd in
            [&["quantize", &input, s(&other), "--type", "f16"][..], &["prune", &input, s(&other), "--sparsity", "0.5"]]
        {
            let (ok, _, err) = lamina(cmd);
            assert!(!ok && err.contains("under another name"), "{cmd:?}: {err}");
        }
    }
    // merge: the base model named again as the output.
    let (ok, _, err) = lamina(&["merge", "-m", &input, "--lora", s(&dir), s(&dir.join("sub/../in.gguf"))]);
    assert!(!ok && err.contains("under another name"), "{err}");
    assert_eq!(std::fs::read(&input).unwrap(), before, "the input is untouched");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A model big enough that quantizing it takes a while (about 14M parameters).
fn big_model(dir: &Path) -> String {
    tiny_in(dir, "big.gguf", &Tiny { dim: 512, ffn: 1536, layers: 4, ..Tiny::default() })
}

#[test]
fn an_interrupted_quantize_leaves_no_temporary_and_the_old_output_intact() {
    let dir = scratch("out-signal");
    let input = big_model(&dir);
    let out = dir.join("out.gguf");
    for (signal, name) in [(2, "INT"), (15, "TERM"), (1, "HUP")] {
        std::fs::write(&out, b"the previous output").unwrap();
        let mut child = lamina_bin()
            .args(["quantize", &input, s(&out), "--type", "q4_k_m"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while temporaries(&dir).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(60), "no temporary file appeared");
            assert!(child.try_wait().unwrap().is_none(), "quantize ended before it could be interrupted");
            std::thread::sleep(Duration::from_millis(2));
        }
        let pid = child.id().to_string();
        assert!(std::process::Command::new("kill").args([&format!("-{name}"), &pid]).status().unwrap().success());
        let done = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.signal(), Some(signal), "SIG{name} ends the process as the signal would: {err}");
        assert!(err.contains("removed 1 unfinished output"), "SIG{name}: {err}");
        assert!(temporaries(&dir).is_empty(), "SIG{name} left {:?}", temporaries(&dir));
        assert_eq!(std::fs::read(&out).unwrap(), b"the previous output", "SIG{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn temporaries_of_dead_processes_are_removed_at_the_next_write() {
    let dir = scratch("out-stale");
    let input = tiny_in(&dir, "in.gguf", &Tiny::default());
    let dead = (400_000u32..).find(|p| !Path::new(&format!("/proc/{p}")).exists()).unwrap();
    let stale = dir.join(format!(".out.gguf.{dead}-0.tmp"));
    // A process that is alive (this test) may still be writing: its temporary stays.
    let live = dir.join(format!(".out.gguf.{}-0.tmp", std::process::id()));
    std::fs::write(&stale, b"half a model").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    let (ok, _, err) = quantize(&input, &dir.join("out.gguf"));
    assert!(ok, "{err}");
    assert!(err.contains("left by an interrupted run"), "{err}");
    assert!(!stale.exists() && live.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
