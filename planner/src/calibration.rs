//! Online calibration: what the profiles get wrong, learned from finished frames.
//!
//! The profiles are measured offline, back to back, on a warm machine. In the pipeline a frame
//! arrives every 33 ms to caches and thread pools that have gone cold, waits in queues, and crosses
//! a runtime the profiler never saw; on the 2-core development box batch-1 inference ran
//! 1.3–2.1× slower in the pipeline than in the profiler, on the device and the edge alike, and
//! with a device emulated R× slower that error is multiplied by R. A planner priced from the
//! profiles alone mis-ranks plans (docs/RESULTS.md §6).
//!
//! A [`Calibrator`] watches what each finished frame cost, stage by stage, next to what the
//! uncalibrated profiles said it would cost, and keeps a [`Calibration`]:
//!
//! - **`device_scale`**, **`encode_scale`**, **`edge_scale`**: measured ÷ profiled compute —
//!   device inference, device encoding, edge decoding + inference — each as a ratio of smoothed
//!   sums (not a mean of per-frame ratios, so the mean latency it predicts is the mean that is
//!   measured). A side is only learned from frames where its profiled work is at least
//!   [`CalibratorConfig::min_stage_ms`]: a frame that offloads its input says nothing about the
//!   device's inference speed, and its scale is kept rather than decayed — otherwise the
//!   controller would forget a slow device the moment it stopped using it, and flap back.
//! - **Borrowing.** Until one side's inference has been measured (a plan that offloads its input
//!   runs none on the device; an all-local plan none on the edge) it takes the other side's
//!   scale. Both are batch-1 inference of the same networks on cold caches, profiled the same
//!   way, so the other side's error is a better guess than none: with 1.0, a controller that had
//!   only ever offloaded priced local inference 1.5× too cheap and swapped to it on the first
//!   bandwidth drop, only to swap back once it had measured it.
//! - **Warm-up.** A scale is applied only once [`CalibratorConfig::min_frames`] frames have
//!   taught it, so one cold first frame (a model just loaded, caches empty) cannot reprice every
//!   plan; the controller also leaves out the first frames after each plan swap.
//!
//! Only compute is calibrated. The link is the bandwidth estimator's: it measures rate and round
//! trip from the same frames, and an error there would be learned twice. Waits in the device's
//! queues are not learned either: in steady state they are a fraction of a millisecond, and what
//! is large is transient (frames held behind a probe, a connection being set up) — learned as a
//! constant it would penalise every plan of that kind, and once the controller stopped running
//! such plans it could never unlearn it.
//!
//! [`Calibration::apply`] turns a profiled [`PlanCost`] into a calibrated one; the planner applies
//! it to every candidate (see [`crate::Profiles::calibrated`]) so that all choices are priced by
//! the same corrected model. What calibration is *for* is the transfer of scales measured on the
//! plan that runs to the plans that do not, which is what `tandem reproduce` measures.

use serde::{Deserialize, Serialize};

use crate::latency::PlanCost;

/// Bounds of a learned scale: a profile off by more than this is a wrong profile, not a cold
/// cache, and should not be papered over.
pub const SCALE_BOUNDS: (f64, f64) = (0.25, 8.0);

/// Corrections applied to profiled costs (see the module docs). [`Calibration::IDENTITY`]
/// changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Device inference (up to the point): measured ÷ profiled.
    pub device_scale: f64,
    /// Device encoding of the split tensor: measured ÷ profiled. Apart from inference because
    /// the two go cold differently: a plan that offloads the input does little but encode, and
    /// its encoder says nothing about how fast the device runs a network.
    pub encode_scale: f64,
    /// Edge compute (decoding, and inference after the point): measured ÷ profiled.
    pub edge_scale: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Self::IDENTITY
    }
}

impl Calibration {
    pub const IDENTITY: Calibration = Calibration { device_scale: 1.0, encode_scale: 1.0, edge_scale: 1.0 };

    /// `cost` with its compute times scaled.
    pub fn apply(&self, cost: &PlanCost) -> PlanCost {
        PlanCost {
            device_ms: cost.device_ms * self.device_scale,
            encode_ms: cost.encode_ms * self.encode_scale,
            decode_ms: cost.decode_ms * self.edge_scale,
            edge_ms: cost.edge_ms * self.edge_scale,
            ..*cost
        }
    }

    fn scales(&self) -> [f64; 3] {
        [self.device_scale, self.encode_scale, self.edge_scale]
    }

    /// Whether every scale is within [`SCALE_BOUNDS`].
    pub fn is_valid(&self) -> bool {
        let (lo, hi) = SCALE_BOUNDS;
        self.scales().iter().all(|s| (lo..=hi).contains(s))
    }

    /// Whether `other` differs enough from `self` to be worth re-pricing every plan for: some
    /// scale by more than `rel`, relative to the larger of the two.
    pub fn differs(&self, other: &Calibration, rel: f64) -> bool {
        self.scales().iter().zip(other.scales()).any(|(a, b)| (a - b).abs() > rel * a.abs().max(b.abs()))
    }
}

/// How fast a [`Calibrator`] learns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibratorConfig {
    /// Weight of a new frame in the smoothed sums, in `(0, 1]`. Default 0.05: about the last
    /// 20 frames, under a second at 30 FPS, so a plan swap is absorbed quickly.
    pub gain: f64,
    /// A side's scale is learned only from frames whose profiled work on that side is at least
    /// this. Default 0.2 ms: shorter stages are dominated by timer and scheduling noise.
    pub min_stage_ms: f64,
    /// A scale is reported (instead of 1) once this many frames have taught it. Default 10.
    pub min_frames: u64,
}

impl Default for CalibratorConfig {
    fn default() -> Self {
        Self { gain: 0.05, min_stage_ms: 0.2, min_frames: 10 }
    }
}

/// One finished frame: what the (uncalibrated) profiles predicted, and what was measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameCost {
    /// The plan's profiled cost, *without* calibration.
    pub profiled: PlanCost,
    /// Device inference, measured, ms (emulated slowdown included).
    pub device_ms: f64,
    /// Device encoding, measured, ms (0 for local frames).
    pub encode_ms: f64,
    /// Edge decoding + inference, as the edge reported it, ms (0 for local frames).
    pub edge_ms: f64,
}

/// Smoothed `measured / profiled` for one stage.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ratio {
    measured: f64,
    profiled: f64,
    frames: u64,
}

impl Ratio {
    /// A plain running mean over the first `1/gain` frames, then an EWMA: the first frame does
    /// not weigh `(1 - gain)^n` long after it was taken.
    fn update(slot: &mut Option<Ratio>, measured: f64, profiled: f64, gain: f64) {
        *slot = Some(match *slot {
            None => Ratio { measured, profiled, frames: 1 },
            Some(r) => {
                let frames = r.frames + 1;
                let g = gain.max(1.0 / frames as f64);
                Ratio {
                    measured: r.measured + g * (measured - r.measured),
                    profiled: r.profiled + g * (profiled - r.profiled),
                    frames,
                }
            }
        });
    }

    /// The scale, once `min_frames` taught it (`None` before).
    fn scale(slot: Option<Ratio>, min_frames: u64) -> Option<f64> {
        let (lo, hi) = SCALE_BOUNDS;
        slot.filter(|r| r.frames >= min_frames)
            .map(|r| r.measured / r.profiled)
            .filter(|s| s.is_finite())
            .map(|s| s.clamp(lo, hi))
    }
}

/// Learns a [`Calibration`] from [`FrameCost`]s (see the module docs). Pure: no clock, no I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrator {
    config: CalibratorConfig,
    device: Option<Ratio>,
    encode: Option<Ratio>,
    edge: Option<Ratio>,
    frames: u64,
}

impl Default for Calibrator {
    fn default() -> Self {
        Self::new(CalibratorConfig::default())
    }
}

impl Calibrator {
    /// Out-of-range settings are replaced: `gain` outside `(0, 1]` and a non-finite or negative
    /// `min_stage_ms` by their defaults (a `gain` above 1 by 1).
    pub fn new(config: CalibratorConfig) -> Self {
        let gain = if config.gain.is_finite() && config.gain > 0.0 {
            config.gain.min(1.0)
        } else {
            CalibratorConfig::default().gain
        };
        let min_stage_ms = if config.min_stage_ms.is_finite() {
            config.min_stage_ms.max(0.0)
        } else {
            CalibratorConfig::default().min_stage_ms
        };
        Self {
            config: CalibratorConfig { gain, min_stage_ms, ..config },
            device: None,
            encode: None,
            edge: None,
            frames: 0,
        }
    }

    /// Whether some inference scale (device or edge) has been learned, so that
    /// [`Calibrator::calibration`] is more than a guess.
    pub fn ready(&self) -> bool {
        let min = self.config.min_frames;
        Ratio::scale(self.device, min).or(Ratio::scale(self.edge, min)).is_some()
    }

    /// Frames taken into account so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Take one finished frame into account. Frames with a non-finite or negative measurement,
    /// or an infinite profiled cost, are ignored.
    pub fn observe(&mut self, frame: &FrameCost) {
        let measured = [frame.device_ms, frame.encode_ms, frame.edge_ms];
        if !measured.iter().all(|m| m.is_finite() && *m >= 0.0) {
            return;
        }
        let p = &frame.profiled;
        let edge_profiled = p.decode_ms + p.edge_ms;
        if ![p.device_ms, p.encode_ms, edge_profiled].iter().all(|v| v.is_finite()) {
            return;
        }
        let (g, min) = (self.config.gain, self.config.min_stage_ms);
        // `> 0` too: with `min_stage_ms = 0` a stage with no profiled work would divide by zero.
        let counts = |profiled: f64| profiled >= min && profiled > 0.0;
        if counts(p.device_ms) {
            Ratio::update(&mut self.device, frame.device_ms, p.device_ms, g);
        }
        if p.offloads && counts(p.encode_ms) {
            Ratio::update(&mut self.encode, frame.encode_ms, p.encode_ms, g);
        }
        if p.offloads && counts(edge_profiled) {
            Ratio::update(&mut self.edge, frame.edge_ms, edge_profiled, g);
        }
        self.frames += 1;
    }

    /// The calibration learned so far ([`Calibration::IDENTITY`] before any frame). Until one
    /// side's inference has been measured it borrows the other side's scale (see the module
    /// docs).
    pub fn calibration(&self) -> Calibration {
        let min = self.config.min_frames;
        let (device, edge) = (Ratio::scale(self.device, min), Ratio::scale(self.edge, min));
        Calibration {
            device_scale: device.or(edge).unwrap_or(1.0),
            encode_scale: Ratio::scale(self.encode, min).unwrap_or(1.0),
            edge_scale: edge.or(device).unwrap_or(1.0),
        }
    }
}
