//! Typed errors of the engine.

use std::path::PathBuf;

/// Errors while building, preparing or running a segment.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A point range the network does not have.
    #[error("segment {from}..{to} is not a range of points in 0..={end}")]
    Range {
        /// First point.
        from: usize,
        /// Last point.
        to: usize,
        /// The network's `end` point.
        end: usize,
    },
    /// Reading the model's tensors failed.
    #[error(transparent)]
    Model(tandem_models::ModelError),
    /// The graph cannot be built or read.
    #[error("ONNX graph: {0}")]
    Graph(String),
    /// ONNX Runtime refused the graph or failed while running it.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// ONNX Runtime's shared library could not be loaded.
    #[error("ONNX Runtime library {path}: {problem}")]
    Library {
        /// The file tried.
        path: PathBuf,
        /// Why it did not load.
        problem: String,
    },
    /// The input does not have the segment's shape.
    #[error("input of shape {got:?} for a segment that takes [N, {expected:?}]")]
    Shape {
        /// `[C, H, W]` the segment takes.
        expected: Vec<usize>,
        /// The shape given.
        got: Vec<usize>,
    },
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}
