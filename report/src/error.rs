//! Errors of the report crate. Variants that wrap another error expose it as `source()` and
//! leave it out of their own message, so an `anyhow` chain (`{:#}`) names each cause once.

use std::path::PathBuf;

use tandem_models::ModelError;
use tandem_planner::PlanError;

/// What can go wrong writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Reading or writing a file.
    #[error("{path}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A profile that cannot be read, is invalid, or does not match its partner.
    #[error("{context}")]
    Profile {
        /// Which profile (file name or role).
        context: String,
        /// The planner's error.
        #[source]
        source: PlanError,
    },
    /// Loading the series manifest.
    #[error(transparent)]
    Series(#[from] ModelError),
    /// The series and the profiles describe different models.
    #[error("series and profiles disagree: {0}")]
    Mismatch(String),
    /// Drawing a chart failed.
    #[error("chart {chart}: {problem}")]
    Chart {
        /// Chart file stem.
        chart: String,
        /// The drawing backend's message.
        problem: String,
    },
    /// No usable font for chart text.
    #[error("no font for chart text: {0}")]
    Font(String),
    /// Options out of range.
    #[error("invalid report options: {0}")]
    Options(String),
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}

/// Result alias of this crate.
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
