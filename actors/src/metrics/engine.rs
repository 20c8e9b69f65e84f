use std::collections::HashMap;
use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntGauge, IntGaugeVec, Opts, Registry};
use tandem_engine::EngineKind;

/// The inference engine's metrics, registered by both processes (each into its own registry).
#[derive(Clone, Debug)]
pub struct EngineMetrics {
    /// `tandem_engine_info{engine}`: 1 for the engine this process runs segments on, else 0
    /// (`burn` with ONNX Runtime wanted means its library did not load: see the log).
    engines: HashMap<EngineKind, IntGauge>,
    /// `tandem_segment_prepare_seconds`: building and optimising one head or tail, off the frame
    /// path (it bounds how fast a plan swap can happen).
    pub prepare: Histogram,
}

impl EngineMetrics {
    /// Create and register the engine metrics into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<EngineMetrics> {
        let info = IntGaugeVec::new(
            Opts::new("tandem_engine_info", "1 for the inference engine in use (onnxruntime or burn)"),
            &["engine"],
        )?;
        registry.register(Box::new(info.clone()))?;
        let prepare = Histogram::with_opts(
            HistogramOpts::new("tandem_segment_prepare_seconds", "Preparing one model segment for inference")
                .buckets(super::latency_buckets()),
        )?;
        registry.register(Box::new(prepare.clone()))?;
        Ok(EngineMetrics {
            engines: EngineKind::ALL.iter().map(|&k| (k, info.with_label_values(&[k.as_str()]))).collect(),
            prepare,
        })
    }

    /// Record the engine in use.
    pub fn in_use(&self, kind: EngineKind) {
        for (k, g) in &self.engines {
            g.set(i64::from(*k == kind));
        }
    }

    /// Record one segment's preparation.
    pub fn prepared(&self, took: Duration) {
        self.prepare.observe(took.as_secs_f64());
    }
}
