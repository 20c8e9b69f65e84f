//! The device runtime: builds the pipeline, starts it, and owns its shutdown.
//!
//! Start order is downstream first (ledger, link, encoder, front) so that nothing is sent into a
//! stage that does not exist; the camera starts last, once the link is up or `connect_wait` has
//! passed, and then once its [`CameraGate`] (if any) opens. Shutdown has one owner,
//! [`DeviceHandle::finish`]: the camera stops first (frame count
//! reached, [`Stopper::stop`], or Ctrl-C in the CLI), its queue closes, each stage drains and
//! closes the next; if the ledger has not heard the last outcome within the drain deadline the
//! abort token is cancelled and every stage drops what it still holds as `shutdown`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::camera::{Camera, CameraCmd, CameraReport, CameraSettings, CameraSource, front_queue};
use crate::controller::Feedback;
use crate::emulation::Slowdown;
use crate::encoder::{Encoder, link_queue};
use crate::error::ActorError;
use crate::front::{Front, encoder_queue};
use crate::ledger::{Ledger, Snapshot, Summary, timing_queue};
use crate::link::{Link, LinkCommand, LinkSettings, LinkState, command_queue, sample_queue};
use crate::metrics::DeviceMetrics;
use crate::models::ModelCache;
use crate::plan::PlanHandle;
use crate::predictions::{LineFormat, PredictionsWriter, Sink};
use crate::types::PlanChoice;

/// Queue capacities of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queues {
    /// camera → front.
    pub front: usize,
    /// front → encoder.
    pub encoder: usize,
    /// encoder → link.
    pub link: usize,
    /// outcomes → ledger.
    pub ledger: usize,
    /// link → transfer-sample consumer and ledger → frame-timing consumer, each (0 = neither:
    /// no controller).
    pub samples: usize,
}

/// Everything the device pipeline needs.
#[derive(Clone, Debug)]
pub struct DeviceSettings {
    /// Series directory.
    pub series: PathBuf,
    /// The first plan (epoch 1).
    pub plan: PlanChoice,
    /// Camera.
    pub camera: CameraSettings,
    /// Queues.
    pub queues: Queues,
    /// Link.
    pub link: LinkSettings,
    /// Drain deadline at shutdown.
    pub drain: Duration,
    /// Wait this long for the session before starting the camera.
    pub connect_wait: Duration,
    /// Keep every result in the summary (tests).
    pub keep_results: bool,
    /// Emulate a device this much slower than this machine (front inference and encoding).
    pub slowdown: Slowdown,
    /// Inference engine of the heads.
    pub engine: tandem_engine::Choice,
    /// Its intra-op threads; `None` = every core.
    pub engine_threads: Option<usize>,
    /// Write every frame's prediction here (`--predictions`); `None` = no predictions file.
    pub predictions: Option<PredictionsSettings>,
    /// Hold the camera until this gate opens (`None`: start it as soon as the link is up).
    pub camera_gate: Option<CameraGate>,
}

/// Holds the camera's first frame until `open` reads true or `within` has passed, whichever
/// comes first. An adaptive device opens it on the controller's first decision
/// ([`ControllerStatus::decisions`](crate::controller::ControllerStatus::decisions)): the first
/// frame then runs the plan chosen for the measured link, not the configured guess — on a slow
/// link a guess that sends large frames would queue the whole start-up behind it — and the first
/// probe has the link to itself. Frames a live source delivers meanwhile are never captured.
#[derive(Clone, Debug)]
pub struct CameraGate {
    /// Opens the gate when it turns true.
    pub open: watch::Receiver<bool>,
    /// The longest the camera waits.
    pub within: Duration,
}

impl CameraGate {
    /// A closed gate and its opener.
    pub fn new(within: Duration) -> (watch::Sender<bool>, CameraGate) {
        let (tx, open) = watch::channel(false);
        (tx, CameraGate { open, within })
    }

    /// Wait until the gate opens (true) or `within` passes (false); a dropped opener counts as
    /// never opening.
    pub async fn wait(mut self) -> bool {
        let within = self.within;
        matches!(tokio::time::timeout(within, self.open.wait_for(|open| *open)).await, Ok(Ok(_)))
    }
}

/// The predictions writer ([`crate::predictions`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PredictionsSettings {
    /// File or stdout.
    pub sink: Sink,
    /// Lines queued for the writer (full: the line is dropped and counted).
    pub queue: usize,
    /// Classes per result line.
    pub top_k: usize,
}

/// Builds and starts the device pipeline.
#[derive(Debug)]
pub struct Device;

/// Stops the camera (the start of a graceful shutdown). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Stopper(mpsc::Sender<CameraCmd>);

impl Stopper {
    /// Ask the camera to stop; idempotent, never blocks.
    pub fn stop(&self) {
        // Full means a Stop is already queued; Closed means the camera already ended.
        let _ = self.0.try_send(CameraCmd::Stop);
    }
}

/// A running device pipeline.
#[derive(Debug)]
pub struct DeviceHandle {
    plan: Arc<PlanHandle>,
    stopper: Stopper,
    snapshot: watch::Receiver<Snapshot>,
    link_state: watch::Receiver<LinkState>,
    link_commands: mpsc::Sender<LinkCommand>,
    feedback: Option<Feedback>,
    camera: JoinHandle<CameraReport>,
    ledger: JoinHandle<Summary>,
    link: JoinHandle<()>,
    threads: Vec<std::thread::JoinHandle<()>>,
    abort: CancellationToken,
    drain: Duration,
    predictions: Option<PredictionsWriter>,
    capturing: watch::Receiver<bool>,
}

impl Device {
    /// Start the pipeline playing `source` (its frames must be the series' input: a data set,
    /// or a source opened for the model card's input).
    pub async fn start(
        settings: DeviceSettings,
        source: impl Into<CameraSource>,
        metrics: DeviceMetrics,
    ) -> Result<DeviceHandle, ActorError> {
        let source = source.into();
        let engine = tandem_engine::Engine::open(&tandem_engine::EngineOptions {
            choice: settings.engine,
            threads: settings.engine_threads.unwrap_or_else(tandem_engine::default_threads),
            ..tandem_engine::EngineOptions::default()
        })
        .map_err(|source| ActorError::Engine { model_id: u32::MAX, source })?;
        tracing::info!(engine = %engine.kind(), threads = engine.threads(), "device inference engine");
        let cache = ModelCache::open(&settings.series, engine, 1)?.with_metrics(metrics.engine.clone());
        let base = &cache.series().base;
        let input = &source.input;
        if input.channels != base.in_channels || input.size != base.input_size {
            return Err(ActorError::Config(format!(
                "frames are {}x{}x{} but the series expects {}x{}x{}",
                input.channels, input.size, input.size, base.in_channels, base.input_size, base.input_size
            )));
        }
        if matches!(&source.frames, crate::source::Frames::Dataset(d) if d.is_empty()) {
            return Err(ActorError::Config("the frame source holds no image".into()));
        }
        let q = settings.queues;
        // The controller asks the front thread, through the plan handle, to prepare a plan's
        // heads before publishing it (bounded; full: prepared on the plan's first frame).
        let (prepare_tx, prepare_rx) = crossbeam_channel::bounded(crate::plan::PREPARE_QUEUE);
        let plan = Arc::new(PlanHandle::new(settings.plan).with_preparer(prepare_tx));
        metrics.plan(&plan.current());
        // Cancelled by `finish` alone, when the drain deadline passes.
        let abort = CancellationToken::new();
        let (mut ledger, ledger_tx, snapshot) = Ledger::new(q.ledger, metrics.clone(), settings.keep_results);
        let mut classes = source.input.classes.clone();
        if classes.len() != base.num_classes {
            classes = (0..base.num_classes).map(|i| i.to_string()).collect();
        }
        ledger.count_classes(metrics.class_counters(&classes));
        let predictions = match &settings.predictions {
            Some(p) => {
                let format = LineFormat { top_k: p.top_k, classes };
                let (tx, writer) = crate::predictions::spawn(
                    &p.sink,
                    p.queue,
                    format,
                    metrics.predictions_written.clone(),
                    metrics.predictions_dropped.clone(),
                )
                .map_err(|e| ActorError::Config(format!("opening the predictions sink {:?}: {e}", p.sink)))?;
                ledger.sink_outcomes(tx);
                Some(writer)
            }
            None => None,
        };
        let (samples_tx, feedback) = if q.samples > 0 {
            let (tx, samples) = sample_queue(q.samples);
            let (timings_tx, timings) = timing_queue(q.samples);
            ledger.report_timings(timings_tx);
            (Some(tx), Some(Feedback { samples, timings }))
        } else {
            (None, None)
        };
        let ledger = tokio::spawn(ledger.run().instrument(tracing::info_span!("ledger")));

        let (link_tx, link_rx) = link_queue(q.link);
        let (cmd_tx, cmd_rx) = command_queue();
        let (link, link_state) = Link::new(
            settings.link.clone(),
            link_rx,
            cmd_rx,
            ledger_tx.clone(),
            abort.clone(),
            metrics.clone(),
            samples_tx,
        );
        // Frames lost to a link drop go back to the front thread (DropNewest past this: the
        // link counts `link_down`): what can be in flight plus what the link queue holds.
        let (rerun_tx, rerun_rx) = crossbeam_channel::bounded(settings.link.max_in_flight + q.link + 1);
        let link = link.with_rerun(rerun_tx);
        let link = tokio::spawn(link.run().instrument(tracing::info_span!("link")));

        let (enc_tx, enc_rx) = encoder_queue(q.encoder);
        let encoder = Encoder {
            input: enc_rx,
            out: link_tx,
            ledger: ledger_tx.clone(),
            abort: abort.clone(),
            slowdown: settings.slowdown,
            metrics: Some(metrics.clone()),
        }
        .spawn()?;
        let (front_tx, front_rx) = front_queue(q.front);
        let front = Front {
            cache,
            input: front_rx.clone(),
            out: enc_tx,
            plan: plan.subscribe(),
            link: link_state.clone(),
            ledger: ledger_tx.clone(),
            abort: abort.clone(),
            metrics: metrics.clone(),
            slowdown: settings.slowdown,
            rerun: Some(rerun_rx),
            prepare: Some(prepare_rx),
        }
        .spawn()?;

        let mut up = link_state.clone();
        if tokio::time::timeout(settings.connect_wait, up.wait_for(LinkState::is_up)).await.is_err() {
            tracing::warn!(edge = %settings.link.edge, "edge not reachable yet; starting with local inference");
        }
        let (camera, cmd) = Camera::new(settings.camera, source, (front_tx, front_rx), metrics, ledger_tx);
        let gate = settings.camera_gate;
        let (capture_tx, capturing) = watch::channel(false);
        let camera = tokio::spawn(
            async move {
                if let Some(gate) = gate {
                    let within = gate.within;
                    if gate.wait().await {
                        tracing::debug!("camera gate opened");
                    } else {
                        tracing::warn!(
                            within_ms = within.as_millis() as u64,
                            "no first plan yet; starting the camera with the configured plan"
                        );
                    }
                }
                let _ = capture_tx.send(true);
                camera.run().await
            }
            .instrument(tracing::info_span!("camera")),
        );
        Ok(DeviceHandle {
            plan,
            stopper: Stopper(cmd),
            snapshot,
            link_state,
            link_commands: cmd_tx,
            feedback,
            camera,
            ledger,
            link,
            threads: vec![front, encoder],
            abort,
            drain: settings.drain,
            predictions,
            capturing,
        })
    }
}

impl DeviceHandle {
    /// The control plane: publish a new plan here to switch at the next frame boundary.
    pub fn plan(&self) -> &PlanHandle {
        &self.plan
    }

    /// The control plane, shared with the controller (the only publisher when one runs).
    pub fn plan_handle(&self) -> Arc<PlanHandle> {
        Arc::clone(&self.plan)
    }

    /// Turns true when the camera starts capturing (after the start-up gate, if one is set): a
    /// run's duration counts from here, so a gate's wait does not eat into it.
    pub fn capturing(&self) -> watch::Receiver<bool> {
        self.capturing.clone()
    }

    /// Live counts.
    pub fn snapshot(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }

    /// Link state.
    pub fn link_state(&self) -> watch::Receiver<LinkState> {
        self.link_state.clone()
    }

    /// Commands for the link (plan preparation on the edge).
    pub fn link_commands(&self) -> mpsc::Sender<LinkCommand> {
        self.link_commands.clone()
    }

    /// Per-frame transfer samples and frame timings for a controller (once; `None` when
    /// disabled or already taken).
    pub fn take_feedback(&mut self) -> Option<Feedback> {
        self.feedback.take()
    }

    /// A handle that stops the camera.
    pub fn stopper(&self) -> Stopper {
        self.stopper.clone()
    }

    /// Wait for the camera to end (frame count reached or stopped), drain, and report.
    pub async fn finish(self) -> Result<Summary, ActorError> {
        let DeviceHandle { camera, mut ledger, link, threads, abort, drain, link_commands, predictions, .. } = self;
        drop(link_commands);
        let report = camera.await.map_err(|_| ActorError::StageFailed("camera"))?;
        let mut summary = match tokio::time::timeout(drain, &mut ledger).await {
            Ok(s) => s.map_err(|_| ActorError::StageFailed("ledger"))?,
            Err(_) => {
                tracing::warn!(
                    drain_ms = drain.as_millis() as u64,
                    "drain deadline passed; dropping what is left as shutdown"
                );
                abort.cancel();
                ledger.await.map_err(|_| ActorError::StageFailed("ledger"))?
            }
        };
        if link.await.is_err() {
            tracing::warn!("link task ended abnormally");
        }
        let joined = tokio::task::spawn_blocking(move || threads.into_iter().all(|t| t.join().is_ok())).await;
        if !matches!(joined, Ok(true)) {
            return Err(ActorError::StageFailed("front/encoder thread"));
        }
        // The ledger is gone, so is its hand-over: the writer writes what is queued.
        if let Some(w) = predictions {
            // A healthy sink writes what is queued in milliseconds; a blocked one is given up on
            // after the drain deadline, or 2 s, whichever is shorter.
            summary.predictions = Some(w.finish(drain.min(Duration::from_secs(2))).await);
        }
        // The ledger has every drop, the camera's included; captures are the camera's count.
        summary.captured = report.captured;
        summary.source_error = report.source_error;
        summary.source_restarts = report.restarts;
        summary.source_gap_s = report.gap_s;
        Ok(summary)
    }
}
