//! The controller: adapts the plan (model, partition point, coding) to the link.
//!
//! A tokio task that owns an [`Estimator`](tandem_bandwidth_probe::Estimator) and a
//! [`Planner`](tandem_planner::Planner). It reads the link's per-frame transfer samples
//! (passive), asks the link for an active probe when the estimator says its samples are stale
//! ([`LinkCommand::Probe`](crate::link::LinkCommand::Probe)), and every tick asks the planner —
//! with hysteresis — whether to switch. What to do next is decided by pure functions in
//! [`policy`]; the actor only moves data.
//!
//! # Swap protocol
//! new plan → next epoch → `LinkCommand::Prepare` (the edge loads the tail and answers
//! `PlanAck`) → on `Applied`, publish on the [`PlanHandle`](crate::plan::PlanHandle): front
//! inference picks it up at its next frame boundary. Frames in flight under the old epoch carry
//! their model and point and still complete. Anything but `Applied` (or no answer within
//! `prepare_timeout`) rolls back (`Planner::set_current(old)`), is counted
//! (`tandem_plan_swaps_total{result="failed"}`) and holds re-planning off for `retry_after`.
//! Epochs are never reused: a rolled-back swap may still have been applied on the edge (a
//! `PlanAck` after the timeout), which would refuse that epoch again as stale, so the next swap
//! takes an epoch above every one announced. All-local plans need nothing from the edge and are
//! published directly. While the link is
//! down the controller waits: front inference already falls back to the whole model locally.
//!
//! # Calibration
//! The ledger reports every result's measured device inference, encoding and edge times
//! ([`FrameTiming`](crate::ledger::FrameTiming)); a
//! [`Calibrator`](tandem_planner::Calibrator) turns them into measured ÷ profiled scales (the
//! first frames after each swap left out), and the planner prices every plan with them from the
//! next re-planning on (`calibrate = false` in the config turns this off). Without it the controller trusted a
//! back-to-back profile and picked all-local plans that ran 1.3–2.1× slower than priced.
//!
//! # Accuracy floor at runtime
//! [`ControllerHandle::set_floor`]; the device exposes it as `POST /floor?0.92` (absolute
//! accuracy) or `POST /floor?loss=0.018` (at most 1.8 points below the original) on its metrics
//! server ([`crate::http::serve_with_floor`]).

mod actor;
mod metrics;
pub mod policy;

pub use actor::{
    Controller, ControllerHandle, ControllerSettings, ControllerStatus, Feedback, FloorSetter, PricedPlan,
    RANKED_SHOWN, SWAP_RECORDS_KEPT, SwapEvent, SwapRecord, SwapResult,
};
pub use metrics::ControllerMetrics;
