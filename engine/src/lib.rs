//! # tandem-engine — the online path's inference engine
//!
//! A [`Segment`] is the layers between two partition points of one series member, prepared for
//! inference: `run(input) -> output`. The device's front thread runs heads, the edge's workers
//! run tails, and `tandem profile` times the same segments, so the planner prices what the
//! runtime executes. burn stays for training and pruning.
//!
//! [`Engine::open`] picks the runtime once per process: ONNX Runtime (through `ort`, its shared
//! library loaded at run time, see [`onnxruntime`]) where it loads, burn otherwise, with one
//! warning. Why ONNX Runtime: at batch 1 it is 6–12× faster than burn's flex backend on the
//! same weights (docs/RESULTS.md, "Inference engine").
//!
//! [`onnx`] builds the ONNX graph of a segment (in [`pb`], ONNX's protobuf messages); the same
//! bytes feed ONNX Runtime and `tandem export`. With the `tract` feature, [`tract`] runs the
//! files in an independent runtime (the tests and `tandem bench engines`).

pub mod agreement;
mod engine;
pub mod error;
pub mod onnx;
pub mod onnxruntime;
pub mod pb;
#[cfg(feature = "tract")]
pub mod tract;

pub use engine::{Choice, Engine, EngineKind, EngineOptions, Segment, default_threads};
pub use error::EngineError;
