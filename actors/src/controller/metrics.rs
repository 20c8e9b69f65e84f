use prometheus::{Gauge, IntCounter, IntCounterVec, Opts, Registry};

use super::actor::SwapResult;

/// The controller's metrics (registered into the caller's registry).
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    /// `tandem_bandwidth_estimate_bits_per_second`.
    pub bandwidth: Gauge,
    /// `tandem_predicted_e2e_seconds`: the planner's prediction for the plan in force, at the
    /// current estimate (compare with `tandem_e2e_seconds`).
    pub predicted: Gauge,
    /// `tandem_rtt_estimate_seconds`.
    pub rtt: Gauge,
    /// `tandem_probes_total`.
    pub probes: IntCounter,
    swaps: IntCounterVec,
}

impl ControllerMetrics {
    /// Register into `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<ControllerMetrics> {
        let bandwidth = Gauge::new("tandem_bandwidth_estimate_bits_per_second", "Estimated device-to-edge bandwidth")?;
        let predicted = Gauge::new("tandem_predicted_e2e_seconds", "Planner's predicted end-to-end latency of the plan in force")?;
        let rtt = Gauge::new("tandem_rtt_estimate_seconds", "Smoothed round-trip time estimate")?;
        let probes = IntCounter::new("tandem_probes_total", "Active bandwidth probes sent")?;
        let swaps = IntCounterVec::new(Opts::new("tandem_plan_swaps_total", "Plan swaps attempted, by result"), &["result"])?;
        for c in [Box::new(bandwidth.clone()) as Box<dyn prometheus::core::Collector>, Box::new(predicted.clone()), Box::new(rtt.clone()), Box::new(probes.clone()), Box::new(swaps.clone())] {
            registry.register(c)?;
        }
        for r in SwapResult::ALL {
            swaps.with_label_values(&[r.as_str()]);
        }
        Ok(ControllerMetrics { bandwidth, predicted, rtt, probes, swaps })
    }

    /// Count a swap.
    pub fn swap(&self, r: SwapResult) {
        self.swaps.with_label_values(&[r.as_str()]).inc();
    }
}
