use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tandem_models::checkpoint::InputSpec;
use tandem_models::data::Dataset;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use super::msg::{CameraCmd, CameraReport, CapturedFrame, WhenFull};
use crate::ledger::LedgerHandle;
use crate::metrics::DeviceMetrics;
use crate::source::{DatasetFrames, Frames};
use crate::types::DropReason;

/// What the camera plays: an opened source and the model input its frames are normalised to
/// (the model card's, [`tandem_models::checkpoint::ModelCard::input`]).
#[derive(Debug)]
pub struct CameraSource {
    /// The frames.
    pub frames: Frames,
    /// Shape and normalisation of the model's input.
    pub input: InputSpec,
}

impl From<Dataset> for CameraSource {
    /// A data set played with its own normalisation (tests, synthetic runs).
    fn from(images: Dataset) -> CameraSource {
        let frames = DatasetFrames::new(images);
        CameraSource { input: frames.input(), frames: Frames::Dataset(frames) }
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
            // The source may take its time (a live stream stalls): a Stop still ends the wait.
            let next = tokio::select! {
                biased;
                cmd = self.inbox.recv() => match cmd {
                    Some(CameraCmd::Stop) | None => break,
                },
                next = self.source.frames.next() => next,
            };
            let raw = match next {
                Ok(Some(raw)) => raw,
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
