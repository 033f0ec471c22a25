//! The bytes of a model file, shared by the GGUF and safetensors readers: a read-only
//! memory map, or a buffer (tests, fuzzing).

use crate::atomic::io_err;
use crate::error::Result;
use std::path::Path;

pub(crate) enum FileBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Memory-map `path` read-only.
    pub(crate) fn map(path: &Path) -> Result<FileBytes> {
        let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        // SAFETY: the map is read-only; a file truncated underneath us by another process
        // would fault, as with every mmap-based loader (llama.cpp, candle).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err(path, e))?;
        Ok(FileBytes::Mapped(map))
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

impl AsRef<[u8]> for FileBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}
