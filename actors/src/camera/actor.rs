use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tandem_models::checkpoint::InputSpec;
use tandem_models::data::Dataset;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::msg::{CameraCmd, CameraReport, CapturedFrame, WhenFull};
use crate::ledger::LedgerHandle;
use crate::metrics::DeviceMetrics;
use crate::source::{DatasetFrames, Frames, SourceError, SourceOptions, SourceSpec};
use crate::types::DropReason;

/// What the camera plays: an opened source and the model input its frames are normalised to
/// (the model card's, [`tandem_models::checkpoint::ModelCard::input`]).
#[derive(Debug)]
pub struct CameraSource {
    /// The frames.
    pub frames: Frames,
    /// Shape and normalisation of the model's input.
    pub input: InputSpec,
    /// For a live source: how to open it again when it ends, fails or stalls (with backoff;
    /// the gap is counted). `None`: the end or an error ends the run.
    pub restart: Option<(SourceSpec, SourceOptions)>,
}

/// A live source that delivers nothing for this long is treated as stalled and reopened.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The reopen backoff: from this, doubling…
pub const RESTART_MIN: Duration = Duration::from_millis(200);
/// …up to this.
pub const RESTART_MAX: Duration = Duration::from_secs(10);

impl From<Dataset> for CameraSource {
    /// A data set played with its own normalisation (tests, synthetic runs).
    fn from(images: Dataset) -> CameraSource {
        let frames = DatasetFrames::new(images);
        CameraSource { input: frames.input(), frames: Frames::Dataset(frames), restart: None }
    }
}

/// How the camera runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraSettings {
    /// Frames per second (> 0).
    pub fps: f64,
    /// Stop after this many frames (`None`: until stopped).
    pub frames: Option<u64>,
    /// Full-policy of the front queue.
    pub when_full: WhenFull,
}

/// The camera → front queue: bounded crossbeam channel of `capacity` frames (≥ 1).
pub fn front_queue(capacity: usize) -> (Sender<CapturedFrame>, Receiver<CapturedFrame>) {
    crossbeam_channel::bounded(capacity.max(1))
}

/// The camera actor.
#[derive(Debug)]
pub struct Camera {
    settings: CameraSettings,
    source: CameraSource,
    out: Sender<CapturedFrame>,
    /// A receiver of the same queue, used only to discard the oldest frame (drop-oldest).
    out_oldest: Receiver<CapturedFrame>,
    inbox: mpsc::Receiver<CameraCmd>,
    metrics: DeviceMetrics,
    /// Where its drops are recorded — without waiting ([`LedgerHandle::try_drop`]).
    ledger: LedgerHandle,
}

impl Camera {
    /// A camera playing `source` into the front queue, recording the frames it drops in
    /// `ledger`.
    pub fn new(
        settings: CameraSettings,
        source: impl Into<CameraSource>,
        out: (Sender<CapturedFrame>, Receiver<CapturedFrame>),
        metrics: DeviceMetrics,
        ledger: LedgerHandle,
    ) -> (Camera, mpsc::Sender<CameraCmd>) {
        let (tx, inbox) = mpsc::channel(1);
        (Camera { settings, source: source.into(), out: out.0, out_oldest: out.1, inbox, metrics, ledger }, tx)
    }

    /// Capture until the frame count is reached, the source ends, or a Stop arrives (or its
    /// sender is dropped). A source error ends the capture too and is in the report.
    pub async fn run(mut self) -> CameraReport {
        let mut report = CameraReport::default();
        let input = self.source.input.clone();
        let (c, s) = (input.channels, input.size);
        let period = Duration::from_secs_f64(1.0 / self.settings.fps.max(1e-3));
        let mut tick = tokio::time::interval(period);
        // A late tick (the runtime was busy) is skipped, not burst: the camera is a clock.
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            if self.settings.frames.is_some_and(|n| report.captured >= n) {
                break;
            }
            tokio::select! {
                biased;
                cmd = self.inbox.recv() => match cmd {
                    Some(CameraCmd::Stop) | None => break,
                },
                _ = tick.tick() => {}
            }
            // The source may take its time (a live stream stalls): a Stop still ends the wait,
            // and a live source silent for STALL_TIMEOUT counts as ended.
            let live = self.source.restart.is_some();
            let next = tokio::select! {
                biased;
                cmd = self.inbox.recv() => match cmd {
                    Some(CameraCmd::Stop) | None => break,
                },
                // A file or data set may take as long as it takes (`Duration::MAX`: no timeout).
                next = tokio::time::timeout(if live { STALL_TIMEOUT } else { Duration::MAX }, self.source.frames.next()) => {
                    next.unwrap_or_else(|_| Err(SourceError::Video {
                        input: String::new(),
                        why: format!("no frame for {} s (stalled)", STALL_TIMEOUT.as_secs()),
                    }))
                }
            };
            let raw = match next {
                Ok(Some(raw)) => raw,
                ended if live => {
                    match ended {
                        Ok(_) => tracing::warn!("the live source ended; reopening"),
                        Err(e) => tracing::warn!(error = %e, "the live source failed; reopening"),
                    }
                    if self.reopen(&mut report).await {
                        continue;
                    }
                    break;
                }
                Ok(None) => {
                    tracing::info!("the source ended");
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "the source failed; the camera stops");
                    report.source_error = Some(e.to_string());
                    break;
                }
            };
            let frame = CapturedFrame {
                frame_id: report.captured,
                captured_at: Instant::now(),
                pts: raw.pts,
                image: input.normalise(&raw.pixels),
                shape: [1, c, s, s],
                label: raw.label,
            };
            report.captured += 1;
            self.metrics.frames.inc();
            if !self.offer(frame, &mut report) {
                tracing::warn!("front inference is gone; camera stops");
                break;
            }
        }
        tracing::info!(captured = report.captured, overrun = report.overrun, "camera stopped");
        report
    }

    /// Reopen the live source with exponential backoff ([`RESTART_MIN`] doubling to
    /// [`RESTART_MAX`], backon's delays) until it opens or a Stop arrives (false). The time
    /// without frames is counted (`tandem_source_gap_seconds_total`).
    async fn reopen(&mut self, report: &mut CameraReport) -> bool {
        use backon::BackoffBuilder;
        let Some((spec, opts)) = self.source.restart.clone() else { return false };
        let input = self.source.input.clone();
        let started = Instant::now();
        let mut delays = backon::ExponentialBuilder::new()
            .with_min_delay(RESTART_MIN)
            .with_max_delay(RESTART_MAX)
            .with_factor(2.0)
            .without_max_times()
            .build();
        let reopened = loop {
            let delay = delays.next().unwrap_or(RESTART_MAX);
            tokio::select! {
                biased;
                _ = self.inbox.recv() => break false,
                _ = tokio::time::sleep(delay) => {}
            }
            let opened = tokio::select! {
                biased;
                _ = self.inbox.recv() => break false,
                opened = Frames::open(&spec, &opts, &input) => opened,
            };
            match opened {
                Ok(frames) => {
                    self.source.frames = frames;
                    break true;
                }
                Err(e) => tracing::warn!(error = %e, "reopening the live source failed; retrying"),
            }
        };
        let gap = started.elapsed().as_secs_f64();
        report.gap_s += gap;
        self.metrics.source_gap_seconds.inc_by(gap);
        if reopened {
            report.restarts += 1;
            self.metrics.source_restarts.inc();
            tracing::info!(gap_s = gap, "the live source is back");
        }
        reopened
    }

    /// Queue a frame without blocking; false when the front stage is gone. Every frame it does
    /// not queue is recorded in the ledger, without waiting.
    fn offer(&self, frame: CapturedFrame, report: &mut CameraReport) -> bool {
        let overrun = |report: &mut CameraReport, frame_id: u64| {
            report.overrun += 1;
            self.ledger.try_drop(frame_id, DropReason::CameraOverrun);
        };
        let orphaned = |report: &mut CameraReport, frame_id: u64| {
            report.orphaned += 1;
            self.ledger.try_drop(frame_id, DropReason::Shutdown);
        };
        match self.out.try_send(frame) {
            Ok(()) => true,
            Err(TrySendError::Disconnected(frame)) => {
                orphaned(report, frame.frame_id);
                false
            }
            Err(TrySendError::Full(frame)) => match self.settings.when_full {
                WhenFull::DropNewest => {
                    overrun(report, frame.frame_id);
                    true
                }
                WhenFull::DropOldest => {
                    if let Ok(oldest) = self.out_oldest.try_recv() {
                        overrun(report, oldest.frame_id);
                    }
                    match self.out.try_send(frame) {
                        Ok(()) => true,
                        // Front took nothing and the slot we freed was refilled: impossible with
                        // one producer, but count it rather than assume.
                        Err(TrySendError::Full(frame)) => {
                            overrun(report, frame.frame_id);
                            true
                        }
                        Err(TrySendError::Disconnected(frame)) => {
                            orphaned(report, frame.frame_id);
                            false
                        }
                    }
                }
            },
        }
    }
}
