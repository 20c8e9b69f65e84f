//! Accounting: where every frame ends.
//!
//! Each captured frame is owned by exactly one stage at a time, and the stage that ends it
//! reports one [`Outcome`] — a [`FrameResult`] or a drop with a [`DropReason`] — to the ledger.
//! The camera, which never blocks, reports its overruns too, without waiting
//! ([`LedgerHandle::try_drop`]), so the live [`Snapshot`] and the final [`Summary`] count every
//! drop; `captured == results + drops` is an invariant the summary checks
//! ([`Summary::balanced`]), not a subtraction. Latency percentiles come from
//! [`tandem_planner::stats::LatencyHistogram`] (HDR histogram over every sample).

mod actor;
mod msg;

pub use actor::{Ledger, Snapshot, Summary, SummaryStats};
pub use msg::{DropReason, FrameResult, FrameTiming, LedgerHandle, Outcome, Overflow, Timeline, timing_queue};
pub use tandem_planner::stats::Percentiles;
