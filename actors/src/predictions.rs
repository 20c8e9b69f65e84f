//! Predictions out: one JSON line per frame (`--predictions FILE`, `-` for stdout).
//!
//! The ledger hands every outcome it records — results and drops, the drops it counted aside
//! included — to a [`PredictionsTx`] ([`crate::ledger::Ledger::sink_outcomes`]), so the file
//! accounts for every frame exactly as the ledger does. The hand-over is a `try_send` into a
//! bounded crossbeam queue (full-policy **DropNewest**): a sink that cannot keep up (a slow
//! disk, a full pipe nobody reads) loses lines, counted in `tandem_predictions_dropped_total`
//! and in the [`PredictionsReport`], and never slows the pipeline. The writer is its own OS
//! thread (a blocked `write` must not hold a runtime worker); at shutdown it gets the drain
//! deadline to finish, after which the lines it still holds are counted as dropped and the
//! thread is left behind (it ends with the process). Lines written + lines dropped = lines
//! offered = frames the ledger accounted for.
//!
//! Each line is a [`PredictionLine`] (serde, tagged by `outcome`):
//! ```json
//! {"outcome":"result","frame_id":7,"pts_s":0.2333,"captured_unix_ms":1764626400123.4,"origin":"edge",
//!  "top":[{"class":7,"name":"Sneaker","p":0.93},…],"plan":{"epoch":1,"model_id":0,"point":6,"coding":"f32"},
//!  "e2e_ms":4.1,"label":null}
//! {"outcome":"dropped","frame_id":8,"reason":"camera_overrun"}
//! ```
//! A drop the ledger counted aside because its inbox was full carries `"frame_id":null` (its
//! id was not recorded; one line per such frame still). Lines come in the order the ledger
//! heard the outcomes: frame order while nothing is dropped, but a camera overrun is recorded
//! at once, ahead of older frames still in the pipeline — `frame_id` says which frame a line is.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use prometheus::IntCounter;
use serde::{Deserialize, Serialize};

use tandem_codec::ClassProb;

use crate::ledger::{FrameResult, Outcome};
use crate::types::{DropReason, Origin};

/// One class of a result's top-k.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TopClass {
    /// Class index.
    pub class: u16,
    /// Its name (model card).
    pub name: String,
    /// Softmax probability.
    pub p: f32,
}

/// The plan a result ran under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinePlan {
    /// Plan epoch.
    pub epoch: u32,
    /// Series member id.
    pub model_id: u32,
    /// Partition point index (the model's end when it ran locally... as planned; see `origin`).
    pub point: u16,
    /// Coding of the split tensor (`q8-lz4`, `f32`, …).
    pub coding: String,
}

/// One line of the predictions file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum PredictionLine {
    /// The frame ended with a class.
    Result {
        /// Frame id (camera order).
        frame_id: u64,
        /// The source's presentation timestamp, seconds (video sources).
        pts_s: Option<f64>,
        /// Capture time, Unix milliseconds.
        captured_unix_ms: f64,
        /// Where the tail ran (`edge`) or the whole model (`local`).
        origin: Origin,
        /// The k most probable classes, most probable first.
        top: Vec<TopClass>,
        /// The plan in force.
        plan: LinePlan,
        /// Capture → result, ms.
        e2e_ms: f64,
        /// Ground truth, when the source knows it.
        label: Option<u8>,
    },
    /// The frame was dropped.
    Dropped {
        /// Frame id (`None`: a drop counted while the ledger's inbox was full).
        frame_id: Option<u64>,
        /// Why.
        reason: DropReason,
    },
}

/// What the ledger hands over.
#[derive(Debug)]
enum Note {
    Outcome(Outcome),
    /// Drops counted aside (no frame ids).
    Unnamed(DropReason, u64),
}

/// How the predictions are formatted.
#[derive(Clone, Debug, PartialEq)]
pub struct LineFormat {
    /// Classes per line (≥ 1).
    pub top_k: usize,
    /// Class names, index = class.
    pub classes: Vec<String>,
}

/// Softmax of `logits`, top `k`, named. Pure.
pub fn top_k(logits: &[f32], k: usize, classes: &[String]) -> Vec<TopClass> {
    named(&ClassProb::top_k(logits, k), k, classes)
}

/// The first `k` (at least one) of `top`, named. Pure.
pub fn named(top: &[ClassProb], k: usize, classes: &[String]) -> Vec<TopClass> {
    top.iter()
        .take(k.max(1))
        .map(|c| TopClass {
            class: c.class,
            name: classes.get(usize::from(c.class)).cloned().unwrap_or_else(|| c.class.to_string()),
            p: c.p,
        })
        .collect()
}

/// Maps the monotonic capture instants to wall-clock time, from one pair read together.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    instant: Instant,
    unix_ms: f64,
}

impl WallClock {
    /// Now.
    pub fn now() -> WallClock {
        let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0);
        WallClock { instant: Instant::now(), unix_ms }
    }

    /// `t` in Unix milliseconds.
    pub fn unix_ms(&self, t: Instant) -> f64 {
        if t >= self.instant {
            self.unix_ms + t.duration_since(self.instant).as_secs_f64() * 1e3
        } else {
            self.unix_ms - self.instant.duration_since(t).as_secs_f64() * 1e3
        }
    }
}

impl LineFormat {
    /// The line for a result. Pure.
    pub fn result(&self, r: &FrameResult, clock: &WallClock) -> PredictionLine {
        let t = &r.timeline;
        let done = t.done.unwrap_or(t.captured);
        let top = if !r.logits.is_empty() {
            top_k(&r.logits, self.top_k, &self.classes)
        } else if !r.top.is_empty() {
            // An edge result without logits: the top-k the edge computed (the device asks for
            // at least `top_k` classes, see `DeviceConfig::link_settings`).
            named(&r.top, self.top_k, &self.classes)
        } else {
            // Neither (cannot happen: a result carries at least one class): the class alone.
            named(&[ClassProb { class: r.class, p: r.confidence }], 1, &self.classes)
        };
        PredictionLine::Result {
            frame_id: r.frame_id,
            pts_s: t.pts,
            captured_unix_ms: clock.unix_ms(t.captured),
            origin: r.origin,
            top,
            plan: LinePlan {
                epoch: r.plan.epoch,
                model_id: r.plan.choice.model_id,
                point: r.plan.choice.point,
                coding: r.plan.choice.coding.to_string(),
            },
            e2e_ms: done.saturating_duration_since(t.captured).as_secs_f64() * 1e3,
            label: r.label,
        }
    }
}

/// Counts shared by the hand-over side and the writer.
#[derive(Debug, Default)]
struct Counts {
    /// Lines written.
    written: AtomicU64,
    /// Lines not delivered.
    dropped: AtomicU64,
    /// Lines the writer took off the queue.
    taken: AtomicU64,
    /// Lines the writer failed to write (also in `dropped`).
    failed: AtomicU64,
}

/// The ledger's side: hands outcomes over without waiting. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PredictionsTx {
    tx: Sender<Note>,
    counts: Arc<Counts>,
    dropped_metric: IntCounter,
}

impl PredictionsTx {
    fn offer(&self, note: Note, lines: u64) {
        match self.tx.try_send(note) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counts.dropped.fetch_add(lines, Ordering::Relaxed);
                self.dropped_metric.inc_by(lines);
            }
        }
    }

    /// Hand over one outcome (DropNewest when the queue is full: counted).
    pub fn outcome(&self, outcome: &Outcome) {
        self.offer(Note::Outcome(outcome.clone()), 1);
    }

    /// Hand over `n` drops for `reason` that have no frame id.
    pub fn unnamed_drops(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.offer(Note::Unnamed(reason, n), n);
        }
    }
}

/// Where the lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// Standard output.
    Stdout,
    /// A file (created or truncated; a FIFO works too).
    File(PathBuf),
}

impl std::str::FromStr for Sink {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "-" { Sink::Stdout } else { Sink::File(PathBuf::from(s)) })
    }
}

/// What the predictions writer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PredictionsReport {
    /// Lines written.
    pub written: u64,
    /// Lines not delivered (`tandem_predictions_dropped_total`).
    pub dropped: u64,
}

/// The writer thread.
#[derive(Debug)]
pub struct PredictionsWriter {
    /// Resolves when the writer thread has ended (its sender is dropped then).
    done: tokio::sync::oneshot::Receiver<()>,
    /// A receiver of the queue, to count what is left when the writer is abandoned.
    rx: Receiver<Note>,
    counts: Arc<Counts>,
    dropped_metric: IntCounter,
}

/// Open `sink` and start the writer behind a queue of `capacity` lines.
pub fn spawn(
    sink: &Sink,
    capacity: usize,
    format: LineFormat,
    written_metric: IntCounter,
    dropped_metric: IntCounter,
) -> std::io::Result<(PredictionsTx, PredictionsWriter)> {
    let out: Box<dyn Write + Send> = match sink {
        Sink::Stdout => Box::new(std::io::stdout()),
        Sink::File(p) => Box::new(std::fs::File::create(p)?),
    };
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let counts = Arc::new(Counts::default());
    let (c, r, dm) = (Arc::clone(&counts), rx.clone(), dropped_metric.clone());
    let (done_tx, done) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("predictions".into()).spawn(move || {
        write_lines(out, r, format, &c, &written_metric, &dm);
        let _ = done_tx.send(());
    })?;
    let ptx = PredictionsTx { tx, counts: Arc::clone(&counts), dropped_metric: dropped_metric.clone() };
    Ok((ptx, PredictionsWriter { done, rx, counts, dropped_metric }))
}

fn write_lines(
    mut out: Box<dyn Write + Send>,
    rx: Receiver<Note>,
    format: LineFormat,
    counts: &Counts,
    written: &IntCounter,
    dropped: &IntCounter,
) {
    let clock = WallClock::now();
    let mut failed = false;
    let mut line = Vec::with_capacity(512);
    // One `write_all` per line, unbuffered (stdout is line-buffered anyway): a line counts as
    // written only once the sink has taken all of it.
    let mut emit = |l: &PredictionLine, failed: &mut bool| {
        line.clear();
        let ok = !*failed && serde_json::to_writer(&mut line, l).is_ok() && {
            line.push(b'\n');
            out.write_all(&line).and_then(|()| out.flush()).is_ok()
        };
        if ok {
            counts.written.fetch_add(1, Ordering::Relaxed);
            written.inc();
        } else {
            if !*failed {
                tracing::error!("the predictions sink failed; further lines are counted as dropped");
            }
            *failed = true;
            counts.failed.fetch_add(1, Ordering::Relaxed);
            counts.dropped.fetch_add(1, Ordering::Relaxed);
            dropped.inc();
        }
    };
    while let Ok(note) = rx.recv() {
        match note {
            Note::Outcome(o) => {
                counts.taken.fetch_add(1, Ordering::Relaxed);
                let l = match &o {
                    Outcome::Result(r) => format.result(r, &clock),
                    Outcome::Dropped { frame_id, reason } => {
                        PredictionLine::Dropped { frame_id: Some(*frame_id), reason: *reason }
                    }
                };
                emit(&l, &mut failed);
            }
            Note::Unnamed(reason, n) => {
                counts.taken.fetch_add(n, Ordering::Relaxed);
                for _ in 0..n {
                    emit(&PredictionLine::Dropped { frame_id: None, reason }, &mut failed);
                }
            }
        }
    }
}

impl PredictionsWriter {
    /// Wait (at most `deadline`) for the writer to write what is queued, once every
    /// [`PredictionsTx`] is gone. A writer still blocked then is abandoned (the thread ends with
    /// the process): what it holds and what is still queued is counted as dropped.
    pub async fn finish(self, deadline: Duration) -> PredictionsReport {
        let PredictionsWriter { done, rx, counts, dropped_metric } = self;
        match tokio::time::timeout(deadline, done).await {
            Ok(_) => {}
            Err(_) => {
                tracing::warn!("the predictions sink is blocked; counting what it has not written as dropped");
                let mut left = 0;
                while let Ok(note) = rx.try_recv() {
                    left += match note {
                        Note::Outcome(_) => 1,
                        Note::Unnamed(_, n) => n,
                    };
                }
                // Taken off the queue but neither written nor failed: the line it is blocked on.
                let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let in_hand = c(&counts.taken).saturating_sub(c(&counts.written) + c(&counts.failed));
                counts.dropped.fetch_add(left + in_hand, Ordering::Relaxed);
                dropped_metric.inc_by(left + in_hand);
            }
        }
        PredictionsReport {
            written: counts.written.load(Ordering::Relaxed),
            dropped: counts.dropped.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_the_softmax_ranked_and_named() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let top = top_k(&[1.0, 3.0, 2.0], 2, &names);
        assert_eq!(top.iter().map(|t| t.class).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(top[0].name, "b");
        let sum: f32 = top_k(&[1.0, 3.0, 2.0], 3, &names).iter().map(|t| t.p).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        assert!(top[0].p > top[1].p);
        // Ties rank like argmax: the lower index first.
        assert_eq!(top_k(&[5.0, 5.0], 1, &[])[0].class, 0);
    }

    #[test]
    fn lines_are_tagged_json_that_reads_back() {
        let l = PredictionLine::Dropped { frame_id: Some(3), reason: DropReason::CameraOverrun };
        let text = serde_json::to_string(&l).unwrap();
        assert_eq!(text, r#"{"outcome":"dropped","frame_id":3,"reason":"camera_overrun"}"#);
        assert_eq!(serde_json::from_str::<PredictionLine>(&text).unwrap(), l);
    }

    /// A sink that blocks forever after `room` bytes, like a pipe nobody reads.
    struct Stuck {
        room: usize,
        gate: std::sync::mpsc::Receiver<()>,
    }

    impl Write for Stuck {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                // Blocks until the test ends (the sender is dropped).
                let _ = self.gate.recv();
                return Err(std::io::Error::other("closed"));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_blocked_sink_loses_counted_lines_and_never_blocks_the_sender() {
        let reg = prometheus::Registry::new();
        let m = crate::metrics::DeviceMetrics::register(&reg).unwrap();
        let (_gate_tx, gate) = std::sync::mpsc::channel();
        let (tx, rx) = crossbeam_channel::bounded(4);
        let counts = Arc::new(Counts::default());
        let (c, r, w, d) =
            (Arc::clone(&counts), rx.clone(), m.predictions_written.clone(), m.predictions_dropped.clone());
        let format = LineFormat { top_k: 1, classes: vec![] };
        let (done_tx, done) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            write_lines(Box::new(Stuck { room: 100, gate }), r, format, &c, &w, &d);
            let _ = done_tx.send(());
        });
        let ptx = PredictionsTx { tx, counts: Arc::clone(&counts), dropped_metric: m.predictions_dropped.clone() };
        let offered = 1000u64;
        for i in 0..offered {
            // Each offer returns at once, blocked sink or not.
            ptx.outcome(&Outcome::Dropped { frame_id: i, reason: DropReason::Deadline });
        }
        drop(ptx);
        let writer = PredictionsWriter { done, rx, counts, dropped_metric: m.predictions_dropped.clone() };
        let report = writer.finish(Duration::from_millis(200)).await;
        assert_eq!(report.written + report.dropped, offered, "{report:?}");
        // One line fits the sink, the second blocks it, four wait in the queue: the rest found
        // the queue full.
        assert!(report.written <= 1, "{report:?}");
        assert!(report.dropped >= offered - 1, "{report:?}");
        assert_eq!(m.predictions_dropped.get(), report.dropped);
        assert_eq!(m.predictions_written.get(), report.written);
    }
}
