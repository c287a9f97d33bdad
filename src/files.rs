//! Reading local files (native only), with errors that name the path.

use crate::error::{Error, Result};
use std::path::Path;

pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file(path.display().to_string(), e))
}

pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_bytes(path)?).map_err(|_| Error::file(path.display().to_string(), "not UTF-8 text"))
}

/// The file's bytes, mapped into memory rather than read (multi-GB checkpoints); the file must not be changed
/// while steerlab has it open, as with every tool that maps checkpoints.
pub fn map_bytes(path: &Path) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path).map_err(|e| Error::file(path.display().to_string(), e))?;
    // SAFETY: read-only mapping; a concurrent writer would corrupt only the tensors read, never memory safety
    // of other data, and the hub cache never rewrites a snapshot file in place.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::file(path.display().to_string(), e))
}
