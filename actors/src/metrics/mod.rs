//! Prometheus metrics of both processes and the `/metrics` HTTP responder.
//!
//! Names follow `tandem_<noun>_<unit>[_total]`; label values come from closed enums
//! ([`Stage`], [`crate::ledger::DropReason`], [`Origin`], [`tandem_codec::ErrorCode`]), never
//! from error text. Every metric is registered into a `Registry` the caller passes in (a process
//! may run a device and an edge side by side in tests), and labelled children are resolved once,
//! at registration, so the hot path only touches atomics.

mod device;
mod edge;
mod http;

pub use device::DeviceMetrics;
pub use edge::{EdgeMetrics, RejectReason};
pub use http::{MetricsServer, serve, serve_with_floor};

use prometheus::{HistogramOpts, HistogramVec, Registry};

/// A pipeline stage, the `stage` label of `tandem_stage_seconds`; serialised as that label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Capture → front inference starts (camera queue wait).
    CameraQueue,
    /// Head inference on the device.
    Front,
    /// Quantise + compress + frame (the front → encoder queue wait is not included).
    Encode,
    /// Encoded → first byte written (encoder → link queue, in-flight window).
    LinkQueue,
    /// First byte written → result read, minus the edge's decode and inference time: the
    /// network and the edge's queues.
    Transfer,
    /// Edge: frame read → an inference thread picks it up.
    EdgeQueue,
    /// Edge: decode of the tensor.
    EdgeDecode,
    /// Edge: tail inference.
    EdgeInfer,
    /// Whole-model inference on the device (plan `end`, or the link is down).
    Local,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 9] = [
        Stage::CameraQueue,
        Stage::Front,
        Stage::Encode,
        Stage::LinkQueue,
        Stage::Transfer,
        Stage::EdgeQueue,
        Stage::EdgeDecode,
        Stage::EdgeInfer,
        Stage::Local,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::CameraQueue => "camera_queue",
            Stage::Front => "front",
            Stage::Encode => "encode",
            Stage::LinkQueue => "link_queue",
            Stage::Transfer => "transfer",
            Stage::EdgeQueue => "edge_queue",
            Stage::EdgeDecode => "edge_decode",
            Stage::EdgeInfer => "edge_infer",
            Stage::Local => "local",
        }
    }
}

/// Where a result was computed, the `origin` label of `tandem_results_total`; serialised as that
/// label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Head on the device, tail on the edge.
    Edge,
    /// Whole model on the device.
    Local,
}

impl Origin {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Origin::Edge => "edge",
            Origin::Local => "local",
        }
    }
}

/// Latency buckets: 50 µs doubling to ~6.5 s.
fn latency_buckets() -> Vec<f64> {
    // exponential_buckets only fails for a non-positive start/factor or zero count.
    prometheus::exponential_buckets(50e-6, 2.0, 18).unwrap_or_else(|_| prometheus::DEFAULT_BUCKETS.to_vec())
}

/// `tandem_stage_seconds{stage}` — shared by both processes (each registers its own).
fn stage_histogram(registry: &Registry) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(
        HistogramOpts::new("tandem_stage_seconds", "Time spent in one pipeline stage per frame")
            .buckets(latency_buckets()),
        &["stage"],
    )?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}
