//! Prometheus metric definitions of both processes — nothing else (they are served over HTTP by
//! [`crate::http`]).
//!
//! Names follow `tandem_<noun>_<unit>[_total]`; label values come from closed enums
//! ([`Stage`], [`DropReason`], [`Origin`], [`ConnectFailure`], [`RejectReason`] from
//! [`crate::types`], and [`tandem_codec::ErrorCode`]), never from error text. This module depends
//! on [`crate::types`] only within the crate; the actors depend on it.
//!
//! Every metric is registered into a `Registry` the caller passes in (a process may run a device
//! and an edge side by side in tests), and labelled children are resolved once, at registration,
//! so the hot path only touches atomics.

mod device;
mod edge;
mod engine;

pub use device::DeviceMetrics;
pub use edge::EdgeMetrics;
pub use engine::EngineMetrics;

// The label vocabulary, re-exported where callers have always found it.
#[doc(no_inline)]
pub use crate::types::{ConnectFailure, DropReason, Origin, RejectReason, Stage, Supervised};

use prometheus::{HistogramOpts, HistogramVec, Registry};

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

/// `tandem_restarts_total{stage}` for the supervised threads of one process.
fn restarts(
    registry: &Registry,
    stages: &[Supervised],
) -> prometheus::Result<std::collections::HashMap<Supervised, prometheus::IntCounter>> {
    let v = prometheus::IntCounterVec::new(
        prometheus::Opts::new("tandem_restarts_total", "Supervised threads restarted after a panic, by stage"),
        &["stage"],
    )?;
    registry.register(Box::new(v.clone()))?;
    Ok(stages.iter().map(|&s| (s, v.with_label_values(&[s.as_str()]))).collect())
}
