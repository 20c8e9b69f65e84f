//! Errors of the online crate. Variants carry what went wrong; none carries a socket or a lock.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors from building or running the pipeline and the edge server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActorError {
    /// A model could not be loaded from the series.
    #[error("model {model_id}: {source}")]
    Model {
        model_id: u32,
        #[source]
        source: tandem_models::ModelError,
    },
    /// The inference engine could not prepare a segment of a model.
    #[error("model {model_id}: {source}")]
    Engine {
        model_id: u32,
        #[source]
        source: tandem_engine::EngineError,
    },
    /// The series manifest could not be read.
    #[error("series {dir}: {source}")]
    Series {
        dir: PathBuf,
        #[source]
        source: tandem_models::ModelError,
    },
    /// A plan names something the series does not have.
    #[error("bad plan {plan:?}: {why}")]
    BadPlan { plan: String, why: String },
    /// A configuration value is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A secret or certificate file could not be read or used (never carries the secret).
    #[error("{what} {}: {why}", path.display())]
    Credentials { what: &'static str, path: PathBuf, why: String },
    /// Binding or accepting on an address failed.
    #[error("{what} {addr}: {source}")]
    Io {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Registering a metric failed (a name registered twice into one registry).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// A thread could not be spawned.
    #[error("spawning thread {name}: {source}")]
    Spawn {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The device pipeline ended without reporting (a stage panicked).
    #[error("pipeline stage {0} ended abnormally")]
    StageFailed(&'static str),
}
