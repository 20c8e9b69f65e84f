use prometheus::{Gauge, GaugeVec, IntCounter, IntCounterVec, Opts, Registry};
use tandem_planner::Calibration;

use super::actor::SwapResult;

/// The controller's metrics (registered into the caller's registry).
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    /// `tandem_bandwidth_estimate_bytes_per_second` (Prometheus base units: bytes, not bits;
    /// set with [`ControllerMetrics::bandwidth_bps`]).
    pub bandwidth: Gauge,
    /// `tandem_predicted_e2e_seconds`: the planner's prediction for the plan in force, at the
    /// current estimate (compare with `tandem_e2e_seconds`).
    pub predicted: Gauge,
    /// `tandem_rtt_estimate_seconds`.
    pub rtt: Gauge,
    /// `tandem_probes_total`.
    pub probes: IntCounter,
    swaps: IntCounterVec,
    /// `tandem_calibration{term}`: the calibration the planner prices with.
    calibration: GaugeVec,
}

impl ControllerMetrics {
    /// Register into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<ControllerMetrics> {
        let bandwidth = Gauge::new(
            "tandem_bandwidth_estimate_bytes_per_second",
            "Estimated device-to-edge bandwidth in bytes per second",
        )?;
        let predicted =
            Gauge::new("tandem_predicted_e2e_seconds", "Planner's predicted end-to-end latency of the plan in force")?;
        let rtt = Gauge::new("tandem_rtt_estimate_seconds", "Smoothed round-trip time estimate")?;
        let probes = IntCounter::new("tandem_probes_total", "Active bandwidth probes sent")?;
        let swaps =
            IntCounterVec::new(Opts::new("tandem_plan_swaps_total", "Plan swaps attempted, by result"), &["result"])?;
        let calibration = GaugeVec::new(
            Opts::new(
                "tandem_calibration",
                "Online calibration of the planner, measured = offset + scale x profiled compute time, for device inference, device encoding and edge decoding + inference: the *_scale terms are the slopes, the *_offset_seconds terms the per-frame constants",
            ),
            &["term"],
        )?;
        for c in [
            Box::new(bandwidth.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(predicted.clone()),
            Box::new(rtt.clone()),
            Box::new(probes.clone()),
            Box::new(swaps.clone()),
            Box::new(calibration.clone()),
        ] {
            registry.register(c)?;
        }
        for r in SwapResult::ALL {
            swaps.with_label_values(&[r.as_str()]);
        }
        let metrics = ControllerMetrics { bandwidth, predicted, rtt, probes, swaps, calibration };
        metrics.calibration(&Calibration::IDENTITY);
        Ok(metrics)
    }

    /// Publish a bandwidth estimate given in bits per second (the planner's unit) in bytes.
    pub fn bandwidth_bps(&self, bits_per_second: f64) {
        self.bandwidth.set(bits_per_second / 8.0);
    }

    /// Publish the calibration in force.
    pub fn calibration(&self, c: &Calibration) {
        for (term, v) in [
            ("device_scale", c.device_scale),
            ("device_offset_seconds", c.device_offset_ms / 1e3),
            ("encode_scale", c.encode_scale),
            ("encode_offset_seconds", c.encode_offset_ms / 1e3),
            ("edge_scale", c.edge_scale),
            ("edge_offset_seconds", c.edge_offset_ms / 1e3),
        ] {
            self.calibration.with_label_values(&[term]).set(v);
        }
    }

    /// Count a swap.
    pub fn swap(&self, r: SwapResult) {
        self.swaps.with_label_values(&[r.as_str()]).inc();
    }
}
