use std::collections::HashMap;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::{latency_buckets, stage_histogram};
use crate::types::{ActivePlan, ConnectFailure, DropReason, Origin, Stage, Supervised};

/// The device's metrics. Cheap to clone (handles to atomics).
#[derive(Clone, Debug)]
pub struct DeviceMetrics {
    /// `tandem_frames_total`: frames captured by the camera.
    pub frames: IntCounter,
    dropped: HashMap<DropReason, IntCounter>,
    results: HashMap<Origin, IntCounter>,
    stages: HashMap<Stage, Histogram>,
    /// `tandem_e2e_seconds`: capture → result.
    pub e2e: Histogram,
    /// `tandem_link_bytes_total{direction="sent"}`.
    pub bytes_sent: IntCounter,
    /// `tandem_link_bytes_total{direction="received"}`.
    pub bytes_received: IntCounter,
    /// `tandem_plan_model_id`.
    pub plan_model: IntGauge,
    /// `tandem_plan_point`.
    pub plan_point: IntGauge,
    /// `tandem_plan_epoch`.
    pub plan_epoch: IntGauge,
    /// `tandem_link_connected`: 1 while a session with the edge is up.
    pub connected: IntGauge,
    /// `tandem_link_connects_total`: sessions established.
    pub connects: IntCounter,
    /// `tandem_link_in_flight_frames`: frames sent and not yet answered.
    pub in_flight: IntGauge,
    connect_failures: HashMap<ConnectFailure, IntCounter>,
    /// The engine the heads run on, and their preparation times.
    pub engine: super::EngineMetrics,
    /// `tandem_segments_prepared_on_frame_total`: heads or tails that had to be prepared while a
    /// frame waited (a plan published without its heads prepared, or a rerun's tail).
    pub prepared_on_frame: IntCounter,
    /// `tandem_predictions_written_total`: prediction lines written to the sink.
    pub predictions_written: IntCounter,
    /// `tandem_predictions_dropped_total`: prediction lines that could not be delivered (queue
    /// full because the sink is slow, a write error, or still queued at exit).
    pub predictions_dropped: IntCounter,
    classes: IntCounterVec,
    /// `tandem_source_restarts_total`: times a live source (RTSP, V4L2, …) was reopened after
    /// it ended, failed or stalled.
    pub source_restarts: IntCounter,
    /// `tandem_source_gap_seconds_total`: time without frames while a live source was reopened.
    pub source_gap_seconds: prometheus::Counter,
    restarts: HashMap<Supervised, IntCounter>,
}

impl DeviceMetrics {
    /// Create and register every device metric into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<DeviceMetrics> {
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let dropped_vec = IntCounterVec::new(
            Opts::new("tandem_frames_dropped_total", "Frames that ended without a result, by reason"),
            &["reason"],
        )?;
        registry.register(Box::new(dropped_vec.clone()))?;
        let results_vec = IntCounterVec::new(
            Opts::new("tandem_results_total", "Frames that ended with a result, by where it was computed"),
            &["origin"],
        )?;
        registry.register(Box::new(results_vec.clone()))?;
        let bytes_vec = IntCounterVec::new(
            Opts::new("tandem_link_bytes_total", "Bytes on the device-edge link (frames incl. headers)"),
            &["direction"],
        )?;
        registry.register(Box::new(bytes_vec.clone()))?;
        let failures_vec = IntCounterVec::new(
            Opts::new(
                "tandem_link_connect_failures_total",
                "Attempts to open a session with the edge that failed, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(failures_vec.clone()))?;
        let classes = IntCounterVec::new(
            Opts::new("tandem_results_by_class_total", "Frames that ended with a result, by predicted class"),
            &["class"],
        )?;
        registry.register(Box::new(classes.clone()))?;
        let stage_vec = stage_histogram(registry)?;
        let e2e = Histogram::with_opts(
            HistogramOpts::new("tandem_e2e_seconds", "Capture to result, per frame").buckets(latency_buckets()),
        )?;
        registry.register(Box::new(e2e.clone()))?;
        let restarts = super::restarts(registry, &Supervised::DEVICE)?;
        Ok(DeviceMetrics {
            frames: counter("tandem_frames_total", "Frames captured by the camera")?,
            dropped: DropReason::ALL.iter().map(|&r| (r, dropped_vec.with_label_values(&[r.as_str()]))).collect(),
            results: Origin::ALL.iter().map(|&o| (o, results_vec.with_label_values(&[o.as_str()]))).collect(),
            stages: Stage::ALL.iter().map(|&s| (s, stage_vec.with_label_values(&[s.as_str()]))).collect(),
            e2e,
            bytes_sent: bytes_vec.with_label_values(&["sent"]),
            bytes_received: bytes_vec.with_label_values(&["received"]),
            plan_model: gauge("tandem_plan_model_id", "Model id of the plan in force")?,
            plan_point: gauge("tandem_plan_point", "Partition point index of the plan in force")?,
            plan_epoch: gauge("tandem_plan_epoch", "Epoch of the plan in force")?,
            connected: gauge("tandem_link_connected", "1 while a session with the edge is established, else 0")?,
            connects: counter("tandem_link_connects_total", "Sessions established with the edge")?,
            in_flight: gauge("tandem_link_in_flight_frames", "Frames sent to the edge and not yet answered")?,
            connect_failures: ConnectFailure::ALL
                .iter()
                .map(|&f| (f, failures_vec.with_label_values(&[f.as_str()])))
                .collect(),
            engine: super::EngineMetrics::register(registry)?,
            prepared_on_frame: counter(
                "tandem_segments_prepared_on_frame_total",
                "Heads or tails prepared on the engine while a frame waited (not before their plan was published)",
            )?,
            predictions_written: counter(
                "tandem_predictions_written_total",
                "Prediction lines (results and drops) written to the --predictions sink",
            )?,
            predictions_dropped: counter(
                "tandem_predictions_dropped_total",
                "Prediction lines not delivered: the sink could not keep up (queue full), failed, or blocked at exit",
            )?,
            classes,
            source_restarts: counter(
                "tandem_source_restarts_total",
                "Times a live source was reopened after it ended, failed or stalled",
            )?,
            source_gap_seconds: {
                let c = prometheus::Counter::new(
                    "tandem_source_gap_seconds_total",
                    "Seconds without frames while a live source was being reopened",
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            restarts,
        })
    }

    /// The `tandem_results_by_class_total` counters for these class names (index = class),
    /// made once, off the hot path. The label set is the model card's class names.
    pub fn class_counters(&self, names: &[String]) -> Vec<IntCounter> {
        names.iter().map(|n| self.classes.with_label_values(&[n.as_str()])).collect()
    }

    /// Count one restart of a supervised thread.
    pub fn restart(&self, stage: Supervised) {
        if let Some(c) = self.restarts.get(&stage) {
            c.inc();
        }
    }

    /// Count one dropped frame.
    pub fn dropped(&self, reason: DropReason) {
        self.dropped_n(reason, 1);
    }

    /// Count `n` dropped frames.
    pub fn dropped_n(&self, reason: DropReason, n: u64) {
        if let Some(c) = self.dropped.get(&reason) {
            c.inc_by(n);
        }
    }

    /// Count one failed attempt to open a session.
    pub fn connect_failure(&self, why: ConnectFailure) {
        if let Some(c) = self.connect_failures.get(&why) {
            c.inc();
        }
    }

    /// Count one result.
    pub fn result(&self, origin: Origin) {
        if let Some(c) = self.results.get(&origin) {
            c.inc();
        }
    }

    /// Observe one stage duration in seconds.
    pub fn stage(&self, stage: Stage, seconds: f64) {
        if let Some(h) = self.stages.get(&stage) {
            h.observe(seconds);
        }
    }

    /// Set the plan gauges.
    pub fn plan(&self, plan: &ActivePlan) {
        self.plan_model.set(i64::from(plan.choice.model_id));
        self.plan_point.set(i64::from(plan.choice.point));
        self.plan_epoch.set(i64::from(plan.epoch));
    }
}
