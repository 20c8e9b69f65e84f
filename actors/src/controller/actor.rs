use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_bandwidth_probe::{Config as EstimatorConfig, Estimator};
use tandem_codec::PlanResult;
use tandem_planner::{
    AccuracyFloor, Calibration, Calibrator, CalibratorConfig, Decision, FrameCost, Hysteresis,
    LinkState as PlannerLink, Plan, Planner, evaluate, ranked_plans,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::metrics::ControllerMetrics;
use super::policy::{Step, choice_of, held, next_step, profiled_cost, warmed_up};
use crate::faults;
use crate::ledger::FrameTiming;
use crate::link::{LinkCommand, LinkError, LinkState, ProbeReport, TransferSample};
use crate::metrics::DeviceMetrics;
use crate::plan::PlanHandle;
use crate::types::{ActivePlan, PlanChoice};

/// How the controller behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct ControllerSettings {
    /// Bandwidth estimator settings.
    pub estimator: EstimatorConfig,
    /// Switching margins.
    pub hysteresis: Hysteresis,
    /// The accuracy requirement at start.
    pub floor: AccuracyFloor,
    /// How often to re-plan.
    pub tick: Duration,
    /// How long the edge has to load a tail.
    pub prepare_timeout: Duration,
    /// After a failed swap, do not re-plan for this long (unless the floor changes).
    pub retry_after: Duration,
    /// After a swap, do not swap again for this long (unless the floor changes): anti-flapping
    /// on top of the planner's hysteresis.
    pub min_dwell: Duration,
    /// Largest probe burst, bytes: the estimator sizes bursts at its *last* estimate, and after a
    /// drop a burst sized for the old rate would hold frames behind it for seconds.
    pub max_probe_burst: u64,
    /// Price plans with the calibration learned from finished frames (see the module docs).
    pub calibrate: bool,
    /// With calibration on, the first swap waits (at most this long) until the calibration has
    /// learned an inference scale from the initial plan's frames: chosen from the profiles alone,
    /// it is often undone two seconds later. [`ControllerSettings::gated`] sets it to zero.
    pub first_swap_wait: Duration,
    /// How the calibration learns.
    pub calibrator: CalibratorConfig,
    /// The camera's frame interval: plans whose slowest stage takes longer (they would drop
    /// frames) are avoided ([`Planner::with_frame_interval`]). `None`: ignored.
    pub frame_interval: Option<Duration>,
}

/// How many of the planner's best plans a swap reports as its reason.
pub const RANKED_SHOWN: usize = 3;
/// A new calibration re-prices the plans when a scale moved by more than this (relative).
const CALIBRATION_REL: f64 = 0.05;
/// The first frames after a plan swap run on cold caches (and, for a new tail, a model just
/// loaded): they are left out of the calibration.
const CALIBRATION_WARMUP_FRAMES: u32 = 3;

/// What the device pipeline tells the controller: per-frame link transfers (for the bandwidth
/// estimator) and per-frame measured costs (for calibration). Both queues are DropNewest.
#[derive(Debug)]
pub struct Feedback {
    /// From the link.
    pub samples: mpsc::Receiver<TransferSample>,
    /// From the ledger.
    pub timings: mpsc::Receiver<FrameTiming>,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        ControllerSettings {
            estimator: EstimatorConfig::default(),
            hysteresis: Hysteresis::default(),
            floor: AccuracyFloor::MaxLoss(0.018),
            tick: Duration::from_millis(50),
            prepare_timeout: Duration::from_secs(5),
            retry_after: Duration::from_secs(5),
            min_dwell: Duration::from_secs(2),
            max_probe_burst: 16 * 1024,
            calibrate: true,
            first_swap_wait: Duration::from_secs(2),
            calibrator: CalibratorConfig::default(),
            frame_interval: None,
        }
    }
}

impl ControllerSettings {
    /// For a camera held until this controller's first decision
    /// ([`ControllerHandle::open_on_first_decision`]): no frame runs before that decision, so
    /// there is nothing to calibrate from and the first decision must not wait for it (it
    /// would hold the camera for the whole `first_swap_wait`).
    pub fn gated(self) -> Self {
        ControllerSettings { first_swap_wait: Duration::ZERO, ..self }
    }
}

/// How a swap ended (the `result` label of `tandem_plan_swaps_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwapResult {
    /// The edge applied the plan and the device switched.
    Applied,
    /// The edge refused or failed to load it, or did not answer in time: rolled back.
    Failed,
    /// The link went down during the swap: rolled back.
    LinkDown,
}

impl SwapResult {
    /// Every value, for pre-registering labels.
    pub const ALL: [SwapResult; 3] = [SwapResult::Applied, SwapResult::Failed, SwapResult::LinkDown];

    /// Label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            SwapResult::Applied => "applied",
            SwapResult::Failed => "failed",
            SwapResult::LinkDown => "link_down",
        }
    }
}

/// One swap, for the live log.
#[derive(Clone, Debug, PartialEq)]
pub struct SwapEvent {
    /// The epoch it was (or would have been) published under.
    pub epoch: u32,
    /// What it runs.
    pub choice: PlanChoice,
    /// The planner's plan (names, prediction).
    pub plan: Plan,
    /// Why: the planner's best [`RANKED_SHOWN`] plans at the estimate it decided on, best first
    /// (the chosen plan is usually the first; with a camera rate to keep up with, the fastest
    /// plan that does).
    pub ranked: Vec<Plan>,
    /// Bandwidth estimate it was chosen at, bit/s.
    pub bandwidth_bps: f64,
    /// Outcome.
    pub result: SwapResult,
    /// When the decision was taken (the swap was in force at `at + took`).
    pub at: Instant,
    /// Decision → published (or rolled back).
    pub took: Duration,
}

/// One plan as the planner priced it, for people and reports.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricedPlan {
    pub model_id: u32,
    pub model: String,
    pub point: String,
    /// `None`: all local.
    pub coding: Option<String>,
    /// Predicted end-to-end latency at the estimate, ms (calibrated).
    pub predicted_ms: f64,
    /// Expected accuracy (fraction).
    pub accuracy: f64,
}

impl From<&Plan> for PricedPlan {
    fn from(p: &Plan) -> Self {
        PricedPlan {
            model_id: p.model_id,
            model: p.model_name.clone(),
            point: p.point_name.clone(),
            coding: p.coding.clone(),
            predicted_ms: p.predicted.total_ms,
            accuracy: p.accuracy,
        }
    }
}

impl std::fmt::Display for PricedPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "model {} ({}) {} {} {:.1} ms {:.2} %",
            self.model_id,
            self.model,
            self.point,
            self.coding.as_deref().unwrap_or("local"),
            self.predicted_ms,
            self.accuracy * 100.0
        )
    }
}

/// One swap decision and its reason, kept in [`ControllerStatus::swaps`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapRecord {
    /// The epoch it was (or would have been) published under.
    pub epoch: u32,
    /// Seconds since the controller started, at the decision.
    pub at_s: f64,
    /// Bandwidth estimate it was decided at, bit/s.
    pub bandwidth_bps: f64,
    /// Outcome.
    pub result: SwapResult,
    /// The plan chosen.
    pub chosen: PricedPlan,
    /// The planner's best [`RANKED_SHOWN`] plans at that estimate, best first.
    pub ranked: Vec<PricedPlan>,
}

/// [`ControllerStatus::swaps`] keeps the latest this many decisions (a swap is rare: the dwell
/// time alone bounds it to one per `min_dwell`).
pub const SWAP_RECORDS_KEPT: usize = 256;

/// What the controller has done so far (published on a `watch`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControllerStatus {
    /// Swaps applied.
    pub applied: u64,
    /// Swaps rolled back.
    pub failed: u64,
    /// Probes answered.
    pub probes: u64,
    /// Bytes the answered probes put on the link (their cost to the frames).
    pub probe_bytes: u64,
    /// Every plan published, by epoch (epoch 1 = the initial plan).
    pub history: Vec<ActivePlan>,
    /// Latest bandwidth estimate, bit/s.
    pub bandwidth_bps: Option<f64>,
    /// Latest smoothed RTT estimate, ms.
    pub rtt_ms: Option<f64>,
    /// The planner's (calibrated) prediction for the plan in force at the latest estimate, ms.
    pub predicted_ms: Option<f64>,
    /// The floor in force.
    pub floor: Option<AccuracyFloor>,
    /// The calibration the planner prices with.
    pub calibration: Calibration,
    /// Results taken into the calibration.
    pub calibrated_frames: u64,
    /// Plans decided on a measured link (kept or swapped, applied or not). The first one opens
    /// the device's [camera gate](crate::device::CameraGate).
    pub decisions: u64,
    /// The latest [`SWAP_RECORDS_KEPT`] swap decisions with their reasons, oldest first.
    pub swaps: Vec<SwapRecord>,
}

enum Cmd {
    SetFloor(AccuracyFloor, oneshot::Sender<()>),
}

/// Talk to a running controller.
#[derive(Debug)]
pub struct ControllerHandle {
    cmds: mpsc::Sender<Cmd>,
    status: watch::Receiver<ControllerStatus>,
    join: JoinHandle<()>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::SetFloor(fl, _) => write!(f, "SetFloor({fl:?})"),
        }
    }
}

impl ControllerHandle {
    /// Change the accuracy requirement; returns once the controller has taken it (and re-planned).
    pub async fn set_floor(&self, floor: AccuracyFloor) -> bool {
        let (tx, rx) = oneshot::channel();
        self.cmds.send(Cmd::SetFloor(floor, tx)).await.is_ok() && rx.await.is_ok()
    }

    /// A sender usable from elsewhere (e.g. the HTTP endpoint).
    pub fn floor_setter(&self) -> FloorSetter {
        FloorSetter(self.cmds.clone())
    }

    /// Status updates.
    pub fn status(&self) -> watch::Receiver<ControllerStatus> {
        self.status.clone()
    }

    /// Open a [`CameraGate`](crate::device::CameraGate) (send true on `opener`) at this
    /// controller's first decision. If the controller ends first the gate stays closed and its
    /// own timeout starts the camera.
    pub fn open_on_first_decision(&self, opener: watch::Sender<bool>) {
        let mut status = self.status();
        tokio::spawn(async move {
            if status.wait_for(|s| s.decisions > 0).await.is_ok() {
                let _ = opener.send(true);
            }
        });
    }

    /// Stop and wait for the task.
    pub async fn stop(self) {
        self.join.abort();
        let _ = self.join.await;
    }
}

/// Sets the floor from another task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct FloorSetter(mpsc::Sender<Cmd>);

impl FloorSetter {
    /// As [`ControllerHandle::set_floor`].
    pub async fn set(&self, floor: AccuracyFloor) -> bool {
        let (tx, rx) = oneshot::channel();
        self.0.send(Cmd::SetFloor(floor, tx)).await.is_ok() && rx.await.is_ok()
    }
}

/// The controller task.
#[derive(Debug)]
pub struct Controller {
    settings: ControllerSettings,
    estimator: Estimator,
    planner: Planner,
    floor: AccuracyFloor,
    plan: Arc<PlanHandle>,
    link_state: watch::Receiver<LinkState>,
    link: mpsc::Sender<LinkCommand>,
    samples: mpsc::Receiver<TransferSample>,
    timings: mpsc::Receiver<FrameTiming>,
    calibrator: Calibrator,
    /// Frames seen under the newest epoch (for the warm-up).
    warmup: (u32, u32),
    metrics: ControllerMetrics,
    device_metrics: DeviceMetrics,
    events: Option<mpsc::Sender<SwapEvent>>,
    status: watch::Sender<ControllerStatus>,
    origin: Instant,
    hold_until: Option<Duration>,
    last_swap: Option<Duration>,
    /// The largest epoch ever announced to the edge. A rolled-back swap may have been applied
    /// there (a late `PlanAck`, a failure after the ack), and the edge refuses an epoch it has
    /// seen as stale: the next swap must use a larger one.
    announced: u32,
}

impl Controller {
    /// Start the controller. `planner` holds the profiles; the plan in force on `plan` becomes
    /// its current plan if the profiles know it. `events` gets every swap (DropNewest).
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        settings: ControllerSettings,
        planner: Planner,
        plan: Arc<PlanHandle>,
        link_state: watch::Receiver<LinkState>,
        link: mpsc::Sender<LinkCommand>,
        feedback: Feedback,
        metrics: ControllerMetrics,
        device_metrics: DeviceMetrics,
        events: Option<mpsc::Sender<SwapEvent>>,
    ) -> Result<ControllerHandle, crate::ActorError> {
        let estimator =
            Estimator::new(settings.estimator.clone()).map_err(|e| crate::ActorError::Config(e.to_string()))?;
        let mut planner = planner.with_frame_interval(settings.frame_interval.map(|d| d.as_secs_f64() * 1e3));
        let now = plan.current();
        let coding = planner
            .profiles()
            .model(now.choice.model_id)
            .and_then(|m| m.point(now.choice.point))
            .map(|p| (!p.is_end()).then(|| now.choice.coding.to_string()));
        if let Some(coding) = coding
            && let Ok(p) = evaluate(
                planner.profiles(),
                now.choice.model_id,
                now.choice.point,
                coding.as_deref(),
                &PlannerLink::mbps(10.0, 5.0),
            )
        {
            planner.set_current(Some(p));
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let status =
            ControllerStatus { history: vec![now], floor: Some(settings.floor), ..ControllerStatus::default() };
        let (status_tx, status_rx) = watch::channel(status);
        let c = Controller {
            floor: settings.floor,
            calibrator: Calibrator::new(settings.calibrator),
            warmup: (0, 0),
            settings,
            estimator,
            planner,
            plan,
            link_state,
            link,
            samples: feedback.samples,
            timings: feedback.timings,
            metrics,
            device_metrics,
            events,
            status: status_tx,
            origin: Instant::now(),
            hold_until: None,
            last_swap: None,
            announced: 0,
        };
        let join = tokio::spawn(tracing::Instrument::instrument(c.run(cmd_rx), tracing::info_span!("controller")));
        Ok(ControllerHandle { cmds: cmd_tx, status: status_rx, join })
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn since(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.origin)
    }

    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>) {
        let mut tick = tokio::time::interval(self.settings.tick);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut probe: Option<oneshot::Receiver<Result<ProbeReport, LinkError>>> = None;
        let (mut samples_open, mut timings_open) = (true, true);
        loop {
            tokio::select! {
                s = self.samples.recv(), if samples_open => match s {
                    Some(s) => {
                        let at = self.since(s.at);
                        self.estimator.observe(s.bytes, s.duration, at);
                        tracing::trace!(bytes = s.bytes, duration_us = s.duration.as_micros() as u64, "transfer sample");
                    }
                    None => samples_open = false,
                },
                t = self.timings.recv(), if timings_open => match t {
                    Some(t) => self.observe_timing(&t),
                    None => timings_open = false,
                },
                c = cmds.recv() => match c {
                    Some(Cmd::SetFloor(floor, done)) => {
                        tracing::info!(?floor, "accuracy floor changed");
                        self.floor = floor;
                        self.hold_until = None;
                        self.last_swap = None;
                        self.status.send_modify(|s| s.floor = Some(floor));
                        self.replan().await;
                        let _ = done.send(());
                    }
                    None => return,
                },
                r = async { match probe.as_mut() { Some(rx) => rx.await, None => std::future::pending().await } } => {
                    probe = None;
                    match r {
                        Ok(Ok(report)) => {
                            tracing::debug!(?report, "probe answered");
                            let at = self.since(report.at);
                            if let Some(rtt) = report.rtt {
                                self.estimator.observe_rtt(rtt, at);
                            }
                            // A burst timed from its first byte includes one round trip — this
                            // probe's own ping, not an older minimum; one that queued behind the
                            // previous burst is timed from its reply and includes none.
                            for b in &report.bursts {
                                let rtt = if b.queued { Some(Duration::ZERO) } else { report.rtt };
                                self.estimator.observe_burst(b.bytes, b.took, rtt, at);
                            }
                            let bytes: u64 = report.bursts.iter().map(|b| b.bytes).sum();
                            self.status.send_modify(|s| {
                                s.probes += 1;
                                s.probe_bytes += bytes;
                            });
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "probe not done"),
                        Err(_) => tracing::debug!("probe dropped by the link"),
                    }
                }
                _ = tick.tick() => {
                    let now = self.now();
                    let learning = self.settings.calibrate && self.last_swap.is_none() && now < self.settings.first_swap_wait && !self.calibrator.ready();
                    let held = learning || held(now, self.hold_until, self.last_swap, self.settings.min_dwell);
                    let up = self.link_state.borrow().is_up();
                    match next_step(&self.estimator, now, up, probe.is_some(), held) {
                        Step::Wait => {}
                        Step::Probe(p) => {
                            let (tx, rx) = oneshot::channel();
                            let cmd = LinkCommand::Probe { burst_bytes: u32::try_from(p.burst_bytes.min(self.settings.max_probe_burst)).unwrap_or(u32::MAX), count: p.count, reply: tx };
                            if self.link.send(cmd).await.is_err() {
                                return;
                            }
                            self.metrics.probes.inc();
                            probe = Some(rx);
                        }
                        Step::Plan(_) => self.replan().await,
                    }
                }
            }
        }
    }

    /// Take a finished frame into the calibration.
    fn observe_timing(&mut self, t: &FrameTiming) {
        if !self.settings.calibrate {
            return;
        }
        if !warmed_up(&mut self.warmup, t.plan.epoch, CALIBRATION_WARMUP_FRAMES) {
            return;
        }
        let Some(profiled) = profiled_cost(self.planner.profiles(), t) else { return };
        self.calibrator.observe(&FrameCost {
            profiled,
            device_ms: t.device_ms,
            encode_ms: t.encode_ms,
            edge_ms: t.edge_ms,
        });
    }

    /// Ask the planner at the current estimate; swap if it says so.
    async fn replan(&mut self) {
        let now = self.now();
        let Some(e) = self.estimator.estimate(now) else { return };
        let link = PlannerLink::new(e.bandwidth_bps, e.rtt_ms);
        self.metrics.bandwidth_bps(e.bandwidth_bps);
        self.metrics.rtt.set(e.rtt_ms / 1e3);
        let learned = self.calibrator.calibration();
        if self.settings.calibrate && learned.differs(self.planner.profiles().calibration(), CALIBRATION_REL) {
            tracing::debug!(?learned, frames = self.calibrator.frames(), "calibration updated");
            self.planner.set_calibration(learned, &link);
            self.metrics.calibration(&learned);
        }
        let calibration = *self.planner.profiles().calibration();
        let frames = self.calibrator.frames();
        self.status.send_modify(|s| {
            s.bandwidth_bps = Some(e.bandwidth_bps);
            s.rtt_ms = Some(e.rtt_ms);
            s.calibration = calibration;
            s.calibrated_frames = frames;
        });
        if !self.link_state.borrow().is_up() {
            return;
        }
        let old = self.planner.current().cloned();
        match self.planner.decide(&link, self.floor) {
            Decision::Keep => {}
            Decision::Infeasible => {
                tracing::debug!(bandwidth_bps = e.bandwidth_bps, "no plan meets the floor; keeping the current one")
            }
            Decision::Switch(plan) => {
                let ranked = ranked_plans(self.planner.profiles(), &link, self.floor, RANKED_SHOWN);
                self.swap(plan, old, e.bandwidth_bps, ranked).await
            }
        }
        let predicted_ms = self.planner.current().map(|cur| cur.at(&link).total_ms);
        if let Some(ms) = predicted_ms {
            self.metrics.predicted.set(ms / 1e3);
        }
        self.status.send_modify(|s| {
            s.decisions += 1;
            s.predicted_ms = predicted_ms.or(s.predicted_ms);
        });
    }

    /// The swap protocol (see the module docs).
    async fn swap(&mut self, plan: Plan, old: Option<Plan>, bandwidth_bps: f64, ranked: Vec<Plan>) {
        let started = Instant::now();
        let Some(choice) = choice_of(&plan) else {
            tracing::warn!(coding = ?plan.coding, "the planner chose a coding this build does not know; keeping the current plan");
            self.planner.set_current(old);
            return;
        };
        let current = self.plan.current();
        if current.choice == choice {
            return;
        }
        let active = ActivePlan { epoch: current.epoch.max(self.announced).saturating_add(1), choice };
        // The device prepares its heads while the edge prepares the tail; the plan is published
        // only when both are ready, so no frame of it waits for a preparation.
        let device_ready = self.plan.prepare(choice);
        let mut result = if plan.is_local() {
            SwapResult::Applied
        } else {
            self.announced = active.epoch;
            let (tx, rx) = oneshot::channel();
            if self.link.send(LinkCommand::Prepare { plan: active, reply: tx }).await.is_err() {
                return;
            }
            match tokio::time::timeout(self.settings.prepare_timeout, rx).await {
                Ok(Ok(Ok(PlanResult::Applied))) => SwapResult::Applied,
                Ok(Ok(Ok(other))) => {
                    tracing::warn!(epoch = active.epoch, result = ?other, "edge did not apply the plan; rolling back");
                    SwapResult::Failed
                }
                Ok(Ok(Err(_))) | Ok(Err(_)) => SwapResult::LinkDown,
                Err(_) => {
                    tracing::warn!(epoch = active.epoch, "edge did not answer in time; rolling back");
                    SwapResult::Failed
                }
            }
        };
        if result == SwapResult::Applied
            && let Some(ready) = device_ready
        {
            match tokio::time::timeout(self.settings.prepare_timeout, ready).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(why))) => {
                    tracing::warn!(
                        epoch = active.epoch,
                        why,
                        "the device could not prepare the plan's heads; rolling back"
                    );
                    result = SwapResult::Failed;
                }
                // The front thread is gone: the pipeline is shutting down.
                Ok(Err(_)) => result = SwapResult::Failed,
                Err(_) => {
                    tracing::warn!(
                        epoch = active.epoch,
                        "the device did not prepare the plan's heads in time; rolling back"
                    );
                    result = SwapResult::Failed;
                }
            }
        }
        if result == SwapResult::Applied && faults::fired(faults::CONTROLLER_APPLY).is_some() {
            tracing::warn!(epoch = active.epoch, "applying the plan failed (fail point); rolling back");
            result = SwapResult::Failed;
        }
        if result == SwapResult::Applied {
            // The tail is ready on the edge: switch at the device's next frame boundary.
            let published_ok = self.plan.publish_at(active.epoch, choice);
            debug_assert!(published_ok, "the controller is the only publisher");
            let epoch = active.epoch;
            let published = ActivePlan { epoch, choice };
            self.last_swap = Some(self.now());
            self.device_metrics.plan(&published);
            self.status.send_modify(|s| {
                s.applied += 1;
                s.history.push(published);
            });
            tracing::info!(epoch, model_id = choice.model_id, point = %plan.point_name, coding = %choice.coding, predicted_ms = plan.predicted.total_ms, bandwidth_bps, "plan swapped");
        } else {
            self.planner.set_current(old);
            self.hold_until = Some(self.now() + self.settings.retry_after);
            self.status.send_modify(|s| s.failed += 1);
        }
        self.metrics.swap(result);
        let record = SwapRecord {
            epoch: active.epoch,
            at_s: self.since(started).as_secs_f64(),
            bandwidth_bps,
            result,
            chosen: PricedPlan::from(&plan),
            ranked: ranked.iter().map(PricedPlan::from).collect(),
        };
        self.status.send_modify(|s| {
            if s.swaps.len() == SWAP_RECORDS_KEPT {
                s.swaps.remove(0);
            }
            s.swaps.push(record);
        });
        if let Some(ev) = &self.events {
            // DropNewest: the log is advisory.
            let _ = ev.try_send(SwapEvent {
                epoch: active.epoch,
                choice,
                plan,
                ranked,
                bandwidth_bps,
                result,
                at: started,
                took: started.elapsed(),
            });
        }
    }
}
