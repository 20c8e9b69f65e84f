use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tandem_planner::stats::{LatencyHistogram, Percentiles};
use tokio::sync::{mpsc, watch};

use super::msg::{DropReason, FrameResult, FrameTiming, LedgerHandle, Outcome, Overflow};
use crate::metrics::DeviceMetrics;
use crate::types::{Origin, Stage};

/// Live counts, published after every outcome (tests and the status line wait on it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Results computed with the edge.
    pub edge: u64,
    /// Results computed locally.
    pub local: u64,
    /// Drops, camera overruns included.
    pub dropped: u64,
    /// Drops by reason, indexed by [`DropReason::index`]; see [`Snapshot::dropped_for`].
    pub dropped_by: [u64; DropReason::COUNT],
    /// Id of the newest frame that ended with a result.
    pub last_result: Option<u64>,
}

impl Snapshot {
    /// Drops for `reason` so far.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.dropped_by.get(reason.index()).copied().unwrap_or(0)
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
    /// Results finished on the device after the link went down with them in flight
    /// ([`Origin::RerunLocal`]; not in `local`).
    #[serde(default)]
    pub rerun_local: u64,
    /// Results whose frame had a ground-truth label.
    pub labelled: u64,
    /// Of those, how many predicted the label.
    pub correct: u64,
    /// Drops by reason (camera overruns included).
    pub dropped: BTreeMap<DropReason, u64>,
    /// Latency and throughput.
    pub stats: SummaryStats,
    /// What the predictions writer delivered (`--predictions`), when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predictions: Option<crate::predictions::PredictionsReport>,
    /// Why the source ended the run early (a corrupt or truncated video, an unreadable
    /// image), when it did; the counts above still account for every frame captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_error: Option<String>,
    /// Times a live source was reopened after it ended, failed or stalled.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub source_restarts: u64,
    /// Seconds without frames while it was reopened (the source gap).
    #[serde(default)]
    pub source_gap_s: f64,
    /// Every result, in completion order, when the ledger was asked to keep them. Not
    /// serialised (stage instants have no meaning outside this process).
    #[serde(skip)]
    pub results: Vec<FrameResult>,
}

impl Summary {
    /// All results.
    pub fn results_total(&self) -> u64 {
        self.edge + self.local + self.rerun_local
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
            "frames    captured {} = results {} (edge {}, local {}{}) + dropped {}  [{}]",
            self.captured,
            self.results_total(),
            self.edge,
            self.local,
            if self.rerun_local > 0 { format!(", rerun locally {}", self.rerun_local) } else { String::new() },
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
        write!(f, "link      {} bytes sent ({:.0} B per edge result)", s.bytes_sent, per)?;
        if let Some(p) = &self.predictions {
            write!(f, "\npredictions {} lines written, {} dropped", p.written, p.dropped)?;
        }
        if let Some(e) = &self.source_error {
            write!(f, "\nsource    FAILED: {e}")?;
        }
        Ok(())
    }
}

/// The accounting actor. Owns every count; nothing else does.
#[derive(Debug)]
pub struct Ledger {
    inbox: mpsc::Receiver<Outcome>,
    overflow: std::sync::Arc<Overflow>,
    metrics: DeviceMetrics,
    keep_results: bool,
    snapshot: watch::Sender<Snapshot>,
    timings: Option<mpsc::Sender<FrameTiming>>,
    /// Every outcome is also handed here (the predictions writer), without waiting.
    outcomes: Option<crate::predictions::PredictionsTx>,
    /// `tandem_results_by_class_total`, index = class.
    classes: Vec<prometheus::IntCounter>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
        let overflow = std::sync::Arc::new(Overflow::default());
        let (snapshot, snap_rx) = watch::channel(Snapshot::default());
        let handle = LedgerHandle { tx, overflow: std::sync::Arc::clone(&overflow) };
        let ledger = Ledger {
            inbox,
            overflow,
            metrics,
            keep_results,
            snapshot,
            timings: None,
            outcomes: None,
            classes: Vec::new(),
        };
        (ledger, handle, snap_rx)
    }

    /// Also report every result's measured costs on `tx` (DropNewest, see [`FrameTiming`]).
    pub fn report_timings(&mut self, tx: mpsc::Sender<FrameTiming>) {
        self.timings = Some(tx);
    }

    /// Also hand every outcome it records — results and drops, those counted aside included —
    /// to `tx` (the predictions writer; DropNewest, counted there: the ledger never waits).
    pub fn sink_outcomes(&mut self, tx: crate::predictions::PredictionsTx) {
        self.outcomes = Some(tx);
    }

    /// Count results per predicted class in these counters (index = class;
    /// [`DeviceMetrics::class_counters`]).
    pub fn count_classes(&mut self, counters: Vec<prometheus::IntCounter>) {
        self.classes = counters;
    }

    /// Count `n` drops for `reason`.
    fn drop_frames(&self, summary: &mut Summary, reason: DropReason, n: u64) {
        *summary.dropped.entry(reason).or_default() += n;
        self.metrics.dropped_n(reason, n);
        self.snapshot.send_modify(|s| {
            s.dropped += n;
            if let Some(c) = s.dropped_by.get_mut(reason.index()) {
                *c += n;
            }
        });
    }

    /// Count the drops that found the inbox full ([`LedgerHandle::try_drop`]).
    fn fold_overflow(&self, summary: &mut Summary) {
        for reason in DropReason::ALL {
            let n = self.overflow.take(reason);
            if n > 0 {
                self.drop_frames(summary, reason, n);
                if let Some(p) = &self.outcomes {
                    p.unnamed_drops(reason, n);
                }
            }
        }
    }

    /// Run until every sender is gone; returns the summary (its `captured` is the camera's to
    /// fill in: the ledger sees outcomes, not captures).
    pub async fn run(mut self) -> Summary {
        let mut summary = Summary::default();
        let (mut e2e, mut e2e_edge, mut overhead) =
            (LatencyHistogram::new(), LatencyHistogram::new(), LatencyHistogram::new());
        let mut stages: BTreeMap<Stage, (f64, u64)> = BTreeMap::new();
        let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
        while let Some(outcome) = self.inbox.recv().await {
            let now = Instant::now();
            // The run lasts until the pipeline's last outcome: camera overruns (recorded here
            // since they go through the ledger) do not stretch it, as they did not before.
            if !matches!(outcome, Outcome::Dropped { reason: DropReason::CameraOverrun, .. }) {
                last = Some(now);
            }
            self.fold_overflow(&mut summary);
            if let Some(p) = &self.outcomes {
                p.outcome(&outcome);
            }
            match outcome {
                Outcome::Dropped { frame_id, reason } => {
                    tracing::debug!(frame_id, reason = reason.as_str(), "frame dropped");
                    self.drop_frames(&mut summary, reason, 1);
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
                        // Head, encode and part of a transfer, then a local tail: no one stage.
                        Origin::RerunLocal => {}
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
                            overhead.record_ms(ms(total.saturating_sub(work)));
                            e2e_edge.record_ms(ms(total));
                            summary.stats.bytes_sent += r.bytes_sent;
                        }
                    }
                    if let Some(label) = r.label {
                        summary.labelled += 1;
                        summary.correct += u64::from(r.class == u16::from(label));
                    }
                    if let Some(tx) = &self.timings
                        && r.origin != Origin::RerunLocal
                    {
                        let edge = match r.origin {
                            Origin::Edge => ms(edge_decode + edge_infer),
                            Origin::Local | Origin::RerunLocal => 0.0,
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
                    if let Some(c) = self.classes.get(usize::from(r.class)) {
                        c.inc();
                    }
                    e2e.record_ms(ms(total));
                    self.metrics.e2e.observe(total.as_secs_f64());
                    self.metrics.result(r.origin);
                    match r.origin {
                        Origin::Edge => summary.edge += 1,
                        Origin::Local => summary.local += 1,
                        Origin::RerunLocal => summary.rerun_local += 1,
                    }
                    let (origin, frame_id) = (r.origin, r.frame_id);
                    self.snapshot.send_modify(|s| {
                        match origin {
                            Origin::Edge => s.edge += 1,
                            // The live counts have no third bucket: a rerun is a local result.
                            Origin::Local | Origin::RerunLocal => s.local += 1,
                        }
                        s.last_result = Some(frame_id);
                    });
                    if self.keep_results {
                        summary.results.push(*r);
                    }
                }
            }
        }
        // Every sender is gone, so every `try_drop` that overflowed has added its count.
        self.fold_overflow(&mut summary);
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
