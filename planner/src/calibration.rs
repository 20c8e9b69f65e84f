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
//! - For each of device inference, device encoding and edge decoding + inference, a line
//!   **measured = offset + scale × profiled** (`device_offset_ms`, `device_scale`, …), applied to
//!   every plan with work on that stage. A stage is only learned from frames where its profiled
//!   work is at least [`CalibratorConfig::min_stage_ms`]: a frame that offloads its input says
//!   nothing about the device's inference speed, and what was learned is kept rather than decayed
//!   — otherwise the controller would forget a slow device the moment it stopped using it, and
//!   flap back.
//! - **Why a line and not a ratio.** On ONNX Runtime the error is mostly a per-frame constant:
//!   every all-local plan of both reproductions measured about 2.5 ms (R = 10) over its profile,
//!   whether the profile said 3.7 or 4.2 ms — 1.6–2.9× as ratios (docs/RESULTS.md §8). A ratio
//!   learned on a plan with a small device head (0.5 ms profiled, 3 ms measured: ×6) then priced
//!   the whole model 6× too high, and the controller fled a plan that was in fact the fastest.
//! - **How the line is learned.** Each stage keeps a smoothed (profiled, measured) point per plan
//!   it has run (plans bucketed by their profiled time, the last [`MAX_POINTS`] kept). With one
//!   point the line is the profile plus a constant (scale 1): one plan cannot tell a constant
//!   from a ratio, and the constant is what the measurements show. With points from plans whose
//!   profiled work differs, a least-squares line through them, pulled toward scale 1 by a ridge
//!   term ([`RIDGE`]) so that two plans of nearly equal work cannot produce a wild slope.
//!   Within a point, a ratio of smoothed sums (not a mean of per-frame ratios), so the mean
//!   latency it predicts is the mean that is measured.
//! - **Borrowing.** Until one side's inference has been measured (a plan that offloads its input
//!   runs none on the device; an all-local plan none on the edge) it takes the other side's
//!   error as a pure scale (its measured ÷ profiled over the points it has; no offset: the
//!   device's per-frame constant is stretched by the emulated slowdown, the edge's is not). Both are batch-1 inference of the same networks on cold caches, profiled the same
//!   way, so the other side's error is a better guess than none: with 1.0, a controller that had
//!   only ever offloaded priced local inference 1.5× too cheap and swapped to it on the first
//!   bandwidth drop, only to swap back once it had measured it.
//! - **Warm-up.** A point is used only once [`CalibratorConfig::min_frames`] frames have
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
//! the same corrected model. What calibration is *for* is the transfer of what was measured on the
//! plan that runs to the plans that do not, which is what `tandem reproduce` measures.

use serde::{Deserialize, Serialize};

use crate::latency::PlanCost;

/// Bounds of a learned scale: a profile off by more than this is a wrong profile, not a cold
/// cache, and should not be papered over.
pub const SCALE_BOUNDS: (f64, f64) = (0.25, 8.0);

/// Bound of a learned offset, ms either way (a second per frame is a broken stage, not a cold
/// cache).
pub const OFFSET_BOUND_MS: f64 = 1000.0;

/// Plans a stage remembers a (profiled, measured) point for; the least recently run is dropped.
pub const MAX_POINTS: usize = 8;

/// Weight of the pull toward scale 1, relative to the squared mean profiled time of the points:
/// the fitted slope follows the points once their profiled times spread by more than about
/// √RIDGE (~14 %) of their mean, and stays near 1 when they do not.
pub const RIDGE: f64 = 0.02;

/// Plans whose profiled time on a stage is within this ratio of each other share one point.
const BUCKET_RATIO: f64 = 1.05;

/// Corrections applied to profiled costs (see the module docs): each stage's time becomes
/// `offset + scale × profiled` where it has profiled work. [`Calibration::IDENTITY`] changes
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Device inference (up to the point): the slope of measured against profiled.
    pub device_scale: f64,
    /// Device inference: the per-frame constant, ms.
    #[serde(default)]
    pub device_offset_ms: f64,
    /// Device encoding of the split tensor. Apart from inference because the two go cold
    /// differently: a plan that offloads the input does little but encode, and its encoder says
    /// nothing about how fast the device runs a network.
    pub encode_scale: f64,
    #[serde(default)]
    pub encode_offset_ms: f64,
    /// Edge compute (decoding, and inference after the point); the offset is charged to
    /// inference.
    pub edge_scale: f64,
    #[serde(default)]
    pub edge_offset_ms: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Self::IDENTITY
    }
}

/// `offset + scale × profiled` where there is profiled work (0 stays 0, +∞ stays +∞), never
/// below 0.
fn corrected(profiled: f64, scale: f64, offset_ms: f64) -> f64 {
    if profiled > 0.0 { (offset_ms + scale * profiled).max(0.0) } else { profiled }
}

impl Calibration {
    pub const IDENTITY: Calibration = Calibration {
        device_scale: 1.0,
        device_offset_ms: 0.0,
        encode_scale: 1.0,
        encode_offset_ms: 0.0,
        edge_scale: 1.0,
        edge_offset_ms: 0.0,
    };

    /// A calibration of scales only (offsets 0).
    pub fn scales(device: f64, encode: f64, edge: f64) -> Self {
        Calibration { device_scale: device, encode_scale: encode, edge_scale: edge, ..Self::IDENTITY }
    }

    /// `cost` with its compute times corrected.
    pub fn apply(&self, cost: &PlanCost) -> PlanCost {
        let edge_total = cost.decode_ms + cost.edge_ms;
        let corrected_edge = corrected(edge_total, self.edge_scale, self.edge_offset_ms);
        // The offset is charged to inference; decoding keeps its scaled share.
        let decode_ms = (cost.decode_ms * self.edge_scale).min(corrected_edge);
        PlanCost {
            device_ms: corrected(cost.device_ms, self.device_scale, self.device_offset_ms),
            encode_ms: corrected(cost.encode_ms, self.encode_scale, self.encode_offset_ms),
            decode_ms,
            edge_ms: if edge_total > 0.0 { corrected_edge - decode_ms } else { cost.edge_ms },
            ..*cost
        }
    }

    fn terms(&self) -> [(f64, f64); 3] {
        [
            (self.device_scale, self.device_offset_ms),
            (self.encode_scale, self.encode_offset_ms),
            (self.edge_scale, self.edge_offset_ms),
        ]
    }

    /// Whether every scale is within [`SCALE_BOUNDS`] and every offset within
    /// ±[`OFFSET_BOUND_MS`].
    pub fn is_valid(&self) -> bool {
        let (lo, hi) = SCALE_BOUNDS;
        self.terms().iter().all(|(s, o)| (lo..=hi).contains(s) && o.abs() <= OFFSET_BOUND_MS)
    }

    /// Whether `other` differs enough from `self` to be worth re-pricing every plan for: some
    /// scale by more than `rel` relative to the larger of the two, or some offset by more than
    /// `rel` of the larger and by more than 0.05 ms.
    pub fn differs(&self, other: &Calibration, rel: f64) -> bool {
        let apart = |a: f64, b: f64| (a - b).abs() > rel * a.abs().max(b.abs());
        self.terms()
            .iter()
            .zip(other.terms())
            .any(|(&(s1, o1), (s2, o2))| apart(s1, s2) || (apart(o1, o2) && (o1 - o2).abs() > 0.05))
    }
}

/// How fast a [`Calibrator`] learns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalibratorConfig {
    /// Weight of a new frame in a plan's smoothed point, in `(0, 1]`. Default 0.05: about the
    /// last 20 frames, under a second at 30 FPS, so a change of speed is absorbed quickly.
    pub gain: f64,
    /// A stage is learned only from frames whose profiled work on it is at least this. Default
    /// 0.2 ms: shorter stages are dominated by timer and scheduling noise.
    pub min_stage_ms: f64,
    /// A plan's point is used (instead of nothing) once this many frames have taught it.
    /// Default 10.
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

/// One plan's smoothed (profiled, measured) on one stage.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    bucket: i64,
    profiled: f64,
    measured: f64,
    frames: u64,
    /// When it was last taught, in the stage's frames.
    last: u64,
}

impl Point {
    /// A plain running mean over the first `1/gain` frames, then an EWMA: the first frame does
    /// not weigh `(1 - gain)^n` long after it was taken.
    fn update(&mut self, profiled: f64, measured: f64, gain: f64, now: u64) {
        self.frames += 1;
        let g = gain.max(1.0 / self.frames as f64);
        self.profiled += g * (profiled - self.profiled);
        self.measured += g * (measured - self.measured);
        self.last = now;
    }
}

/// What one stage has learned: a point per recently run plan.
#[derive(Debug, Clone, Default, PartialEq)]
struct Stage {
    points: Vec<Point>,
    frames: u64,
}

impl Stage {
    fn observe(&mut self, profiled: f64, measured: f64, gain: f64) {
        self.frames += 1;
        let now = self.frames;
        let bucket = (profiled.ln() / BUCKET_RATIO.ln()).round() as i64;
        if let Some(p) = self.points.iter_mut().find(|p| p.bucket == bucket) {
            p.update(profiled, measured, gain, now);
            return;
        }
        if self.points.len() >= MAX_POINTS
            && let Some(oldest) = self.points.iter().enumerate().min_by_key(|(_, p)| p.last).map(|(i, _)| i)
        {
            self.points.swap_remove(oldest);
        }
        self.points.push(Point { bucket, profiled, measured, frames: 1, last: now });
    }

    /// The points `min_frames` taught, as (profiled, measured).
    fn taught(&self, min_frames: u64) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points.iter().filter(move |p| p.frames >= min_frames).map(|p| (p.profiled, p.measured))
    }

    /// The line (scale, offset) through the taught points (see the module docs); `None` before
    /// any.
    fn line(&self, min_frames: u64) -> Option<(f64, f64)> {
        let pts: Vec<(f64, f64)> = self.taught(min_frames).collect();
        if pts.is_empty() {
            return None;
        }
        let n = pts.len() as f64;
        let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
        let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
        let vxx = pts.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>() / n;
        let cxy = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / n;
        let ridge = RIDGE * mx * mx;
        let (lo, hi) = SCALE_BOUNDS;
        let scale = ((cxy + ridge) / (vxx + ridge)).clamp(lo, hi);
        let offset = (my - scale * mx).clamp(-OFFSET_BOUND_MS, OFFSET_BOUND_MS);
        (scale.is_finite() && offset.is_finite()).then_some((scale, offset))
    }

    /// Measured ÷ profiled over the taught points, as a pure scale: what the other side borrows.
    fn ratio(&self, min_frames: u64) -> Option<f64> {
        let (profiled, measured) = self.taught(min_frames).fold((0.0, 0.0), |(p, m), (x, y)| (p + x, m + y));
        let (lo, hi) = SCALE_BOUNDS;
        (profiled > 0.0).then(|| measured / profiled).filter(|s| s.is_finite()).map(|s| s.clamp(lo, hi))
    }
}

/// Learns a [`Calibration`] from [`FrameCost`]s (see the module docs). Pure: no clock, no I/O.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibrator {
    config: CalibratorConfig,
    device: Stage,
    encode: Stage,
    edge: Stage,
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
            device: Stage::default(),
            encode: Stage::default(),
            edge: Stage::default(),
            frames: 0,
        }
    }

    /// Whether some inference stage (device or edge) has been learned, so that
    /// [`Calibrator::calibration`] is more than a guess.
    pub fn ready(&self) -> bool {
        let min = self.config.min_frames;
        self.device.line(min).or(self.edge.line(min)).is_some()
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
        // `> 0` too: with `min_stage_ms = 0` a stage with no profiled work would teach a point
        // at profiled 0.
        let counts = |profiled: f64| profiled >= min && profiled > 0.0;
        if counts(p.device_ms) {
            self.device.observe(p.device_ms, frame.device_ms, g);
        }
        if p.offloads && counts(p.encode_ms) {
            self.encode.observe(p.encode_ms, frame.encode_ms, g);
        }
        if p.offloads && counts(edge_profiled) {
            self.edge.observe(edge_profiled, frame.edge_ms, g);
        }
        self.frames += 1;
    }

    /// The calibration learned so far ([`Calibration::IDENTITY`] before any frame). Until one
    /// side's inference has been measured it borrows the other side's error as a scale (see the
    /// module docs).
    pub fn calibration(&self) -> Calibration {
        let min = self.config.min_frames;
        let borrowed = |stage: &Stage| stage.ratio(min).map(|s| (s, 0.0));
        let (device_scale, device_offset_ms) =
            self.device.line(min).or_else(|| borrowed(&self.edge)).unwrap_or((1.0, 0.0));
        let (edge_scale, edge_offset_ms) = self.edge.line(min).or_else(|| borrowed(&self.device)).unwrap_or((1.0, 0.0));
        let (encode_scale, encode_offset_ms) = self.encode.line(min).unwrap_or((1.0, 0.0));
        Calibration { device_scale, device_offset_ms, encode_scale, encode_offset_ms, edge_scale, edge_offset_ms }
    }
}
