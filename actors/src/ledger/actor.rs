use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use super::msg::{DropReason, FrameResult, FrameTiming, LedgerHandle, Outcome};
use crate::metrics::{DeviceMetrics, Origin, Stage};

/// Latency samples kept for percentiles (the most recent ones).
const KEEP_SAMPLES: usize = 1 << 16;

/// Live counts, published after every outcome (tests and the status line wait on it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Results computed with the edge.
    pub edge: u64,
    /// Results computed locally.
    pub local: u64,
    /// Drops reported to the ledger (camera overruns are not among them).
    pub dropped: u64,
    /// Id of the newest frame that ended with a result.
    pub last_result: Option<u64>,
}

/// Mean and percentiles of a latency, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples (all of them, not only the kept ones).
    pub n: u64,
    /// Mean over all samples.
    pub mean: f64,
    /// Median of the kept samples.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

#[derive(Debug, Default)]
struct Series {
    n: u64,
    sum: f64,
    max: f64,
    recent: VecDeque<f64>,
}

impl Series {
    fn push(&mut self, ms: f64) {
        self.n += 1;
        self.sum += ms;
        self.max = self.max.max(ms);
        if self.recent.len() == KEEP_SAMPLES {
            self.recent.pop_front();
        }
        self.recent.push_back(ms);
    }

    fn percentiles(&self) -> Percentiles {
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| if v.is_empty() { 0.0 } else { v[((v.len() - 1) as f64 * q).round() as usize] };
        Percentiles {
            n: self.n,
            mean: if self.n == 0 { 0.0 } else { self.sum / self.n as f64 },
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: self.max,
        }
    }
}

/// Latency and throughput figures of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryStats {
    /// First capture → last outcome, seconds.
    pub wall_s: f64,
    /// Capture → result, all results.
    pub e2e_ms: Percentiles,
    /// Capture → result, edge results only.
    pub e2e_edge_ms: Percentiles,
    /// Per-frame pipeline overhead of edge results: e2e minus head inference, encoding, edge
    /// decode and tail inference — actor hops, queues, framing, socket and loopback.
    pub overhead_ms: Percentiles,
    /// Mean time per stage, ms.
    pub stage_mean_ms: BTreeMap<Stage, f64>,
    /// Tensor-frame bytes sent.
    pub bytes_sent: u64,
}

/// The end of a run: every frame accounted for. Serialised (JSON) as part of
/// [`crate::report::RunReport`], without `results`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Frames the camera captured.
    pub captured: u64,
    /// Results computed with the edge.
    pub edge: u64,
    /// Results computed on the device.
    pub local: u64,
    /// Results whose frame had a ground-truth label.
    pub labelled: u64,
    /// Of those, how many predicted the label.
    pub correct: u64,
    /// Drops by reason (camera overruns included once the runtime adds them).
    pub dropped: BTreeMap<DropReason, u64>,
    /// Latency and throughput.
    pub stats: SummaryStats,
    /// Every result, in completion order, when the ledger was asked to keep them. Not
    /// serialised (stage instants have no meaning outside this process).
    #[serde(skip)]
    pub results: Vec<FrameResult>,
}

impl Summary {
    /// All results.
    pub fn results_total(&self) -> u64 {
        self.edge + self.local
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Whether every captured frame ended as a result or a counted drop.
    pub fn balanced(&self) -> bool {
        self.captured == self.results_total() + self.dropped_total()
    }

    /// Sustained result rate over the run.
    pub fn fps(&self) -> f64 {
        if self.stats.wall_s > 0.0 { self.results_total() as f64 / self.stats.wall_s } else { 0.0 }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        writeln!(
            f,
            "frames    captured {} = results {} (edge {}, local {}) + dropped {}  [{}]",
            self.captured,
            self.results_total(),
            self.edge,
            self.local,
            self.dropped_total(),
            if self.balanced() { "balanced" } else { "UNBALANCED" }
        )?;
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .map(|r| format!("{} {}", r.as_str(), self.dropped.get(r).copied().unwrap_or(0)))
            .collect();
        writeln!(f, "dropped   {}", drops.join(", "))?;
        writeln!(f, "rate      {:.1} results/s over {:.2} s", self.fps(), s.wall_s)?;
        if self.labelled > 0 {
            writeln!(
                f,
                "accuracy  {:.2} % of {} labelled results",
                100.0 * self.correct as f64 / self.labelled as f64,
                self.labelled
            )?;
        }
        let p = |p: &Percentiles| {
            format!(
                "mean {:.3}  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3} ms (n {})",
                p.mean, p.p50, p.p90, p.p99, p.max, p.n
            )
        };
        writeln!(f, "e2e       {}", p(&s.e2e_ms))?;
        if s.e2e_edge_ms.n > 0 {
            writeln!(f, "e2e edge  {}", p(&s.e2e_edge_ms))?;
            writeln!(f, "overhead  {}  (e2e - head - encode - edge decode - tail)", p(&s.overhead_ms))?;
        }
        let stages: Vec<String> = s.stage_mean_ms.iter().map(|(st, ms)| format!("{} {:.3}", st.as_str(), ms)).collect();
        writeln!(f, "stages    {} (mean ms)", stages.join("  "))?;
        let per = if self.edge > 0 { s.bytes_sent as f64 / self.edge as f64 } else { 0.0 };
        write!(f, "link      {} bytes sent ({:.0} B per edge result)", s.bytes_sent, per)
    }
}

/// The accounting actor. Owns every count; nothing else does.
#[derive(Debug)]
pub struct Ledger {
    inbox: mpsc::Receiver<Outcome>,
    metrics: DeviceMetrics,
    keep_results: bool,
    snapshot: watch::Sender<Snapshot>,
    timings: Option<mpsc::Sender<FrameTiming>>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn between(a: Option<Instant>, b: Option<Instant>) -> Option<Duration> {
    Some(b?.saturating_duration_since(a?))
}

impl Ledger {
    /// A ledger with an inbox of `capacity` outcomes (full-policy: Block, see
    /// [`LedgerHandle`]). With `keep_results`, the summary carries every result.
    pub fn new(
        capacity: usize,
        metrics: DeviceMetrics,
        keep_results: bool,
    ) -> (Ledger, LedgerHandle, watch::Receiver<Snapshot>) {
        let (tx, inbox) = mpsc::channel(capacity.max(1));
        let (snapshot, snap_rx) = watch::channel(Snapshot::default());
        (Ledger { inbox, metrics, keep_results, snapshot, timings: None }, LedgerHandle { tx }, snap_rx)
    }

    /// Also report every result's measured costs on `tx` (DropNewest, see [`FrameTiming`]).
    pub fn report_timings(&mut self, tx: mpsc::Sender<FrameTiming>) {
        self.timings = Some(tx);
    }

    /// Run until every sender is gone; returns the summary (without camera figures).
    pub async fn run(mut self) -> Summary {
        let mut summary = Summary::default();
        let (mut e2e, mut e2e_edge, mut overhead) = (Series::default(), Series::default(), Series::default());
        let mut stages: BTreeMap<Stage, (f64, u64)> = BTreeMap::new();
        let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
        while let Some(outcome) = self.inbox.recv().await {
            let now = Instant::now();
            last = Some(now);
            match outcome {
                Outcome::Dropped { frame_id, reason } => {
                    tracing::debug!(frame_id, reason = reason.as_str(), "frame dropped");
                    *summary.dropped.entry(reason).or_default() += 1;
                    self.metrics.dropped(reason);
                    self.snapshot.send_modify(|s| s.dropped += 1);
                }
                Outcome::Result(r) => {
                    let t = &r.timeline;
                    first = Some(first.map_or(t.captured, |f| f.min(t.captured)));
                    let done = t.done.unwrap_or(now);
                    let total = done.saturating_duration_since(t.captured);
                    let edge_decode = Duration::from_micros(u64::from(r.edge_decode_us));
                    let edge_infer = Duration::from_micros(u64::from(r.edge_infer_us));
                    let mut observe = |stage: Stage, d: Option<Duration>| {
                        if let Some(d) = d {
                            self.metrics.stage(stage, d.as_secs_f64());
                            let e = stages.entry(stage).or_default();
                            e.0 += ms(d);
                            e.1 += 1;
                        }
                    };
                    observe(Stage::CameraQueue, between(Some(t.captured), t.front_start));
                    let front = between(t.front_start, t.front_end);
                    let mut encoding = Duration::ZERO;
                    match r.origin {
                        Origin::Local => observe(Stage::Local, front),
                        Origin::Edge => {
                            observe(Stage::Front, front);
                            let encode = between(t.encode_start, t.encoded);
                            encoding = encode.unwrap_or_default();
                            observe(Stage::Encode, encode);
                            observe(Stage::LinkQueue, between(t.encoded, t.sent_start));
                            let transfer =
                                between(t.sent_start, Some(done)).map(|d| d.saturating_sub(edge_decode + edge_infer));
                            observe(Stage::Transfer, transfer);
                            observe(Stage::EdgeDecode, Some(edge_decode));
                            observe(Stage::EdgeInfer, Some(edge_infer));
                            let work =
                                front.unwrap_or_default() + encode.unwrap_or_default() + edge_decode + edge_infer;
                            overhead.push(ms(total.saturating_sub(work)));
                            e2e_edge.push(ms(total));
                            summary.stats.bytes_sent += r.bytes_sent;
                        }
                    }
                    if let Some(label) = r.label {
                        summary.labelled += 1;
                        summary.correct += u64::from(r.class == u16::from(label));
                    }
                    if let Some(tx) = &self.timings {
                        let edge = match r.origin {
                            Origin::Edge => ms(edge_decode + edge_infer),
                            Origin::Local => 0.0,
                        };
                        // DropNewest: a lagging controller loses calibration samples, nothing else.
                        let _ = tx.try_send(FrameTiming {
                            plan: r.plan,
                            origin: r.origin,
                            device_ms: ms(front.unwrap_or_default()),
                            encode_ms: ms(encoding),
                            edge_ms: edge,
                        });
                    }
                    e2e.push(ms(total));
                    self.metrics.e2e.observe(total.as_secs_f64());
                    self.metrics.result(r.origin);
                    match r.origin {
                        Origin::Edge => summary.edge += 1,
                        Origin::Local => summary.local += 1,
                    }
                    let (origin, frame_id) = (r.origin, r.frame_id);
                    self.snapshot.send_modify(|s| {
                        match origin {
                            Origin::Edge => s.edge += 1,
                            Origin::Local => s.local += 1,
                        }
                        s.last_result = Some(frame_id);
                    });
                    if self.keep_results {
                        summary.results.push(*r);
                    }
                }
            }
        }
        summary.stats.wall_s = match (first, last) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        summary.stats.e2e_ms = e2e.percentiles();
        summary.stats.e2e_edge_ms = e2e_edge.percentiles();
        summary.stats.overhead_ms = overhead.percentiles();
        summary.stats.stage_mean_ms = stages.into_iter().map(|(s, (sum, n))| (s, sum / n.max(1) as f64)).collect();
        summary
    }
}
