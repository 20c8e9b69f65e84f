//! Typed errors of the offline crate. Every variant names the file or object involved and what
//! was wrong with it, so a CLI user sees "t10k-images-idx3-ubyte.gz: truncated: expected
//! 7840000 bytes of pixels, got 1024" rather than a panic.

use std::path::PathBuf;

/// Errors raised while reading data sets, building models or loading checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A data file whose content does not follow its format.
    #[error("{path}: {problem}")]
    BadData {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A model description that cannot be built (zero widths, wrong layer count, ...).
    #[error("invalid model spec: {0}")]
    BadSpec(String),
    /// A partition point name or index that the architecture does not have.
    #[error("unknown partition point {0:?}")]
    UnknownPoint(String),
    /// A checkpoint directory whose `model.toml` or weights are missing or inconsistent.
    #[error("checkpoint {path}: {problem}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A tensor with a shape other than the one the architecture needs.
    #[error("tensor {name}: expected shape {expected:?}, got {got:?}")]
    ShapeMismatch {
        /// Parameter name (burn module path).
        name: String,
        /// Shape required by the model spec.
        expected: Vec<usize>,
        /// Shape found.
        got: Vec<usize>,
    },
    /// A parameter the model needs is absent.
    #[error("tensor {0} is missing")]
    MissingTensor(String),
    /// A configuration value out of its allowed range.
    #[error("invalid config: {0}")]
    Config(String),
    /// A compute device this binary cannot use: its backend was not built in, or it has no
    /// working driver here, or it failed while running.
    #[error("device {device}: {problem}")]
    Device {
        /// The device (`--device` name, or burn's description of it).
        device: String,
        /// What is wrong, and what to do about it where that is known.
        problem: String,
    },
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
    pub(crate) fn bad_data(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::BadData { path: path.into(), problem: problem.into() }
    }
    pub(crate) fn checkpoint(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Self::Checkpoint { path: path.into(), problem: problem.into() }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
