//! The end-to-end latency model.
//!
//! ```text
//! total = device compute up to p + encode + bytes·8 / bandwidth + RTT + decode
//!       + edge compute after p + result bytes·8 / bandwidth
//! ```
//!
//! Unlike the authors' notebook (elements / constant rate, no coding, no RTT) this counts bytes on
//! the wire, coding time and one round trip: the request's propagation one way, the result's the
//! other. Serialisation of the request and of the result are charged separately at the link rate.
//! Everything is split into a bandwidth-independent [`PlanCost`] and the link-dependent
//! [`PlanCost::at`], so a plan can be re-evaluated at a new [`LinkState`] without the profiles.

use serde::{Deserialize, Serialize};

use crate::profile::{CodingCost, PointProfile};

/// Bytes of the message carrying the result back to the device: a control frame (13 B header)
/// with the default `InferResult` — the top-3 classes, no logits — of ~27 B, rounded up
/// (checked against the real message in `tandem-actors`' edge worker tests). At 1 Mbit/s it
/// costs 0.3 ms. (With logits asked for, a 10-class result is ~41 B more.)
pub const RESULT_MESSAGE_BYTES: f64 = 48.0;

/// What the planner assumes about the link right now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkState {
    /// Usable bandwidth in bits per second. Zero, negative or NaN means the link is down: every
    /// transmitting choice then costs +∞ and only the all-local plan remains finite.
    pub bandwidth_bps: f64,
    /// Round-trip time in milliseconds (negative or NaN is taken as 0).
    pub rtt_ms: f64,
}

impl LinkState {
    pub fn new(bandwidth_bps: f64, rtt_ms: f64) -> Self {
        Self { bandwidth_bps, rtt_ms }
    }

    /// Convenience for configs and tests written in Mbit/s.
    pub fn mbps(mbit_per_s: f64, rtt_ms: f64) -> Self {
        Self { bandwidth_bps: mbit_per_s * 1e6, rtt_ms }
    }

    /// Milliseconds to serialise `bytes` onto the link.
    pub fn transfer_ms(&self, bytes: f64) -> f64 {
        if bytes <= 0.0 {
            0.0
        } else if self.bandwidth_bps > 0.0 {
            bytes * 8.0 * 1000.0 / self.bandwidth_bps
        } else {
            f64::INFINITY
        }
    }

    fn round_trip_ms(&self) -> f64 {
        // `max` returns the other operand for NaN, so NaN becomes 0.
        self.rtt_ms.max(0.0)
    }
}

/// Predicted per-image latency, stage by stage (all in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Breakdown {
    pub device_ms: f64,
    pub encode_ms: f64,
    pub transfer_ms: f64,
    pub rtt_ms: f64,
    pub decode_ms: f64,
    pub edge_ms: f64,
    pub result_ms: f64,
    pub total_ms: f64,
}

impl Breakdown {
    /// The slowest stage: device inference, encoding, the request's serialisation, the result's,
    /// edge decoding + inference. The runtime runs these concurrently (front and encoder threads,
    /// the link, the edge's workers), so a plan sustains one frame per `bottleneck_ms`; a camera
    /// delivering frames faster than that drops them.
    pub fn bottleneck_ms(&self) -> f64 {
        [self.device_ms, self.encode_ms, self.transfer_ms, self.result_ms, self.decode_ms + self.edge_ms]
            .into_iter()
            .fold(0.0, f64::max)
    }
}

/// The bandwidth-independent part of a choice of (model, point, coding).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanCost {
    pub device_ms: f64,
    pub encode_ms: f64,
    /// Bytes sent to the edge (0 when nothing is sent).
    pub bytes: f64,
    pub decode_ms: f64,
    pub edge_ms: f64,
    /// Whether the edge takes part: false only for the all-local plan, which pays no RTT and
    /// receives no result message.
    pub offloads: bool,
}

impl PlanCost {
    /// Cost of splitting at `point` and sending with `coding`.
    ///
    /// At the `end` point the coding is ignored (nothing is sent). At any other point `None`
    /// means the tensor cannot reach the edge, so the edge part costs +∞.
    pub fn new(point: &PointProfile, coding: Option<&CodingCost>) -> Self {
        match (point.is_end(), coding) {
            (true, _) => PlanCost {
                device_ms: point.device_ms,
                encode_ms: 0.0,
                bytes: 0.0,
                decode_ms: 0.0,
                edge_ms: 0.0,
                offloads: false,
            },
            (false, Some(c)) => PlanCost {
                device_ms: point.device_ms,
                encode_ms: c.encode_ms,
                bytes: c.bytes,
                decode_ms: c.decode_ms,
                edge_ms: point.edge_ms,
                offloads: true,
            },
            (false, None) => PlanCost {
                device_ms: point.device_ms,
                encode_ms: 0.0,
                bytes: 0.0,
                decode_ms: 0.0,
                edge_ms: f64::INFINITY,
                offloads: true,
            },
        }
    }

    /// The latency of this choice over `link`.
    pub fn at(&self, link: &LinkState) -> Breakdown {
        let (transfer_ms, rtt_ms, result_ms) = if self.offloads {
            (link.transfer_ms(self.bytes), link.round_trip_ms(), link.transfer_ms(RESULT_MESSAGE_BYTES))
        } else {
            (0.0, 0.0, 0.0)
        };
        let total_ms =
            self.device_ms + self.encode_ms + transfer_ms + rtt_ms + self.decode_ms + self.edge_ms + result_ms;
        Breakdown {
            device_ms: self.device_ms,
            encode_ms: self.encode_ms,
            transfer_ms,
            rtt_ms,
            decode_ms: self.decode_ms,
            edge_ms: self.edge_ms,
            result_ms,
            total_ms,
        }
    }
}

/// Latency of splitting at `point` with `coding` over `link` (see [`PlanCost::new`] for `None`).
pub fn latency(point: &PointProfile, coding: Option<&CodingCost>, link: &LinkState) -> Breakdown {
    PlanCost::new(point, coding).at(link)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::CodingClass;

    fn point(name: &str, device_ms: f64, edge_ms: f64) -> PointProfile {
        PointProfile { point: 3, name: name.into(), device_ms, edge_ms, elements: 1000, codings: vec![] }
    }

    fn coding(bytes: f64) -> CodingCost {
        CodingCost {
            coding: "q8-lz4".into(),
            class: CodingClass::Lossy,
            bytes,
            encode_ms: 0.5,
            decode_ms: 0.25,
            accuracy: None,
        }
    }

    const TOLERANCE_MS: f64 = 1e-9;

    #[test]
    fn split_sums_every_stage() {
        // 10_000 bytes at 8 Mbit/s = 10 ms; the 48-byte result = 0.048 ms.
        let b = latency(&point("pool2", 20.0, 3.0), Some(&coding(10_000.0)), &LinkState::mbps(8.0, 4.0));
        assert!((b.transfer_ms - 10.0).abs() < TOLERANCE_MS);
        assert!((b.result_ms - 0.048).abs() < TOLERANCE_MS);
        assert!((b.total_ms - (20.0 + 0.5 + 10.0 + 4.0 + 0.25 + 3.0 + 0.048)).abs() < TOLERANCE_MS);
    }

    #[test]
    fn end_point_pays_only_device_compute() {
        let b = latency(&point("end", 70.0, 0.0), None, &LinkState::mbps(1.0, 50.0));
        assert_eq!(b.total_ms, 70.0);
        assert_eq!(b.rtt_ms + b.transfer_ms + b.result_ms, 0.0);
    }

    #[test]
    fn link_down_makes_offloading_infinite_but_not_local() {
        let down = LinkState::new(0.0, 5.0);
        assert!(latency(&point("pool1", 1.0, 1.0), Some(&coding(10.0)), &down).total_ms.is_infinite());
        assert_eq!(latency(&point("end", 70.0, 0.0), None, &down).total_ms, 70.0);
        let nan = LinkState::new(f64::NAN, f64::NAN);
        assert!(latency(&point("pool1", 1.0, 1.0), Some(&coding(10.0)), &nan).total_ms.is_infinite());
    }

    #[test]
    fn split_point_without_coding_is_never_finite() {
        let b = latency(&point("pool1", 1.0, 1.0), None, &LinkState::mbps(100.0, 1.0));
        assert!(b.total_ms.is_infinite());
    }
}
