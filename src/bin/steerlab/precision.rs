//! `--precision f16` (any command): every model the CLI and the helper load holds its weight matrices in f16.

use std::path::Path;
use std::sync::OnceLock;
use steerlab::Result;
use steerlab::device::{Device, Precision};
use steerlab::model::Model;

static PRECISION: OnceLock<Precision> = OnceLock::new();

/// Sets the precision for the whole run, once, from the command line.
pub fn set(precision: Precision) {
    let _ = PRECISION.set(precision);
}

pub fn current() -> Precision {
    PRECISION.get().copied().unwrap_or_default()
}

/// A model directory loaded in the run's precision.
pub fn load_model(dir: &Path, device: &Device) -> Result<Model> {
    Model::from_dir(dir, device)?.with_precision(current())
}
