//! One error type for the engine: every message names the file, tensor or value at fault.

/// What went wrong, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or parsed (`file`: which one, `msg`: why).
    #[error("{file}: {msg}")]
    File { file: String, msg: String },
    /// A tensor is missing, of the wrong shape or of an unsupported dtype.
    #[error("{file}: tensor `{tensor}`: {msg}")]
    Tensor { file: String, tensor: String, msg: String },
    /// A request is not valid for this model (unknown hook, over-long prompt, bad option).
    #[error("{0}")]
    Invalid(String),
    /// The compute device failed (no adapter, lost device, failed read-back).
    #[error("device: {0}")]
    Device(String),
    /// The caller cancelled the request.
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn file(file: impl Into<String>, msg: impl std::fmt::Display) -> Self {
        Error::File { file: file.into(), msg: msg.to_string() }
    }
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        Error::Invalid(msg.to_string())
    }
    /// Says which record of a dataset an invalid request came from ("pair 3: sequence too long ...").
    pub fn in_record(self, what: &str, index: usize) -> Self {
        match self {
            Error::Invalid(msg) => Error::Invalid(format!("{what} {}: {msg}", index + 1)),
            other => other,
        }
    }
}
