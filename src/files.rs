//! Reading local files (native only), with errors that name the path.

use crate::error::{Error, Result};
use std::path::Path;

pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file(path.display().to_string(), e))
}

pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_bytes(path)?).map_err(|_| Error::file(path.display().to_string(), "not UTF-8 text"))
}
