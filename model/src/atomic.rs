//! Output files, written so that a user never loses data.
//!
//! - [`check_output`] runs before any work: an output path that exists and is not a
//!   regular file (a directory, a FIFO, a device) is refused, a symbolic link is followed
//!   (the file it points to is replaced, the link is kept), a missing directory is named,
//!   and an output that is one of the inputs under another name (`..`, a link, a hard
//!   link) is refused by comparing canonical paths and (device, inode).
//! - [`write_atomic`]: the bytes go to `.NAME.PID-N.tmp` in the destination's directory,
//!   which is fsync'd and renamed over the destination; the directory is fsync'd after
//!   the rename. A crash or an error part-way leaves the old file (or no file), never a
//!   truncated one.
//! - Interruption: temporaries in progress are registered ([`Temporary`]);
//!   [`remove_temporaries`] deletes them (the CLI calls it on SIGINT, SIGTERM and SIGHUP,
//!   then lets the signal end the process), and a write first deletes the temporaries of
//!   the same output left by processes that no longer exist (killed with SIGKILL).

use crate::error::{ModelError, Result};
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Tells concurrent writers in one process apart (the pid tells processes apart).
static COUNTER: AtomicU64 = AtomicU64::new(0);

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> ModelError {
    ModelError::Io { path: path.display().to_string(), source }
}

fn refuse(path: &Path, why: impl std::fmt::Display) -> ModelError {
    ModelError::Invalid(format!("output {}: {why}", path.display()))
}

/// What a path that is not a regular file is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Where the bytes for `path` go: `path` itself, or for a symbolic link the file it
/// points to (the link is kept). Refused: a path that exists and is not a regular file,
/// a link that points nowhere, a directory that does not exist.
pub fn resolve_output(path: &Path) -> Result<PathBuf> {
    if path.file_name().is_none() {
        return Err(refuse(path, "not a file path"));
    }
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(|e| {
            refuse(path, format!("a symbolic link that cannot be followed ({e}); remove it or name another file"))
        })?,
        Ok(_) => path.to_path_buf(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(io_err(path, e)),
    };
    match std::fs::metadata(&target) {
        Ok(m) if m.is_file() => Ok(target),
        Ok(m) => {
            let what = match target == path {
                true => format!("it is {}", kind_of(&m)),
                false => format!("a symbolic link to {}, which is {}", target.display(), kind_of(&m)),
            };
            Err(refuse(path, format!("{what}; only a regular file is replaced")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = parent(&target);
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(target),
                Ok(_) => Err(refuse(path, format!("{} is not a directory", dir.display()))),
                Err(_) => {
                    let why = format!("the directory {} does not exist", dir.display());
                    Err(io_err(path, std::io::Error::new(std::io::ErrorKind::NotFound, why)))
                }
            }
        }
        Err(e) => Err(io_err(path, e)),
    }
}

/// [`resolve_output`], and refuse an output that is one of `inputs` under another name.
/// An input directory (a Hugging Face model, an adapter) counts by the files a model is
/// read from (`*.safetensors`, `*.json`, `*.jinja`, `*.gguf`) directly inside it.
pub fn check_output(path: &Path, inputs: &[&Path]) -> Result<PathBuf> {
    let target = resolve_output(path)?;
    if !target.exists() {
        // A new file cannot be an existing input.
        return Ok(target);
    }
    for input in inputs {
        let clash = if input.is_dir() {
            model_files_in(input).into_iter().find(|f| same_file(&target, f))
        } else {
            same_file(&target, input).then(|| input.to_path_buf())
        };
        if let Some(f) = clash {
            let what = match f == path {
                true => "it is the input itself".to_string(),
                false => format!("it is the input {} under another name", f.display()),
            };
            return Err(refuse(path, format!("{what}: writing it would destroy the input; name a different file")));
        }
    }
    Ok(target)
}

fn model_files_in(dir: &Path) -> Vec<PathBuf> {
    const READ: [&str; 4] = ["safetensors", "json", "jinja", "gguf"];
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| READ.contains(&e)))
        .collect()
}

/// Whether two existing paths name the same file: the same (device, inode) on Unix (hard
/// links included), the same canonical path elsewhere.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return (x.dev(), x.ino()) == (y.dev(), y.ino());
        }
    }
    matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(x), Ok(y)) if x == y)
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Temporaries in progress, for [`remove_temporaries`]; `closing` once it has run, so no
/// temporary is created or renamed into place after it.
struct Registry {
    live: Vec<(PathBuf, bool)>,
    closing: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { live: Vec::new(), closing: false });

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn interrupted(path: &Path) -> ModelError {
    io_err(path, std::io::Error::new(std::io::ErrorKind::Interrupted, "interrupted"))
}

/// A temporary file or directory that becomes an output by a rename ([`Temporary::persist`]).
/// Removed when dropped before that (an error part-way) and by [`remove_temporaries`].
pub struct Temporary {
    path: PathBuf,
    dir: bool,
    done: bool,
}

impl Temporary {
    /// Register `path` (not yet created) as a temporary file, or directory with `dir`.
    pub fn new(path: PathBuf, dir: bool) -> Result<Temporary> {
        let mut r = registry();
        if r.closing {
            return Err(interrupted(&path));
        }
        r.live.push((path.clone(), dir));
        Ok(Temporary { path, dir, done: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename the temporary to `to` (fsync'd by the caller), then fsync `to`'s directory.
    pub fn persist(mut self, to: &Path) -> Result<()> {
        {
            let mut r = registry();
            if r.closing {
                return Err(interrupted(to));
            }
            std::fs::rename(&self.path, to).map_err(|e| io_err(to, e))?;
            r.live.retain(|(p, _)| p != &self.path);
            self.done = true;
        }
        sync_dir(parent(to));
        Ok(())
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut r = registry();
        r.live.retain(|(p, _)| p != &self.path);
        remove(&self.path, self.dir);
    }
}

fn remove(path: &Path, dir: bool) {
    let _ = if dir { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
}

/// Delete every temporary in progress and refuse new ones: for a signal handler that is
/// about to end the process. Returns how many were removed.
pub fn remove_temporaries() -> usize {
    let mut r = registry();
    r.closing = true;
    let n = r.live.len();
    for (path, dir) in r.live.drain(..) {
        remove(&path, dir);
    }
    n
}

/// Make a directory's entries (a rename, a new file) durable. Directories cannot be opened
/// for sync everywhere (Windows), so this is best effort.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The temporary-file prefix of outputs named `name`, as `.NAME.`; a temporary is
/// `.NAME.PID-N.tmp`.
fn temp_name(name: &str, pid: u32, n: u64) -> String {
    format!(".{name}.{pid}-{n}.tmp")
}

/// The pid in a temporary's file name, if `file` is a temporary of outputs named `name`.
fn temp_pid(file: &str, name: &str) -> Option<u32> {
    let rest = file.strip_prefix('.')?.strip_prefix(name)?.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether process `pid` exists; `None` where this cannot be told (no `/proc`).
fn process_exists(pid: u32) -> Option<bool> {
    Path::new("/proc/self").exists().then(|| Path::new(&format!("/proc/{pid}")).exists())
}

/// Delete the temporaries of `name` in `dir` whose process no longer exists. Returns
/// the paths removed.
pub fn remove_stale_temporaries(dir: &Path, name: &str) -> Vec<PathBuf> {
    let me = std::process::id();
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let Some(pid) = file.to_str().and_then(|f| temp_pid(f, name)) else { continue };
        if pid != me && process_exists(pid) == Some(false) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// Write `path` atomically with `body`, which reports I/O errors through [`io_err`].
/// `path` is checked as [`resolve_output`] does; errors name it, never the temporary.
pub(crate) fn write_atomic(path: &Path, body: impl FnOnce(&mut BufWriter<File>) -> Result<()>) -> Result<()> {
    let target = resolve_output(path)?;
    let dir = parent(&target);
    let name = target.file_name().expect("checked by resolve_output").to_string_lossy().to_string();
    for stale in remove_stale_temporaries(dir, &name) {
        eprintln!("removed {}, left by an interrupted run", stale.display());
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = Temporary::new(dir.join(temp_name(&name, std::process::id(), n)), false)?;
    let file = OpenOptions::new().write(true).create_new(true).open(tmp.path()).map_err(|e| io_err(path, e))?;
    let mut w = BufWriter::new(file);
    body(&mut w)?;
    let file = w.into_inner().map_err(|e| io_err(path, e.into_error()))?;
    file.sync_all().map_err(|e| io_err(path, e))?;
    drop(file);
    tmp.persist(&target)
}

/// Write `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    write_atomic(path, |w| w.write_all(bytes).map_err(|e| io_err(path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lamina-atomic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn temporary_names_round_trip() {
        assert_eq!(temp_pid(&temp_name("m.gguf", 42, 7), "m.gguf"), Some(42));
        assert_eq!(temp_pid(".m.gguf.42-7.tmp", "x.gguf"), None);
        assert_eq!(temp_pid(".m.gguf.x-7.tmp", "m.gguf"), None);
        assert_eq!(temp_pid(".m.gguf.42.tmp", "m.gguf"), None);
    }

    #[test]
    fn writes_replace_atomically_and_errors_name_the_output() {
        let d = dir("write");
        let out = d.join("out.bin");
        write_bytes(&out, b"one").unwrap();
        write_bytes(&out, b"two").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"two");
        let e = write_atomic(&out, |_| Err(ModelError::Invalid("stop".into()))).unwrap_err();
        assert_eq!(e.to_string(), "stop");
        assert_eq!(std::fs::read(&out).unwrap(), b"two", "a failed write keeps the old file");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "and leaves no temporary");
        let e = write_bytes(&d.join("missing/out.bin"), b"x").unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("does not exist") && !e.contains(".tmp"), "{e}");
        let e = write_bytes(&d, b"x").unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_same_file_under_another_name_is_refused() {
        let d = dir("same");
        let input = d.join("in.gguf");
        std::fs::write(&input, b"model").unwrap();
        let dotted = d.join("sub").join("..").join("in.gguf");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        assert!(check_output(&dotted, &[&input]).unwrap_err().to_string().contains("under another name"));
        std::fs::hard_link(&input, d.join("hard.gguf")).unwrap();
        assert!(check_output(&d.join("hard.gguf"), &[&input]).is_err());
        assert!(check_output(&d.join("new.gguf"), &[&input]).is_ok());
        let inputs: [&Path; 1] = [&d];
        assert!(check_output(&input, &inputs).is_err(), "a model file of an input directory");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stale_temporaries_of_dead_processes_go_and_live_ones_stay() {
        if process_exists(1).is_none() {
            return; // no /proc: stale temporaries cannot be told from live ones, and are kept
        }
        let d = dir("stale");
        let dead = (100_000u32..).find(|p| process_exists(*p) == Some(false)).unwrap();
        let stale = d.join(temp_name("o.gguf", dead, 0));
        let live = d.join(temp_name("o.gguf", 1, 0));
        let other = d.join(temp_name("p.gguf", dead, 0));
        for p in [&stale, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(&d, "o.gguf"), vec![stale.clone()]);
        assert!(!stale.exists() && live.exists() && other.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
