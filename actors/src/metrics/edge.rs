use std::collections::HashMap;

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tandem_codec::ErrorCode;

use super::stage_histogram;
use crate::types::{RejectReason, Stage, Supervised};

/// Every error code, for resolving labelled children up front.
const ERROR_CODES: [ErrorCode; 12] = [
    ErrorCode::Checksum,
    ErrorCode::Malformed,
    ErrorCode::UnsupportedVersion,
    ErrorCode::TooLarge,
    ErrorCode::StalePlan,
    ErrorCode::UnknownModel,
    ErrorCode::BadPoint,
    ErrorCode::Decode,
    ErrorCode::Inference,
    ErrorCode::Overloaded,
    ErrorCode::Internal,
    ErrorCode::Panic,
];

/// The edge server's metrics. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EdgeMetrics {
    /// `tandem_edge_connections`: sessions open now.
    pub connections: IntGauge,
    /// `tandem_edge_connections_total{outcome="accepted"}`.
    pub accepted: IntCounter,
    /// `tandem_edge_connections_total{outcome="rejected"}` (limit, protocol, token, handshake,
    /// TLS); by reason in `tandem_edge_rejections_total` ([`EdgeMetrics::reject`] counts both).
    pub rejected: IntCounter,
    rejections: HashMap<RejectReason, IntCounter>,
    /// `tandem_edge_connections_total{outcome="idle_timeout"}`.
    pub idle_closed: IntCounter,
    /// `tandem_edge_frames_total`: tensor frames answered with a result.
    pub frames: IntCounter,
    errors: HashMap<ErrorCode, IntCounter>,
    stages: HashMap<Stage, Histogram>,
    /// `tandem_link_bytes_total{direction="received"}`.
    pub bytes_received: IntCounter,
    /// `tandem_link_bytes_total{direction="sent"}`.
    pub bytes_sent: IntCounter,
    /// `tandem_edge_models_loaded`: tails in the model store.
    pub models_loaded: IntGauge,
    /// `tandem_edge_replies_dropped_total`: replies dropped because a connection's outbox was full.
    pub replies_dropped: IntCounter,
    /// The engine the tails run on, and their preparation times.
    pub engine: super::EngineMetrics,
    restarts: HashMap<Supervised, IntCounter>,
}

impl EdgeMetrics {
    /// Create and register every edge metric into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<EdgeMetrics> {
        let reg = |c: Box<dyn prometheus::core::Collector>| registry.register(c);
        let connections = IntGauge::new("tandem_edge_connections", "Device sessions open now")?;
        reg(Box::new(connections.clone()))?;
        let conn_total = IntCounterVec::new(
            Opts::new("tandem_edge_connections_total", "Device connections by outcome"),
            &["outcome"],
        )?;
        reg(Box::new(conn_total.clone()))?;
        let frames = IntCounter::new("tandem_edge_frames_total", "Tensor frames answered with a result")?;
        reg(Box::new(frames.clone()))?;
        let errors = IntCounterVec::new(
            Opts::new("tandem_edge_frame_errors_total", "Frames answered with an error, by reason"),
            &["reason"],
        )?;
        reg(Box::new(errors.clone()))?;
        let bytes = IntCounterVec::new(
            Opts::new("tandem_link_bytes_total", "Bytes on the device-edge link (frames incl. headers)"),
            &["direction"],
        )?;
        reg(Box::new(bytes.clone()))?;
        let models_loaded = IntGauge::new("tandem_edge_models_loaded", "Model tails held by the model store")?;
        reg(Box::new(models_loaded.clone()))?;
        let rejections = IntCounterVec::new(
            Opts::new("tandem_edge_rejections_total", "Connections refused, by reason"),
            &["reason"],
        )?;
        reg(Box::new(rejections.clone()))?;
        let replies_dropped = IntCounter::new(
            "tandem_edge_replies_dropped_total",
            "Replies dropped because the connection's outbox was full",
        )?;
        reg(Box::new(replies_dropped.clone()))?;
        let stage_vec = stage_histogram(registry)?;
        let restarts = super::restarts(registry, &Supervised::EDGE)?;
        Ok(EdgeMetrics {
            connections,
            accepted: conn_total.with_label_values(&["accepted"]),
            rejected: conn_total.with_label_values(&["rejected"]),
            rejections: RejectReason::ALL.iter().map(|&r| (r, rejections.with_label_values(&[r.as_str()]))).collect(),
            idle_closed: conn_total.with_label_values(&["idle_timeout"]),
            frames,
            errors: ERROR_CODES.iter().map(|&c| (c, errors.with_label_values(&[c.as_str()]))).collect(),
            stages: [Stage::EdgeQueue, Stage::EdgeDecode, Stage::EdgeInfer]
                .iter()
                .map(|&s| (s, stage_vec.with_label_values(&[s.as_str()])))
                .collect(),
            bytes_received: bytes.with_label_values(&["received"]),
            bytes_sent: bytes.with_label_values(&["sent"]),
            models_loaded,
            replies_dropped,
            engine: super::EngineMetrics::register(registry)?,
            restarts,
        })
    }

    /// Count one refused connection.
    pub fn reject(&self, reason: RejectReason) {
        self.rejected.inc();
        if let Some(c) = self.rejections.get(&reason) {
            c.inc();
        }
    }

    /// Count one restart of a supervised thread.
    pub fn restart(&self, stage: Supervised) {
        if let Some(c) = self.restarts.get(&stage) {
            c.inc();
        }
    }

    /// Count one frame answered with `code`.
    pub fn error(&self, code: ErrorCode) {
        if let Some(c) = self.errors.get(&code) {
            c.inc();
        }
    }

    /// Observe one stage duration in seconds.
    pub fn stage(&self, stage: Stage, seconds: f64) {
        if let Some(h) = self.stages.get(&stage) {
            h.observe(seconds);
        }
    }
}
