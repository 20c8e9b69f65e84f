//! Errors of the profiler. Each variant names what was being measured, so that a failure deep in a
//! 100-member series says which model, point and coding it was. Wrapped errors are `source()`s,
//! left out of the variant's own message, so an `anyhow` chain (`{:#}`) names each cause once.

use std::path::PathBuf;

use tandem_codec::CodecError;
use tandem_models::ModelError;
use tandem_planner::PlanError;

/// What can go wrong while profiling a series or dumping its tensors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Loading the series, a checkpoint or the data set failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The codec refused a real intermediate tensor.
    #[error("model {model} point {point} coding {coding}")]
    Codec {
        /// Series member name.
        model: String,
        /// Partition point name.
        point: String,
        /// Coding name.
        coding: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// The profile assembled from the measurements is invalid (a bug, or a manifest whose
    /// accuracies are not fractions).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// Reading or writing a file.
    #[error("{path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Options out of range.
    #[error("invalid profiler options: {0}")]
    Options(String),
    /// The test set cannot feed the series' models.
    #[error("the test set does not fit the series: {0}")]
    DataMismatch(String),
    /// A member's checkpoint disagrees with the manifest, or the manifest with the profile format.
    #[error("model {model}: {problem}")]
    Inconsistent {
        /// Series member name.
        model: String,
        /// What disagrees.
        problem: String,
    },
    /// The tensor backend failed to run or read back a tensor.
    #[error("backend: {0}")]
    Backend(String),
    /// The inference engine could not be opened (an explicit `onnxruntime` without its library).
    #[error(transparent)]
    Engine(#[from] tandem_engine::EngineError),
}

impl ProfileError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ProfileError> = std::result::Result<T, E>;
